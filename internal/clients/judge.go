package clients

import (
	"crypto/tls"
	"fmt"
	"slices"

	"github.com/certpulse/certpulse/internal/attrs"
)

// Evidence is what one probe (under certpulse's strict profile) saw of an
// endpoint, reduced to what decides whether a client family connects.
type Evidence struct {
	// Reasons are the probe's reason codes.
	Reasons []attrs.Reason
	// Version and Cipher are what the server chose for the probe, or for
	// its permissive retry when the probe's own offer was refused; 0 when
	// unknown.
	Version, Cipher uint16
	// AIACompleted: the chain was incomplete and the issuer fetched
	// through AIA completed it.
	AIACompleted bool
	// MinRSABits is the smallest RSA key among the presented certificates
	// (0: none).
	MinRSABits int
	// ChainLen is how many certificates the server presented.
	ChainLen int
	// ClientCertRequested: the server asked for a client certificate.
	ClientCertRequested bool
	// ChainInvalid: the chain breaks a rule (name constraints, key usage).
	ChainInvalid bool
}

// Verdict is a family's predicted outcome.
type Verdict struct {
	Accept bool
	Class  Class
	// Why says what decides it, in a phrase.
	Why string
}

func (e Evidence) has(r ...attrs.Reason) bool {
	for _, x := range r {
		if slices.Contains(e.Reasons, x) {
			return true
		}
	}
	return false
}

func reject(c Class, why string, args ...any) Verdict {
	return Verdict{Class: c, Why: fmt.Sprintf(why, args...)}
}

// Judge predicts what a client of family m does with the endpoint e
// describes: accept, or the class of its failure. Pure. The order is the
// order a handshake meets things: the connection, the server's version
// and suite, the certificate, then the server's demand for a client
// certificate.
func (m Model) Judge(e Evidence) Verdict {
	switch {
	case e.has(attrs.ReasonConnectionRefused, attrs.ReasonConnectionReset, attrs.ReasonHandshakeTimeout, attrs.ReasonDNSFailure):
		return reject(ClassNetwork, "no connection")
	case e.has(attrs.ReasonNotTLS):
		return reject(m.class(SituationNotTLS, ClassNetwork), "the port does not speak TLS")
	}
	if e.Version != 0 && e.Version < m.MinVersion {
		return reject(ClassProtocol, "the server speaks %s at most", tls.VersionName(e.Version))
	}
	if e.Version != 0 && e.Version < tls.VersionTLS13 && e.Cipher != 0 && !m.Suites.Offers(e.Cipher) {
		return reject(ClassProtocol, "the server picks %s, which %s does not offer", tls.CipherSuiteName(e.Cipher), m.Family)
	}
	if e.MinRSABits > 0 && e.MinRSABits < m.MinRSABits {
		return reject(ClassWeak, "an RSA key of %d bits, below %d", e.MinRSABits, m.MinRSABits)
	}
	if e.has(attrs.ReasonWeakSignature) && !m.SHA1 {
		return reject(m.class(SituationSHA1, ClassWeak), "a SHA-1 signature")
	}
	switch {
	case e.has(attrs.ReasonSelfSigned, attrs.ReasonUnknownCA) && e.ChainInvalid:
		return reject(ClassInvalid, "the chain breaks a constraint (name constraints or key usage)")
	case e.has(attrs.ReasonSelfSigned, attrs.ReasonUnknownCA):
		return reject(ClassUntrusted, "no path to a trusted root")
	case e.has(attrs.ReasonMissingIntermediate) && !(m.AIA && e.AIACompleted):
		return reject(ClassUntrusted, "the chain is incomplete and %s does not fetch issuers", m.Family)
	case e.has(attrs.ReasonExpiredRoot) && m.AnchorExpiry:
		return reject(ClassExpired, "the only path ends at an expired root")
	case e.has(attrs.ReasonExpiredLeaf, attrs.ReasonExpiredIntermediate, attrs.ReasonNotYetValid):
		return reject(ClassExpired, "a certificate outside its validity period")
	case e.has(attrs.ReasonHostnameMismatch):
		return reject(ClassHostname, "the certificate does not cover the name")
	case m.MaxChain > 0 && e.ChainLen > m.MaxChain:
		return reject(ClassInvalid, "a chain of %d certificates, more than %d", e.ChainLen, m.MaxChain)
	}
	if e.ClientCertRequested && e.has(attrs.ReasonHandshakeFailure) {
		if e.Version == tls.VersionTLS13 {
			return reject(m.class(SituationClientCert13, ClassClientCert), "the server requires a client certificate")
		}
		return reject(m.class(SituationClientCert12, ClassProtocol), "the server requires a client certificate (a handshake_failure alert)")
	}
	if e.has(attrs.ReasonHandshakeFailure, attrs.ReasonProtocolMismatch, attrs.ReasonCipherMismatch) && e.Version == 0 {
		return reject(ClassProtocol, "the handshake fails")
	}
	return Verdict{Accept: true, Class: ClassOK, Why: "a validated handshake"}
}
