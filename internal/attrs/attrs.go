// Package attrs defines, once, every attribute name and reason code that
// certpulse components share (see docs/architecture.md and docs/schema.md).
package attrs

import "fmt"

// OpenTelemetry semantic-convention attribute names used by certpulse.
const (
	ServerAddress      = "server.address"
	ServerPort         = "server.port"
	NetworkPeerAddress = "network.peer.address"
	NetworkPeerPort    = "network.peer.port"
	TLSProtocolName    = "tls.protocol.name"
	TLSProtocolVersion = "tls.protocol.version"
	TLSCipher          = "tls.cipher"
	TLSEstablished     = "tls.established"
	TLSResumed         = "tls.resumed"
	TLSServerSubject   = "tls.server.subject"
	TLSServerIssuer    = "tls.server.issuer"
	TLSServerNotBefore = "tls.server.not_before"
	TLSServerNotAfter  = "tls.server.not_after"
	TLSServerHash      = "tls.server.hash.sha256"
	// TLSCurve is the negotiated key exchange group (semconv tls.curve):
	// X25519, X25519MLKEM768, P256... (the names of curve_preferences), "none" for RSA key exchange.
	TLSCurve         = "tls.curve"
	ServiceName      = "service.name"
	ServiceNamespace = "service.namespace"
	DeploymentEnv    = "deployment.environment.name"
	CloudRegion      = "cloud.region"
)

// certpulse's own attributes.
const (
	ReasonKey     = "certpulse.reason"
	ReasonsKey    = "certpulse.reasons"
	ReasonSideKey = "certpulse.reason.side"
	ClientProfile = "certpulse.client_profile"
	Vantage       = "certpulse.vantage"
	// VantageRank is the probing agent's rank among the target's vantages
	// (0: the owner); Vantages the chosen agents in rank order
	// (certpulse_vantages).
	VantageRank    = "certpulse.vantage.rank"
	Vantages       = "certpulse.vantages"
	Owner          = "certpulse.owner"
	Criticality    = "certpulse.criticality"
	ChainSHA256    = "certpulse.chain.sha256"
	ChainLength    = "certpulse.chain.length"
	SPKISHA256     = "certpulse.spki.sha256"
	SANSHA256      = "certpulse.san.sha256"
	SANs           = "certpulse.sans"
	OCSPStatus     = "certpulse.ocsp.status"
	OCSPSource     = "certpulse.ocsp.source"
	CRLStatus      = "certpulse.crl.status"
	IncidentID     = "certpulse.incident.id"
	IncidentState  = "certpulse.incident.state"
	Severity       = "certpulse.severity"
	Impact         = "certpulse.impact"
	CertPosition   = "certpulse.cert.position"
	CertRole       = "certpulse.cert.role"
	ProbeDuration  = "certpulse.probe.duration_ms"
	StartTLS       = "certpulse.starttls"
	PinsConfigured = "certpulse.pins.configured"
	Pins           = "certpulse.pins"
	ProbeEndpoint  = "certpulse.endpoint"
	FilePath       = "certpulse.file.path"
	// ProbeConfirmed is on failing probe results: false for the first
	// failure after a healthy result (not confirmed yet; a one-off blip
	// stays so), true when the previous result failed too.
	ProbeConfirmed = "certpulse.probe.confirmed"
	FileSource     = "certpulse.file.source"
	// EdgeNode is the node (ip:port) of a `nodes` target a record or
	// series describes.
	EdgeNode = "certpulse.edge.node"
	// NodesCount, NodesConsistent: how many nodes the round probed and
	// whether they all served the same chain (on every node's record).
	NodesCount      = "certpulse.nodes.count"
	NodesConsistent = "certpulse.nodes.consistent"
	// NodesDiffers lists what this node serves differently from the
	// others: chain, protocol, cipher, ocsp_staple.
	NodesDiffers = "certpulse.nodes.differs"
	// NodesLagging: this node serves an older chain than the reference
	// chain (NodesReferenceChain) the other nodes serve: a renewal that has
	// not reached it. The correlator derives propagation_lag from it.
	NodesLagging        = "certpulse.nodes.lagging"
	NodesReferenceChain = "certpulse.nodes.reference_chain.sha256"
	// ResumptionResult is the node's latest cross-node resumption check:
	// ok, resumption_failed, resumption_unsupported (info: no node resumes
	// at all) or not_checked; ResumptionCheckedAt is when it ran.
	ResumptionResult    = "certpulse.resumption.result"
	ResumptionCheckedAt = "certpulse.resumption.checked_at"
	// EventOpenIncidents is the correlator's periodic snapshot: one record
	// per service, environment, owner, severity, reason and remediation
	// state, with the count of open incidents (OpenIncidents).
	EventOpenIncidents = "certpulse.incidents.open"
	OpenIncidents      = "certpulse.incidents.open"
	// IncidentRemediation: running (a remediation attempt is under way),
	// awaiting_approval, or none.
	IncidentRemediation = "certpulse.incident.remediation"
	// EventRemediationBrake: the correlator's snapshot of the remediation
	// brake (RemediationBrake 1 engaged, 0 released), from the latest
	// brake_engaged or brake_released audit event it saw.
	EventRemediationBrake = "certpulse.remediation.brake"
	RemediationBrake      = "certpulse.remediation.brake"
	// ClockAhead marks a record the correlator passed on without
	// correlating it: stamped beyond its wall clock plus max_clock_skew
	// (the source's clock runs ahead).
	ClockAhead = "certpulse.clock_ahead"
	// HelloRetry: the server answered with a HelloRetryRequest (the
	// client's key share was not one it accepts: one more round trip).
	HelloRetry = "certpulse.tls.hello_retry"
)

