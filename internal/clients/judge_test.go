package clients

import (
	"crypto/tls"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/attrs"
)

func TestJudge(t *testing.T) {
	rs := func(r ...attrs.Reason) []attrs.Reason { return r }
	tls13 := Evidence{Version: tls.VersionTLS13, Cipher: tls.TLS_AES_128_GCM_SHA256}
	with := func(e Evidence, f func(*Evidence)) Evidence { f(&e); return e }
	cases := []struct {
		name string
		ev   Evidence
		want map[Family]Class // families not named accept
	}{
		{"healthy", tls13, nil},
		{"revoked: no default client checks", with(tls13, func(e *Evidence) { e.Reasons = rs(attrs.ReasonRevoked) }), nil},
		{"missing intermediate AIA completes", with(tls13, func(e *Evidence) { e.Reasons, e.AIACompleted = rs(attrs.ReasonMissingIntermediate), true }),
			map[Family]Class{OpenSSL: ClassUntrusted, Python: ClassUntrusted, Node: ClassUntrusted, GnuTLS: ClassUntrusted, Go: ClassUntrusted, Java: ClassUntrusted}},
		{"missing intermediate nobody can fetch", with(tls13, func(e *Evidence) { e.Reasons = rs(attrs.ReasonMissingIntermediate) }),
			map[Family]Class{OpenSSL: ClassUntrusted, Python: ClassUntrusted, Node: ClassUntrusted, GnuTLS: ClassUntrusted, Chrome: ClassUntrusted, Go: ClassUntrusted, Java: ClassUntrusted}},
		{"expired root: Java ignores anchor validity", with(tls13, func(e *Evidence) { e.Reasons = rs(attrs.ReasonExpiredRoot) }),
			map[Family]Class{OpenSSL: ClassExpired, Python: ClassExpired, Node: ClassExpired, GnuTLS: ClassExpired, Chrome: ClassExpired, Go: ClassExpired}},
		{"SHA-1: Java accepts, Chromium says invalid", with(tls13, func(e *Evidence) { e.Reasons = rs(attrs.ReasonWeakSignature) }),
			map[Family]Class{OpenSSL: ClassWeak, Python: ClassWeak, Node: ClassWeak, GnuTLS: ClassWeak, Chrome: ClassInvalid, Go: ClassWeak}},
		{"RSA 1024: security level 2 refuses", with(tls13, func(e *Evidence) { e.Reasons, e.MinRSABits = rs(attrs.ReasonWeakKey), 1024 }),
			map[Family]Class{OpenSSL: ClassWeak, Python: ClassWeak}},
		{"TLS 1.1 only: GnuTLS still speaks it", Evidence{Reasons: rs(attrs.ReasonProtocolMismatch), Version: tls.VersionTLS11, Cipher: tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA},
			map[Family]Class{OpenSSL: ClassProtocol, Python: ClassProtocol, Node: ClassProtocol, Chrome: ClassProtocol, Go: ClassProtocol, Java: ClassProtocol}},
		{"static RSA key exchange only", Evidence{Reasons: rs(attrs.ReasonCipherMismatch), Version: tls.VersionTLS12, Cipher: tls.TLS_RSA_WITH_AES_256_GCM_SHA384},
			map[Family]Class{Python: ClassProtocol, Go: ClassProtocol}},
		{"ECDSA CBC-SHA1 only", Evidence{Version: tls.VersionTLS12, Cipher: tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA},
			map[Family]Class{Python: ClassProtocol, Chrome: ClassProtocol}},
		{"the suite decides before the key (RSA 512 over RSA key exchange)", Evidence{Reasons: rs(attrs.ReasonWeakKey), Version: tls.VersionTLS12, Cipher: tls.TLS_RSA_WITH_AES_128_GCM_SHA256, MinRSABits: 512},
			map[Family]Class{OpenSSL: ClassWeak, Python: ClassProtocol, Node: ClassWeak, GnuTLS: ClassWeak, Chrome: ClassWeak, Go: ClassProtocol, Java: ClassWeak}},
		{"client certificate required, TLS 1.2", Evidence{Reasons: rs(attrs.ReasonHandshakeFailure), Version: tls.VersionTLS12, Cipher: tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256, ClientCertRequested: true},
			map[Family]Class{OpenSSL: ClassProtocol, Python: ClassProtocol, Node: ClassProtocol, GnuTLS: ClassProtocol, Chrome: ClassClientCert, Go: ClassProtocol, Java: ClassProtocol}},
		{"a chain longer than Java's 10", with(tls13, func(e *Evidence) { e.Reasons, e.ChainLen = rs(attrs.ReasonBadChainOrder), 12 }), map[Family]Class{Java: ClassInvalid}},
		{"name constraints", with(tls13, func(e *Evidence) { e.Reasons, e.ChainInvalid = rs(attrs.ReasonUnknownCA), true }),
			map[Family]Class{OpenSSL: ClassInvalid, Python: ClassInvalid, Node: ClassInvalid, GnuTLS: ClassInvalid, Chrome: ClassInvalid, Go: ClassInvalid, Java: ClassInvalid}},
		{"not TLS", Evidence{Reasons: rs(attrs.ReasonNotTLS)},
			map[Family]Class{OpenSSL: ClassNetwork, Python: ClassNetwork, Node: ClassNetwork, GnuTLS: ClassNetwork, Chrome: ClassNetwork, Go: ClassNetwork, Java: ClassNetwork}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			for _, m := range Presets() {
				v := m.Judge(c.ev)
				want, fails := c.want[m.Family]
				if !fails {
					want = ClassOK
				}
				require.Equal(t, !fails, v.Accept, "%s: %s", m.Family, v.Why)
				require.Equal(t, want, v.Class, "%s: %s", m.Family, v.Why)
			}
		})
	}
}

