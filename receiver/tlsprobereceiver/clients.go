package tlsprobereceiver

import (
	"crypto/tls"
	"strings"

	"github.com/certpulse/certpulse/internal/clients"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// clientsFailing judges a result under the emitter's client presets
// (internal/clients): the families whose default client would fail where
// this profile probed. Only a profile that probes as those clients do is
// judged: no client certificate, no cipher list and no version cap of its
// own, a floor no higher than TLS 1.2 (the default profile, or one with
// only its own roots). judged is false otherwise.
func (e *emitter) clientsFailing(t *probeTarget, r *tlsinspect.Result) (failing []clients.Family, judged bool) {
	if len(e.families) == 0 || !judgesClients(profileOf(t, r.Profile)) {
		return nil, false
	}
	return clients.Failing(e.families, clients.EvidenceOf(r)), true
}

func profileOf(t *probeTarget, name string) *tlsinspect.Profile {
	for i := range t.profiles {
		if t.profiles[i].Name == name {
			return &t.profiles[i]
		}
	}
	return nil
}

// judgesClients: a profile whose handshake is the default clients' own.
func judgesClients(p *tlsinspect.Profile) bool {
	if p == nil {
		return false
	}
	c := p.TLS
	return c == nil || c.MinVersion <= tls.VersionTLS12 && c.MaxVersion == 0 && len(c.CipherSuites) == 0 &&
		len(c.Certificates) == 0 && c.GetClientCertificate == nil
}

// clientsPhrase says who is hit when the client families part: "; fails
// for openssl, java clients; chrome connects". Nothing when every family
// judged agrees (all fail or none does).
func clientsPhrase(failing []clients.Family, judged bool, families []clients.Model) string {
	if !judged || len(failing) == 0 || len(failing) == len(families) {
		return ""
	}
	var ok []string
	for _, m := range families {
		if !strings.Contains(","+clients.Join(failing)+",", ","+string(m.Family)+",") {
			ok = append(ok, string(m.Family))
		}
	}
	return "; clients failing: " + strings.ReplaceAll(clients.Join(failing), ",", ", ") + "; connecting: " + strings.Join(ok, ", ")
}