// Event names of the log records certpulse emits.
const (
	EventProbeResult = "certpulse.probe.result"
	// EventFileResult is one certificate (and its issuers) found in a
	// certificate file target.
	EventFileResult = "certpulse.file.result"
)

// Criticality values.
const (
	CriticalityLow      = "low"
	CriticalityMedium   = "medium"
	CriticalityHigh     = "high"
	CriticalityCritical = "critical"
)

// ValidCriticality reports whether s is one of the four criticality values.
func ValidCriticality(s string) bool {
	switch s {
	case CriticalityLow, CriticalityMedium, CriticalityHigh, CriticalityCritical:
		return true
	}
	return false
}

// OCSP status values (certpulse.ocsp.status).
const (
	OCSPGood       = "good"
	OCSPRevoked    = "revoked"
	OCSPUnknown    = "unknown"
	OCSPTimeout    = "timeout"
	OCSPError      = "error"
	OCSPNotChecked = "not_checked"
)

// Lifecycle event attributes (certlifecycle receiver).
const (
	K8sClusterName           = "k8s.cluster.name"
	LifecycleType            = "certpulse.lifecycle.type"
	LifecycleEventID         = "certpulse.lifecycle.event_id"
	LifecycleSource          = "certpulse.lifecycle.source"
	LifecycleDuplicate       = "certpulse.lifecycle.duplicate"
	LifecycleFormat          = "certpulse.lifecycle.format"
	LifecycleEndpoints       = "certpulse.lifecycle.endpoints"
	LifecycleJobID           = "certpulse.lifecycle.job_id"
	LifecyclePipelineStage   = "certpulse.lifecycle.pipeline_stage"
	LifecycleArtifactVersion = "certpulse.lifecycle.artifact_version"
	LifecycleMessage         = "certpulse.lifecycle.message"
	LifecycleWindowStart     = "certpulse.lifecycle.window.start"
	LifecycleWindowEnd       = "certpulse.lifecycle.window.end"
	LifecycleIncidentID      = "certpulse.lifecycle.incident_id"
	LifecycleAttestation     = "certpulse.lifecycle.attestation"
	CertSerial               = "certpulse.cert.serial"
	// LifecycleSecretName is the Kubernetes Secret a cert-manager
	// Certificate is stored in (its spec.secretName).
	LifecycleSecretName        = "certpulse.lifecycle.secret_name"
	EventLifecyclePrefix       = "certpulse.lifecycle."
	LifecycleCloudEventsPrefix = "dev.certpulse."
)