func TestFailingJoin(t *testing.T) {
	ev := Evidence{Reasons: []attrs.Reason{attrs.ReasonMissingIntermediate}, Version: tls.VersionTLS13, AIACompleted: true}
	require.Equal(t, "openssl,python,node,gnutls,go,java", Join(Failing(Presets(), ev)))
	require.Empty(t, Join(Failing(Presets(), Evidence{Version: tls.VersionTLS13})))
}

func TestClassOf(t *testing.T) {
	for msg, want := range map[string]Class{
		"- Status: The certificate is NOT trusted. The certificate chain uses expired certificate.": ClassExpired,
		"The certificate is NOT trusted. The certificate issuer is unknown.":                        ClassUntrusted,
		"page load error net::ERR_CERT_COMMON_NAME_INVALID":                                         ClassHostname,
		"SSL certificate problem: EE certificate key too weak":                                      ClassWeak,
		"tlsv13 alert certificate required":                                                         ClassClientCert,
		"legacy sigalg disallowed or unsupported":                                                   ClassProtocol,
		"tls: first record does not look like a TLS handshake":                                      ClassNetwork,
		"permitted subtree violation":                                                               ClassInvalid,
		"something nobody says":                                                                     ClassInvalid,
	} {
		require.Equal(t, want, ClassOf(msg), msg)
	}
}

func TestSuitesOffers(t *testing.T) {
	chrome, _ := Preset(Chrome)
	require.True(t, chrome.Suites.Offers(tls.TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA))
	require.False(t, chrome.Suites.Offers(tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA))
	require.True(t, chrome.Suites.Offers(tls.TLS_RSA_WITH_AES_128_GCM_SHA256))
	g, _ := Preset(Go)
	require.False(t, g.Suites.Offers(tls.TLS_RSA_WITH_AES_128_GCM_SHA256))
	require.False(t, g.Suites.Offers(tls.TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA))
	require.True(t, g.Suites.Offers(tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256))
}
