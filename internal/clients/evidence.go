package clients

import (
	"bytes"
	"crypto/rsa"
	"strings"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// EvidenceOf reduces a probe result (certpulse's own strict profile, the
// trust store the clients share) to the evidence the presets judge.
func EvidenceOf(r *tlsinspect.Result) Evidence {
	e := Evidence{Reasons: r.Reasons(), Version: r.Version, Cipher: r.CipherSuite, ChainLen: r.PresentedCerts,
		ClientCertRequested: r.ClientCertRequested, ChainInvalid: r.ChainInvalid}
	e.AIACompleted = e.has(attrs.ReasonMissingIntermediate) && len(r.Path) > len(r.Chain)
	for i, c := range r.Chain {
		// A root sent along is not checked by anyone. Self-issued as
		// x509 reads it, by the encoded names: formatting both names
		// was 1.5% of all the agent's allocations (make scale).
		if i > 0 && bytes.Equal(c.RawSubject, c.RawIssuer) {
			continue
		}
		if k, ok := c.PublicKey.(*rsa.PublicKey); ok && (e.MinRSABits == 0 || k.N.BitLen() < e.MinRSABits) {
			e.MinRSABits = k.N.BitLen()
		}
	}
	return e
}

// Failing lists the families among ms that fail on e, in ms's order.
func Failing(ms []Model, e Evidence) []Family {
	var out []Family
	for _, m := range ms {
		if !m.Judge(e).Accept {
			out = append(out, m.Family)
		}
	}
	return out
}

// Join renders families as certpulse.clients.failing does: comma
// separated, in the presets' order.
func Join(fs []Family) string {
	s := make([]string, len(fs))
	for i, f := range fs {
		s[i] = string(f)
	}
	return strings.Join(s, ",")
}
