package tlsedgeconnector

import (
	"crypto/tls"
	"fmt"
	"strconv"
	"strings"
)

// suite is one cipher suite as the proxies name it (OpenSSL/BoringSSL
// names: nginx, HAProxy, Envoy) and as IANA does (tls.cipher).
type suite struct {
	openssl, iana string
	id            uint16
}

// suites are the suites a client offers in practice (and every suite of
// the Mozilla presets). A name outside the table passes through as logged;
// an id outside it is named by crypto/tls, else "0x....".
var suites = []suite{
	{"TLS_AES_128_GCM_SHA256", "TLS_AES_128_GCM_SHA256", 0x1301},
	{"TLS_AES_256_GCM_SHA384", "TLS_AES_256_GCM_SHA384", 0x1302},
	{"TLS_CHACHA20_POLY1305_SHA256", "TLS_CHACHA20_POLY1305_SHA256", 0x1303},
	{"TLS_AES_128_CCM_SHA256", "TLS_AES_128_CCM_SHA256", 0x1304},
	{"TLS_AES_128_CCM_8_SHA256", "TLS_AES_128_CCM_8_SHA256", 0x1305},
	{"ECDHE-ECDSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256", 0xc02b},
	{"ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256", 0xc02f},
	{"ECDHE-ECDSA-AES256-GCM-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_GCM_SHA384", 0xc02c},
	{"ECDHE-RSA-AES256-GCM-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_GCM_SHA384", 0xc030},
	{"ECDHE-ECDSA-CHACHA20-POLY1305", "TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca9},
	{"ECDHE-RSA-CHACHA20-POLY1305", "TLS_ECDHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xcca8},
	{"DHE-RSA-AES128-GCM-SHA256", "TLS_DHE_RSA_WITH_AES_128_GCM_SHA256", 0x009e},
	{"DHE-RSA-AES256-GCM-SHA384", "TLS_DHE_RSA_WITH_AES_256_GCM_SHA384", 0x009f},
	{"DHE-RSA-CHACHA20-POLY1305", "TLS_DHE_RSA_WITH_CHACHA20_POLY1305_SHA256", 0xccaa},
	{"ECDHE-ECDSA-AES128-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA256", 0xc023},
	{"ECDHE-RSA-AES128-SHA256", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA256", 0xc027},
	{"ECDHE-ECDSA-AES128-SHA", "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA", 0xc009},
	{"ECDHE-RSA-AES128-SHA", "TLS_ECDHE_RSA_WITH_AES_128_CBC_SHA", 0xc013},
	{"ECDHE-ECDSA-AES256-SHA384", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA384", 0xc024},
	{"ECDHE-RSA-AES256-SHA384", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA384", 0xc028},
	{"ECDHE-ECDSA-AES256-SHA", "TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA", 0xc00a},
	{"ECDHE-RSA-AES256-SHA", "TLS_ECDHE_RSA_WITH_AES_256_CBC_SHA", 0xc014},
	{"DHE-RSA-AES128-SHA256", "TLS_DHE_RSA_WITH_AES_128_CBC_SHA256", 0x0067},
	{"DHE-RSA-AES256-SHA256", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA256", 0x006b},
	{"DHE-RSA-AES128-SHA", "TLS_DHE_RSA_WITH_AES_128_CBC_SHA", 0x0033},
	{"DHE-RSA-AES256-SHA", "TLS_DHE_RSA_WITH_AES_256_CBC_SHA", 0x0039},
	{"AES128-GCM-SHA256", "TLS_RSA_WITH_AES_128_GCM_SHA256", 0x009c},
	{"AES256-GCM-SHA384", "TLS_RSA_WITH_AES_256_GCM_SHA384", 0x009d},
	{"AES128-SHA256", "TLS_RSA_WITH_AES_128_CBC_SHA256", 0x003c},
	{"AES256-SHA256", "TLS_RSA_WITH_AES_256_CBC_SHA256", 0x003d},
	{"AES128-SHA", "TLS_RSA_WITH_AES_128_CBC_SHA", 0x002f},
	{"AES256-SHA", "TLS_RSA_WITH_AES_256_CBC_SHA", 0x0035},
	{"DES-CBC3-SHA", "TLS_RSA_WITH_3DES_EDE_CBC_SHA", 0x000a},
	{"ECDHE-RSA-DES-CBC3-SHA", "TLS_ECDHE_RSA_WITH_3DES_EDE_CBC_SHA", 0xc012},
	{"ECDHE-ECDSA-DES-CBC3-SHA", "TLS_ECDHE_ECDSA_WITH_3DES_EDE_CBC_SHA", 0xc008},
}

var (
	ianaByName = func() map[string]string {
		m := make(map[string]string, 2*len(suites))
		for _, s := range suites {
			m[s.openssl] = s.iana
			m[s.iana] = s.iana
		}
		return m
	}()
	ianaByID = func() map[uint16]string {
		m := make(map[uint16]string, len(suites))
		for _, s := range suites {
			m[s.id] = s.iana
		}
		return m
	}()
)

// cipherName returns the IANA name of a suite logged by OpenSSL name, IANA
// name, decimal id (Caddy) or "0x...." (nginx for a suite OpenSSL does not
// name); "" for "" or "-".
func cipherName(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || s == "-" {
		return ""
	}
	if n, ok := ianaByName[s]; ok {
		return n
	}
	if id, ok := parseID(s); ok {
		if n, ok := ianaByID[id]; ok {
			return n
		}
		if n := tls.CipherSuiteName(id); !strings.HasPrefix(n, "0x") {
			return n
		}
		return fmt.Sprintf("0x%04X", id)
	}
	return s
}

// knownCipher says whether name (OpenSSL or IANA) is a suite the table
// knows: what a policy's `ciphers` may list.
func knownCipher(name string) bool {
	_, ok := ianaByName[name]
	return ok
}

// isTLS13Suite: TLS 1.3 suites (negotiated only in 1.3, and only they).
func isTLS13Suite(iana string) bool {
	return strings.HasPrefix(iana, "TLS_AES_") || strings.HasPrefix(iana, "TLS_CHACHA20_")
}

func parseID(s string) (uint16, bool) {
	base := 10
	if strings.HasPrefix(s, "0x") || strings.HasPrefix(s, "0X") {
		s, base = s[2:], 16
	}
	n, err := strconv.ParseUint(s, base, 16)
	return uint16(n), err == nil
}

// groups maps the names proxies log for key exchange groups (OpenSSL's:
// prime256v1, secp384r1, X25519; IANA's; Go's) to tlsprobe's names.
var groups = map[string]string{
	"x25519": "X25519", "X25519": "X25519", "x448": "X448", "X448": "X448",
	"prime256v1": "P256", "secp256r1": "P256", "P-256": "P256", "P256": "P256", "CurveP256": "P256",
	"secp384r1": "P384", "P-384": "P384", "P384": "P384", "CurveP384": "P384",
	"secp521r1": "P521", "P-521": "P521", "P521": "P521", "CurveP521": "P521",
	"X25519MLKEM768": "X25519MLKEM768", "x25519mlkem768": "X25519MLKEM768",
	"SecP256r1MLKEM768": "SecP256r1MLKEM768", "SecP384r1MLKEM1024": "SecP384r1MLKEM1024",
	"X25519Kyber768Draft00": "X25519Kyber768Draft00",
	"ffdhe2048":             "ffdhe2048", "ffdhe3072": "ffdhe3072", "ffdhe4096": "ffdhe4096",
}

var groupByID = map[uint16]string{
	0x0017: "P256", 0x0018: "P384", 0x0019: "P521", 0x001d: "X25519", 0x001e: "X448",
	0x0100: "ffdhe2048", 0x0101: "ffdhe3072", 0x0102: "ffdhe4096",
	0x11ec: "X25519MLKEM768", 0x11eb: "SecP256r1MLKEM768", 0x11ed: "SecP384r1MLKEM1024",
	0x6399: "X25519Kyber768Draft00",
}

// groupName normalizes a logged group name; "" for "" or "-".
func groupName(s string) string {
	s = strings.TrimSpace(s)
	if s == "" || s == "-" {
		return ""
	}
	if n, ok := groups[s]; ok {
		return n
	}
	// "0x11ec" (nginx for a group OpenSSL does not name), "001D" (HAProxy's
	// ssl_fc_eclist_bin,be2hex): no group's name is four hex digits.
	hex4 := len(s) == 4 && strings.Trim(strings.ToLower(s), "0123456789abcdef") == ""
	if strings.HasPrefix(strings.ToLower(s), "0x") || hex4 {
		if id, ok := parseID("0x" + strings.TrimPrefix(strings.TrimPrefix(s, "0x"), "0X")); ok {
			if n, ok := groupByID[id]; ok {
				return n
			}
			return fmt.Sprintf("0x%04x", id)
		}
	}
	return s
}

// isGREASE says whether s (as a proxy logs an offered group or cipher:
// "0x4a4a", HAProxy's "4A4A", a decimal id) is a GREASE value (RFC 8701:
// 0x0A0A, 0x1A1A, ... 0xFAFA), which BoringSSL clients (Chrome) put among
// their offers to keep servers tolerant; it is no offer.
func isGREASE(s string) bool {
	s = strings.TrimSpace(s)
	hex4 := len(s) == 4 && strings.Trim(strings.ToLower(s), "0123456789abcdef") == ""
	if !hex4 && (s == "" || s[0] < '0' || s[0] > '9') {
		return false // a name (most offers): no number to parse
	}
	if hex4 {
		s = "0x" + s
	}
	id, ok := parseID(s)
	return ok && id&0x0f0f == 0x0a0a && id>>8 == id&0xff
}

// hybrid groups: clients that prefer one (Chrome, Firefox) send a second
// key share for the classical group after it.
func hybridGroup(g string) bool {
	return strings.Contains(g, "MLKEM") || strings.Contains(g, "Kyber")
}

// versionName normalizes TLSv1.3, TLSv1_2, TLS 1.2, 1.2, 772 (Caddy's
// number) to "1.3"...; "" for "" or "-"; unknown text as it is.
func versionName(s string) string {
	s = strings.TrimSpace(s)
	switch s {
	case "", "-", "NONE":
		return ""
	case "TLSv1.3", "TLSv1_3", "TLS 1.3", "1.3", "772":
		return "1.3"
	case "TLSv1.2", "TLSv1_2", "TLS 1.2", "1.2", "771":
		return "1.2"
	case "TLSv1.1", "TLSv1_1", "TLS 1.1", "1.1", "770":
		return "1.1"
	case "TLSv1", "TLSv1.0", "TLSv1_0", "TLS 1.0", "1.0", "769":
		return "1.0"
	case "SSLv3", "768":
		return "ssl3"
	}
	return s
}

// versionRank orders versions for a policy's minimum (0 for unknown).
func versionRank(v string) int {
	switch v {
	case "ssl3":
		return 1
	case "1.0":
		return 2
	case "1.1":
		return 3
	case "1.2":
		return 4
	case "1.3":
		return 5
	}
	return 0
}
