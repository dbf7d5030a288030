package tlsedgeconnector

import (
	"testing"

	"github.com/certpulse/certpulse/internal/attrs"
)

func TestReasonFor(t *testing.T) {
	for failure, want := range map[string]attrs.Reason{
		"no shared cipher":                attrs.ReasonCipherMismatch,
		"unsupported protocol":            attrs.ReasonProtocolMismatch,
		"version too low":                 attrs.ReasonProtocolMismatch,
		"tlsv1 alert protocol version":    attrs.ReasonProtocolMismatch,
		"tlsv1 alert unknown ca":          attrs.ReasonUnknownCA,
		"sslv3 alert certificate expired": attrs.ReasonExpiredLeaf,
		"sslv3 alert certificate revoked": attrs.ReasonRevoked,
		"sslv3 alert bad certificate":     attrs.ReasonHandshakeFailure,
		"http request":                    attrs.ReasonNotTLS,
		"wrong version number":            attrs.ReasonNotTLS,
		"TLS_error:|268435709:SSL routines:OPENSSL_internal:NO_SHARED_CIPHER:TLS_error_end":       attrs.ReasonCipherMismatch,
		"TLS_error:|268436502:SSL routines:OPENSSL_internal:TLSV1_ALERT_UNKNOWN_CA:TLS_error_end": attrs.ReasonUnknownCA,
		"TLS_error:|268435703:SSL routines:OPENSSL_internal:UNSUPPORTED_PROTOCOL:TLS_error_end":   attrs.ReasonProtocolMismatch,
		"something new": attrs.ReasonHandshakeFailure,
	} {
		if got := reasonFor(failure); got != want {
			t.Errorf("reasonFor(%q) = %s, want %s", failure, got, want)
		}
	}
}