// Lifecycle event types. The CloudEvents type of each is
// "dev.certpulse.certificate.<type>", except the maintenance pair,
// "dev.certpulse.maintenance.started" and "dev.certpulse.maintenance.ended".
const (
	LifecycleDiscovered    = "discovered"
	LifecycleIssued        = "issued"
	LifecycleRenewed       = "renewed"
	LifecycleRenewalFailed = "renewal_failed"
	// LifecycleRenewalOverdue: the issuer's own schedule passed (for
	// cert-manager, status.renewalTime) without a new certificate.
	LifecycleRenewalOverdue     = "renewal_overdue"
	LifecycleDeployed           = "deployed"
	LifecycleDeployFailed       = "deploy_failed"
	LifecycleValidated          = "validated"
	LifecycleRotated            = "rotated"
	LifecycleRevoked            = "revoked"
	LifecycleRetired            = "retired"
	LifecycleRotationPlanned    = "rotation_planned"
	LifecycleMaintenanceStarted = "maintenance_started"
	LifecycleMaintenanceEnded   = "maintenance_ended"
	// A remediation runbook's results (distributions/runbooks): the
	// bundle it restored, a rollout frozen. A runbook's successful
	// reissue or refresh is `deployed`, its failure `deploy_failed`.
	LifecycleRolledBack = "rolled_back"
	LifecycleFrozen     = "frozen"
	// LifecycleRemediation is the remediation exporter's audit trail: one
	// event per decision, with incident_id and the decision in
	// pipeline_stage. Its CloudEvents type is "dev.certpulse.remediation".
	LifecycleRemediation = "remediation"
)

// LifecycleTypes lists every lifecycle event type.
var LifecycleTypes = []string{
	LifecycleDiscovered, LifecycleIssued, LifecycleRenewed, LifecycleRenewalFailed, LifecycleRenewalOverdue, LifecycleDeployed,
	LifecycleDeployFailed, LifecycleValidated, LifecycleRotated, LifecycleRevoked, LifecycleRetired,
	LifecycleRotationPlanned, LifecycleMaintenanceStarted, LifecycleMaintenanceEnded, LifecycleRemediation,
	LifecycleRolledBack, LifecycleFrozen,
}

// CloudEventsType returns the CloudEvents type of a lifecycle event type.
func CloudEventsType(t string) string {
	switch t {
	case LifecycleMaintenanceStarted:
		return LifecycleCloudEventsPrefix + "maintenance.started"
	case LifecycleMaintenanceEnded:
		return LifecycleCloudEventsPrefix + "maintenance.ended"
	case LifecycleRemediation:
		return LifecycleCloudEventsPrefix + "remediation"
	}
	return LifecycleCloudEventsPrefix + "certificate." + t
}

// LifecycleTypeOf maps a CloudEvents type or a short type name to the short
// name; ok is false for an unknown type.
func LifecycleTypeOf(s string) (string, bool) {
	for _, t := range LifecycleTypes {
		if s == t || s == CloudEventsType(t) {
			return t, true
		}
	}
	return "", false
}

// Incident record attributes (tlscorrelator).
const (
	EventIncident         = "certpulse.incident"
	IncidentProbeReason   = "certpulse.incident.probe_reason"
	IncidentEndpoints     = "certpulse.incident.endpoints"
	IncidentEndpointCount = "certpulse.incident.endpoint_count"
	IncidentTargets       = "certpulse.incident.targets"
	IncidentVantages      = "certpulse.incident.vantages"
	IncidentProfiles      = "certpulse.incident.client_profiles"
	IncidentOpenedAt      = "certpulse.incident.opened_at"
	IncidentRecurring     = "certpulse.incident.recurring"
	IncidentFlaps         = "certpulse.incident.flaps"
	IncidentCorroborated  = "certpulse.incident.corroborated"
	IncidentSuppressedBy  = "certpulse.incident.suppressed_by"
	// IncidentResolution says how a resolved incident ended: "healthy"
	// (consecutive healthy results), "expired" (no data for idle_timeout),
	// "retired" (its endpoints left a `nodes` name's node set) or
	// "unobserved" (an edge signal too thin to judge for an edge window).
	IncidentResolution = "certpulse.incident.resolution"
	IncidentPrevState  = "certpulse.incident.previous_state"
	IncidentFailures   = "certpulse.incident.failures"
	// The incident's timeline (RFC 3339): the fault's start (its first
	// failing result, or the deploy that preceded it), the first
	// remediation action sent, fixed (the first time every affected
	// endpoint was healthy again), resolved.
	IncidentFaultAt    = "certpulse.incident.fault_at"
	IncidentActedAt    = "certpulse.incident.acted_at"
	IncidentFixedAt    = "certpulse.incident.fixed_at"
	IncidentResolvedAt = "certpulse.incident.resolved_at"
	// IncidentAutomated: a remediation action was sent for it (dry-run
	// policies count as without automation).
	IncidentAutomated = "certpulse.incident.automated"
	// Durations in seconds, on resolved records: opened - fault start,
	// first action - opened, fixed - fault start.
	IncidentTimeToDetect    = "certpulse.incident.time_to_detect"
	IncidentTimeToAct       = "certpulse.incident.time_to_act"
	IncidentTimeToFix       = "certpulse.incident.time_to_fix"
	EnrichLastGoodChain     = "certpulse.last_good.chain.sha256"
	EnrichLastGoodSPKI      = "certpulse.last_good.spki.sha256"
	EnrichTrafficWeight     = "certpulse.traffic_weight"
	EnrichLastDeployJob     = "certpulse.last_deploy.job_id"
	EnrichLastDeployVersion = "certpulse.last_deploy.artifact_version"
	EnrichLastDeployTime    = "certpulse.last_deploy.time"
	EnrichLastRenewalJob    = "certpulse.last_renewal.job_id"
)

