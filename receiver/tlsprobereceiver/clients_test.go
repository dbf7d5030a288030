package tlsprobereceiver

import (
	"crypto/tls"
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/certpulse/certpulse/internal/clients"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

func TestJudgesClients(t *testing.T) {
	for name, tc := range map[string]struct {
		p    *tlsinspect.Profile
		want bool
	}{
		"unknown profile":    {nil, false},
		"inspector default":  {&tlsinspect.Profile{}, true},
		"configtls default":  {&tlsinspect.Profile{TLS: &tls.Config{MinVersion: tls.VersionTLS12}}, true},
		"legacy floor":       {&tlsinspect.Profile{TLS: &tls.Config{MinVersion: tls.VersionTLS10}}, true},
		"tls13 floor":        {&tlsinspect.Profile{TLS: &tls.Config{MinVersion: tls.VersionTLS13}}, false},
		"version cap":        {&tlsinspect.Profile{TLS: &tls.Config{MaxVersion: tls.VersionTLS12}}, false},
		"own cipher list":    {&tlsinspect.Profile{TLS: &tls.Config{CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}}, false},
		"client certificate": {&tlsinspect.Profile{TLS: &tls.Config{GetClientCertificate: func(*tls.CertificateRequestInfo) (*tls.Certificate, error) { return nil, nil }}}, false},
	} {
		assert.Equal(t, tc.want, judgesClients(tc.p), name)
	}
}

func TestClientsPhrase(t *testing.T) {
	all := clients.Presets()
	for name, tc := range map[string]struct {
		failing []clients.Family
		judged  bool
		want    string
	}{
		"not judged":    {[]clients.Family{clients.Java}, false, ""},
		"nobody fails":  {nil, true, ""},
		"everyone does": {clients.Families(), true, ""},
		"some":          {[]clients.Family{clients.OpenSSL, clients.Java}, true, "; clients failing: openssl, java; connecting: python, node, gnutls, chrome, go"},
	} {
		assert.Equal(t, tc.want, clientsPhrase(tc.failing, tc.judged, all), name)
	}
	assert.Len(t, clients.Select(nil), len(all))
	sel := clients.Select([]clients.Family{clients.Java, clients.Chrome})
	assert.Equal(t, []clients.Family{clients.Chrome, clients.Java}, []clients.Family{sel[0].Family, sel[1].Family}, "in the presets' order")
}
