package tlsinspect

import (
	"crypto/tls"
	"crypto/x509"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// Profile is one client profile: the TLS parameters a class of clients
// offers and the trust store it validates against.
type Profile struct {
	Name string
	// TLS holds MinVersion, MaxVersion, CipherSuites and client
	// Certificates; everything else is set by the inspector.
	TLS *tls.Config
	// Roots are the trust anchors this profile validates against.
	Roots *x509.CertPool
}

// Target is one endpoint to inspect.
type Target struct {
	// Endpoint is the host:port dialed.
	Endpoint string
	// ServerName is sent as SNI and checked against the leaf. Defaults to
	// the host part of Endpoint.
	ServerName string
	// StartTLS is "" for implicit TLS or "smtp".
	StartTLS string
	// Pins are SPKI pins, "sha256/<base64>"; any match in the chain passes.
	Pins []string
	// Profiles are validated in order; each yields its own Result.
	Profiles []Profile
}

// Finding is one reason code with the text a human can act on.
type Finding struct {
	Reason attrs.Reason
	Detail string
}

// OCSPResult is what OCSP said about the leaf.
type OCSPResult struct {
	// Status is one of the attrs.OCSP* values.
	Status string
	// Source is "responder", "staple" or "" when not checked.
	Source string
	// Stapled is true when the server stapled a response.
	Stapled bool
	// StapleAge is now - ThisUpdate of the stapled response.
	StapleAge time.Duration
	// ResponderLatency is the duration of the last responder query.
	ResponderLatency time.Duration
	// ResponderQueried is true when ResponderLatency is meaningful.
	ResponderQueried bool
}

// Result is the outcome of one probe under one client profile.
type Result struct {
	Profile    string
	ServerName string
	Host       string
	Port       int
	Start      time.Time

	// Phase durations.
	Connect   time.Duration
	Handshake time.Duration
	OCSPTime  time.Duration
	Total     time.Duration

	PeerAddress string
	PeerPort    int

	Established bool
	Resumed     bool
	Version     uint16
	CipherSuite uint16
	// Curve is the negotiated key exchange group (0 when none, or RSA key
	// exchange).
	Curve tls.CurveID
	// HelloRetry is true when the server answered the first ClientHello
	// with a HelloRetryRequest (TLS 1.3: no key share it accepts was sent,
	// one extra round trip for every such client).
	HelloRetry bool

	// ClientCertRequested: the server asked for a client certificate.
	ClientCertRequested bool
	// ChainInvalid: the chain leads to a trusted root but breaks a rule on
	// the way (name constraints, key usage); reported as unknown_ca.
	ChainInvalid bool

	// Chain is the chain the server presented, in order (capped).
	Chain []*x509.Certificate
	// ChainTruncated is set when the server presented more certificates
	// than the inspector keeps.
	ChainTruncated bool
	// PresentedCerts is how many certificates the server presented.
	PresentedCerts int
	// Path is the validated path, leaf first, trust anchor last, when one
	// could be built (possibly at a time other than now, to look past expiry).
	Path []*x509.Certificate

	OCSP      OCSPResult
	CRLStatus string

	// Findings are sorted by attrs.ProbePrecedence; empty means ok.
	Findings []Finding
}

// Primary returns the primary reason code.
func (r *Result) Primary() attrs.Reason {
	if len(r.Findings) == 0 {
		return attrs.ReasonOK
	}
	return r.Findings[0].Reason
}

// Reasons returns every reason code, primary first.
func (r *Result) Reasons() []attrs.Reason {
	out := make([]attrs.Reason, 0, len(r.Findings))
	for _, f := range r.Findings {
		out = append(out, f.Reason)
	}
	return out
}

// Success reports whether clients of this profile complete a validated
// handshake: no finding is a failing one (warnings such as expiring_soon do
// not count).
func (r *Result) Success() bool {
	if !r.Established {
		return false // whatever the reason, this profile's clients did not connect
	}
	for _, f := range r.Findings {
		if info, _ := attrs.Info(f.Reason); info.Failing {
			return false
		}
	}
	return true
}

// Leaf returns the presented leaf, or nil.
func (r *Result) Leaf() *x509.Certificate {
	if len(r.Chain) == 0 {
		return nil
	}
	return r.Chain[0]
}