// SeverityLevel is an incident's tier, lowest first: info, ticket, alert,
// page (the value of the Severity attribute).
type SeverityLevel string

// Severity values.
const (
	SeverityInfo   SeverityLevel = "info"
	SeverityTicket SeverityLevel = "ticket"
	SeverityAlert  SeverityLevel = "alert"
	SeverityPage   SeverityLevel = "page"
)

// Rank orders severities: info (and anything unknown) 0, ticket 1, alert 2,
// page 3.
func (s SeverityLevel) Rank() int {
	switch s {
	case SeverityTicket:
		return 1
	case SeverityAlert:
		return 2
	case SeverityPage:
		return 3
	}
	return 0
}

// SeverityRank orders severities (info lowest).
func SeverityRank(s SeverityLevel) int { return s.Rank() }

// UnmarshalText rejects unknown severities while a config is decoded.
func (s *SeverityLevel) UnmarshalText(b []byte) error {
	switch v := SeverityLevel(b); v {
	case SeverityInfo, SeverityTicket, SeverityAlert, SeverityPage, "":
		*s = v
		return nil
	}
	return fmt.Errorf("unknown severity %q: info, ticket, alert or page", b)
}

// State is an incident record's transition.
type State string

// Incident states.
const (
	StateOpened     State = "opened"
	StateUpdated    State = "updated"
	StateEscalated  State = "escalated"
	StateResolved   State = "resolved"
	StateSuppressed State = "suppressed"
)

// States lists every incident state.
var States = []State{StateOpened, StateUpdated, StateEscalated, StateResolved, StateSuppressed}

// Valid reports whether s is a known state.
func (s State) Valid() bool {
	for _, k := range States {
		if k == s {
			return true
		}
	}
	return false
}

// UnmarshalText rejects unknown states (config decoding).
func (s *State) UnmarshalText(b []byte) error {
	v := State(b)
	if !v.Valid() {
		return fmt.Errorf("unknown incident state %q: opened, updated, escalated, resolved or suppressed", b)
	}
	*s = v
	return nil
}

