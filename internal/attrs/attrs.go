// Package attrs defines, once, every attribute name and reason code that
// certpulse components share (see ../shared/DESIGN.md and docs/schema.md).
package attrs

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
	ServiceName        = "service.name"
	ServiceNamespace   = "service.namespace"
	DeploymentEnv      = "deployment.environment.name"
	CloudRegion        = "cloud.region"
)

// certpulse's own attributes.
const (
	ReasonKey      = "certpulse.reason"
	ReasonsKey     = "certpulse.reasons"
	ReasonSideKey  = "certpulse.reason.side"
	ClientProfile  = "certpulse.client_profile"
	Vantage        = "certpulse.vantage"
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
	Phase          = "certpulse.phase"
	CertPosition   = "certpulse.cert.position"
	CertRole       = "certpulse.cert.role"
	ProbeID        = "certpulse.probe.id"
	ProbeDuration  = "certpulse.probe.duration_ms"
	StartTLS       = "certpulse.starttls"
	PinsConfigured = "certpulse.pins.configured"
	ProbeEndpoint  = "certpulse.endpoint"
)

// Event names of the log records certpulse emits.
const (
	EventProbeResult = "certpulse.probe.result"
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
