package attrs

// Reason is a certpulse reason code (certpulse.reason).
type Reason string

// Reason codes a single probe can report, plus the correlator-derived ones.
const (
	ReasonOK Reason = "ok"

	// Server side.
	ReasonExpiredLeaf         Reason = "expired_leaf"
	ReasonExpiredIntermediate Reason = "expired_intermediate"
	// ReasonExpiredRoot: a trust anchor expired. File targets report it for
	// an expired self-signed CA certificate (a CA bundle, a cluster CA).
	ReasonExpiredRoot         Reason = "expired_root"
	ReasonNotYetValid         Reason = "not_yet_valid"
	ReasonMissingIntermediate Reason = "missing_intermediate"
	ReasonBadChainOrder       Reason = "bad_chain_order"
	ReasonHostnameMismatch    Reason = "hostname_mismatch"
	ReasonSelfSigned          Reason = "self_signed"
	ReasonRevoked             Reason = "revoked"
	ReasonWeakSignature       Reason = "weak_signature"
	ReasonWeakKey             Reason = "weak_key"
	ReasonExpiringSoon        Reason = "expiring_soon"
	ReasonOCSPStaleStaple     Reason = "ocsp_stale_staple"
	// ReasonResumptionFailed: a node of a `nodes` target refuses sessions
	// its neighbours issued while they resume each other's (session ticket
	// keys out of sync; full handshakes cost clients a round trip and the
	// server CPU). A warning: clients still connect.
	ReasonResumptionFailed Reason = "resumption_failed"

	// Client or policy side.
	ReasonUnknownCA        Reason = "unknown_ca"
	ReasonPinMismatch      Reason = "pin_mismatch"
	ReasonProtocolMismatch Reason = "protocol_mismatch"
	ReasonCipherMismatch   Reason = "cipher_mismatch"

	// Network or responder.
	ReasonOCSPTimeout       Reason = "ocsp_timeout"
	ReasonOCSPError         Reason = "ocsp_error"
	ReasonHandshakeTimeout  Reason = "handshake_timeout"
	ReasonConnectionRefused Reason = "connection_refused"
	ReasonConnectionReset   Reason = "connection_reset"
	ReasonDNSFailure        Reason = "dns_failure"
	ReasonNotTLS            Reason = "not_tls"
	// ReasonHandshakeFailure is certpulse's catch-all for a TLS handshake the
	// server aborted for a cause none of the codes above names (for example a
	// server that demands a client certificate, or sends an oversized
	// certificate message). It is not in the original reason list (docs/architecture.md); see docs/schema.md.
	ReasonHandshakeFailure Reason = "handshake_failure"
	// ReasonFileError is a certificate file target (tlsprobe `files`) that
	// cannot be read or holds no certificate: nothing about it can be
	// judged. Not in the original reason list; see docs/schema.md.
	ReasonFileError Reason = "file_error"

	// Derived by the correlator.
	ReasonPostDeployRegression Reason = "post_deploy_regression"
	ReasonPropagationLag       Reason = "propagation_lag"
	ReasonRenewalFailed        Reason = "renewal_failed"
	ReasonRenewalOverdue       Reason = "renewal_overdue"
	ReasonUnexpectedCertChange Reason = "unexpected_cert_change"
	// From edge telemetry (real clients, tlsedge connector): handshake
	// success below the threshold for a service, and session resumption
	// low on some nodes while others resume.
	ReasonHandshakeFailureRate Reason = "handshake_failure_rate"
	ReasonResumptionDegraded   Reason = "resumption_degraded"
)

// Side says who must act on a reason (certpulse.reason.side).
type Side string

// Sides.
const (
	SideNone    Side = ""
	SideServer  Side = "server"
	SideClient  Side = "client"
	SideNetwork Side = "network"
)

// ReasonInfo describes one probe reason code.
type ReasonInfo struct {
	Reason Reason
	Side   Side
	// Failing is true when clients of the profile cannot complete a
	// validated handshake; false for warnings that leave the handshake working.
	Failing bool
}

// ProbePrecedence lists the reason codes a single probe can report, most
// specific and most urgent first. The primary reason of a probe result is the
// first of its reasons in this order. Network codes come first because when
// they apply nothing else could be observed; among certificate codes, what
// breaks every client comes before what breaks some, and warnings come last.
var ProbePrecedence = []ReasonInfo{
	{ReasonFileError, SideServer, false},
	{ReasonDNSFailure, SideNetwork, true},
	{ReasonConnectionRefused, SideNetwork, true},
	{ReasonConnectionReset, SideNetwork, true},
	{ReasonHandshakeTimeout, SideNetwork, true},
	{ReasonNotTLS, SideNetwork, true},
	{ReasonProtocolMismatch, SideClient, true},
	{ReasonCipherMismatch, SideClient, true},
	{ReasonHandshakeFailure, SideServer, true},
	{ReasonRevoked, SideServer, true},
	{ReasonExpiredLeaf, SideServer, true},
	{ReasonExpiredIntermediate, SideServer, true},
	{ReasonExpiredRoot, SideServer, true},
	{ReasonNotYetValid, SideServer, true},
	{ReasonHostnameMismatch, SideServer, true},
	{ReasonSelfSigned, SideServer, true},
	{ReasonMissingIntermediate, SideServer, true},
	{ReasonUnknownCA, SideClient, true},
	{ReasonWeakSignature, SideServer, true},
	{ReasonPinMismatch, SideClient, true},
	{ReasonWeakKey, SideServer, false},
	{ReasonBadChainOrder, SideServer, false},
	{ReasonOCSPStaleStaple, SideServer, false},
	{ReasonOCSPTimeout, SideNetwork, false},
	{ReasonOCSPError, SideNetwork, false},
	{ReasonResumptionFailed, SideServer, false},
	{ReasonExpiringSoon, SideServer, false},
}

var probeRank = func() map[Reason]int {
	m := make(map[Reason]int, len(ProbePrecedence))
	for i, ri := range ProbePrecedence {
		m[ri.Reason] = i
	}
	return m
}()

// Info returns the description of a probe reason code; ok is false for codes
// that a probe does not report.
func Info(r Reason) (ReasonInfo, bool) {
	i, ok := probeRank[r]
	if !ok {
		return ReasonInfo{Reason: r}, false
	}
	return ProbePrecedence[i], true
}

// Rank returns r's position in ProbePrecedence (lower is more important), or
// len(ProbePrecedence) for a code outside it.
func Rank(r Reason) int {
	if i, ok := probeRank[r]; ok {
		return i
	}
	return len(ProbePrecedence)
}