// Edge telemetry (tlsedge connector): what the proxies' logs say about the
// handshakes of real clients, normalized to one schema. The proxy configs
// under distributions/edge/ map each proxy's fields to these.
const (
	// EdgeProxy: nginx, haproxy, caddy, envoy.
	EdgeProxy = "certpulse.edge.proxy"
	// EdgeListener: the proxy's listen address (ip:port) that took the connection.
	EdgeListener = "certpulse.edge.listener"
	// EdgeLog: which log a record came from: access or error.
	EdgeLog = "certpulse.edge.log"
	// EdgeConnection identifies a client connection within a proxy
	// process (nginx $connection, Envoy's connection id, HAProxy's and
	// Caddy's client ip:port); EdgeConnectionRequests is the request's
	// number on it (nginx $connection_requests), 1 for the first.
	EdgeConnection         = "certpulse.edge.connection"
	EdgeConnectionRequests = "certpulse.edge.connection.requests"
	// EdgeTLSFailure: the proxy's own words for a failed handshake
	// (OpenSSL's reason string, Envoy's transport failure reason).
	EdgeTLSFailure = "certpulse.edge.tls_failure"
	// EdgeClientCiphers, EdgeClientGroups: what the client offered,
	// colon-separated, in its order (nginx $ssl_ciphers, $ssl_curves).
	EdgeClientCiphers = "certpulse.edge.client.ciphers"
	EdgeClientGroups  = "certpulse.edge.client.groups"
	// EdgeHandshake is true on the record that counts a connection's
	// handshake (the first request of a connection, or a failure), false
	// on later requests of a kept-alive connection.
	EdgeHandshake = "certpulse.edge.handshake"
	// EdgeOutcome: success or failure of the handshake.
	EdgeOutcome = "certpulse.edge.outcome"
	// EdgeClientClass: user agent family where logged (chrome, curl...),
	// else a fingerprint of the offered versions, ciphers and groups.
	EdgeClientClass = "certpulse.edge.client.class"
	// HelloRetrySource: "inferred" when the tlsedge connector inferred a
	// HelloRetryRequest from the offered and chosen groups.
	HelloRetrySource = "certpulse.tls.hello_retry.source"
	// TLSEarlyData: the request came as 0-RTT early data.
	TLSEarlyData = "tls.early_data"
	// TLSCipherSuiteID is the IANA code point of tls.cipher where a proxy
	// logs a number (Caddy).
	TLSCipherSuiteID = "tls.cipher_suite.id"
	// Policy what-if: the candidate policy, the verdict and what would
	// break (version, cipher, group).
	Policy        = "certpulse.policy"
	PolicyVerdict = "certpulse.policy.verdict"
	PolicyRule    = "certpulse.policy.rule"
	PolicyFails   = "certpulse.policy.would_fail"
)

// Edge windows: the tlsedge connector's summary of one node's handshakes
// over one interval, for the correlator (user-impact signal).
const (
	EventEdgeWindow          = "certpulse.edge.window"
	EdgeWindowStart          = "certpulse.edge.window.start"
	EdgeHandshakes           = "certpulse.edge.handshakes"
	EdgeHandshakesFailed     = "certpulse.edge.handshakes.failed"
	EdgeHandshakesResumed    = "certpulse.edge.handshakes.resumed"
	EdgeFailureReasons       = "certpulse.edge.failure_reasons"
	IncidentEdgeFailureShare = "certpulse.incident.edge.failure_share"
	IncidentEdgeHandshakes   = "certpulse.incident.edge.handshakes"
	IncidentEdgeNodes        = "certpulse.incident.edge.nodes"
)

// Network Error Logging: failed (and sampled successful) requests real
// browsers reported to the nel receiver (W3C Reporting API, NEL v0).
const (
	EventNELReport = "certpulse.nel.report"
	// NELType is the report's type ("tls.cert.date_invalid", "ok").
	NELType = "certpulse.nel.type"
	// NELPhase: dns, connection or application.
	NELPhase = "certpulse.nel.phase"
	// NELProtocol is the ALPN protocol the browser used ("h2", "http/1.1").
	NELProtocol = "certpulse.nel.protocol"
	// NELElapsed is the request's elapsed time in milliseconds.
	NELElapsed = "certpulse.nel.elapsed_time"
	// NELSamplingFraction is the policy's sampling fraction the report was
	// sent under (failure_fraction or success_fraction).
	NELSamplingFraction = "certpulse.nel.sampling_fraction"
	// NELAge: how long the browser held the report before sending it, ms.
	NELAge = "certpulse.nel.age"

	URLScheme        = "url.scheme"
	HTTPMethod       = "http.request.method"
	HTTPStatusCode   = "http.response.status_code"
	ClientAddress    = "client.address"
	UserAgentName    = "user_agent.name"
	UserAgentVersion = "user_agent.version"

	// ClientsFailing lists the client families failing, comma-separated
	// and sorted ("chrome", "java,openssl"), on NEL reports (the browser's
	// family) and on incidents.
	ClientsFailing = "certpulse.clients.failing"
	// IncidentUserReports: NEL reports of real browsers behind an incident
	// in the last nel.window.
	IncidentUserReports = "certpulse.incident.user_reports"
)