func TestNames(t *testing.T) {
	for in, want := range map[string]string{
		"ECDHE-RSA-AES128-GCM-SHA256": "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"TLS_AES_256_GCM_SHA384":      "TLS_AES_256_GCM_SHA384",
		"4865":                        "TLS_AES_128_GCM_SHA256", // Caddy logs the id
		"49199":                       "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256",
		"0x1302":                      "TLS_AES_256_GCM_SHA384",
		"0xff85":                      "0xFF85",
		"-":                           "",
		"CAMELLIA256-SHA":             "CAMELLIA256-SHA",
	} {
		if got := cipherName(in); got != want {
			t.Errorf("cipherName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"prime256v1": "P256", "X25519": "X25519", "secp384r1": "P384", "0x11ec": "X25519MLKEM768", "0x0a0a": "0x0a0a", "": "", "001D": "X25519", "0017": "P256", "11EC": "X25519MLKEM768"} {
		if got := groupName(in); got != want {
			t.Errorf("groupName(%q) = %q, want %q", in, got, want)
		}
	}
	for in, want := range map[string]string{"TLSv1.3": "1.3", "TLSv1": "1.0", "771": "1.2", "TLSv1_1": "1.1", "-": ""} {
		if got := versionName(in); got != want {
			t.Errorf("versionName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestInferHRR(t *testing.T) {
	for _, tc := range []struct {
		name          string
		h             handshake
		hrr, knowable bool
	}{
		{"first group chosen", handshake{version: "1.3", group: "X25519", offeredGroups: []string{"X25519", "P256"}}, false, true},
		{"second group chosen", handshake{version: "1.3", group: "P384", offeredGroups: []string{"X25519", "P384"}}, true, true},
		{"hybrid first, classical share too", handshake{version: "1.3", group: "X25519", offeredGroups: []string{"X25519MLKEM768", "X25519", "P256"}}, false, true},
		{"hybrid first, third chosen", handshake{version: "1.3", group: "P256", offeredGroups: []string{"X25519MLKEM768", "X25519", "P256"}}, true, true},
		{"Go: three hybrids, then X25519", handshake{version: "1.3", group: "X25519", offeredGroups: []string{"X25519MLKEM768", "SecP256r1MLKEM768", "SecP384r1MLKEM1024", "X25519", "P256"}}, false, true},
		{"TLS 1.2 has no HRR", handshake{version: "1.2", group: "P256", offeredGroups: []string{"X25519", "P256"}}, false, false},
		{"groups not logged", handshake{version: "1.3", group: "X25519"}, false, false},
	} {
		hrr, ok := inferHRR(&tc.h)
		if hrr != tc.hrr || ok != tc.knowable {
			t.Errorf("%s: inferHRR = %v, %v; want %v, %v", tc.name, hrr, ok, tc.hrr, tc.knowable)
		}
	}
}

// Chrome and other BoringSSL clients put a GREASE value (RFC 8701) first
// in their groups and ciphers; nginx logs it as 0x?a?a. It is no offer.
func TestGREASESkipped(t *testing.T) {
	for _, tc := range []struct {
		name, groups, ciphers, group string
		hrr                          bool
	}{
		{"Chrome behind nginx, hybrid chosen", "0x4a4a:X25519MLKEM768:X25519:prime256v1:secp384r1", "0x1a1a:TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:ECDHE-ECDSA-AES128-GCM-SHA256", "X25519MLKEM768", false},
		{"Chrome, classical share chosen", "0xdada:X25519MLKEM768:X25519:prime256v1", "0x0a0a:TLS_AES_128_GCM_SHA256", "X25519", false},
		{"GREASE then a real HRR", "0x2a2a:X25519:prime256v1:secp384r1", "0xfafa:TLS_AES_128_GCM_SHA256", "P384", true},
		{"HAProxy hex (eclist without the GREASE filter), GREASE first", "8A8A:001D:0017", "TLS_AES_128_GCM_SHA256", "X25519", false},
	} {
		h := handshake{version: "1.3", group: tc.group, rawGroups: tc.groups, rawCiphers: tc.ciphers}
		h.parseOffers()
		for _, o := range append(append([]string{}, h.offeredGroups...), h.offeredCiphers...) {
			if isGREASE(o) {
				t.Errorf("%s: GREASE value %s kept as an offer (%v %v)", tc.name, o, h.offeredGroups, h.offeredCiphers)
			}
		}
		if hrr, ok := inferHRR(&h); hrr != tc.hrr || !ok {
			t.Errorf("%s: inferHRR = %v, %v; want %v, true (offers %v)", tc.name, hrr, ok, tc.hrr, h.offeredGroups)
		}
	}
	for _, v := range []string{"0x0a0a", "0xFAFA", "0x3a3a", "8A8A"} {
		if !isGREASE(v) {
			t.Errorf("isGREASE(%s) = false", v)
		}
	}
	for _, v := range []string{"0x0a1a", "X25519", "0x11ec", "001D", "0x1301", ""} {
		if isGREASE(v) {
			t.Errorf("isGREASE(%s) = true", v)
		}
	}
}

func TestPolicyJudge(t *testing.T) {
	modern := compilePolicy(PolicyConfig{Name: "m", Preset: "modern"})
	inter := compilePolicy(PolicyConfig{Name: "i", Preset: "intermediate"})
	noCBC := compilePolicy(PolicyConfig{Name: "gcm", Ciphers: []string{"ECDHE-RSA-AES128-GCM-SHA256"}})
	groups := compilePolicy(PolicyConfig{Name: "pq", Groups: []string{"X25519MLKEM768"}})
	tls12cbc := handshake{version: "1.2", cipher: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA",
		offeredCiphers: []string{"TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", "TLS_RSA_WITH_AES_128_CBC_SHA"}, offeredGroups: []string{"P256"}}
	tls13 := handshake{version: "1.3", cipher: "TLS_AES_128_GCM_SHA256", group: "X25519",
		offeredCiphers: []string{"TLS_AES_128_GCM_SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"}, offeredGroups: []string{"X25519", "P256"}}
	tls11 := handshake{version: "1.1", cipher: "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA"}
	tls12blind := handshake{version: "1.2", cipher: "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256"} // HAProxy: offers not logged
	for _, tc := range []struct {
		name string
		p    policy
		h    handshake
		want verdict
	}{
		{"modern strands TLS 1.2", modern, tls12cbc, verdict{fail: true, rule: "version"}},
		{"modern takes TLS 1.3", modern, tls13, verdict{}},
		{"intermediate strands CBC-only TLS 1.2", inter, tls12cbc, verdict{fail: true, rule: "cipher"}},
		{"intermediate strands TLS 1.1", inter, tls11, verdict{fail: true, rule: "version"}},
		{"intermediate cannot judge unlogged offers", inter, tls12blind, verdict{undecided: true}},
		{"cipher list leaves TLS 1.3 alone", noCBC, tls13, verdict{}},
		{"cipher list strands CBC", noCBC, tls12cbc, verdict{fail: true, rule: "cipher"}},
		{"PQ-only groups strand classical clients", groups, tls13, verdict{fail: true, rule: "group"}},
	} {
		if got := tc.p.judge(&tc.h); got != tc.want {
			t.Errorf("%s: %+v, want %+v", tc.name, got, tc.want)
		}
	}
}

func TestClientClass(t *testing.T) {
	for ua, want := range map[string]string{
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36":       "chrome",
		"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0 Safari/537.36 Edg/131.0": "edge",
		"Mozilla/5.0 (Macintosh; Intel Mac OS X 14_0) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.0 Safari/605.1.15":    "safari",
		"curl/8.5.0":         "curl",
		"Go-http-client/1.1": "go",
		"legacy-pos/2.0":     "other-ua",
	} {
		if got := clientClass(&handshake{userAgent: ua}); got != want {
			t.Errorf("clientClass(%q) = %q, want %q", ua, got, want)
		}
	}
	a := clientClass(&handshake{version: "1.2", offeredCiphers: []string{"X"}})
	b := clientClass(&handshake{version: "1.2", offeredCiphers: []string{"Y"}})
	if a == b || len(a) != len("fp-")+8 {
		t.Errorf("fingerprints %q %q", a, b)
	}
}
