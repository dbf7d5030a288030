package clients

import (
	"crypto/tls"
	"strings"
)

// Model is a client preset: what one client family accepts, as measured
// against the real client (testbed/clients, docs/clients.md).
type Model struct {
	Family Family
	// Stands for: the clients this preset models.
	Stands string
	// MinVersion is the lowest TLS version it speaks.
	MinVersion uint16
	// Suites are the TLS 1.2 (and older) cipher suites it offers.
	Suites Suites
	// AIA: it completes a chain the server left incomplete by fetching
	// the issuer from the certificate's caIssuers URL.
	AIA bool
	// SHA1 accepts SHA-1 signatures on certificates below a trust anchor
	// it was configured with (Java: SHA-1 is refused only for the JDK's
	// own CAs).
	SHA1 bool
	// MinRSABits is the smallest RSA key it accepts in a certificate.
	MinRSABits int
	// AnchorExpiry: it refuses a path whose trust anchor has expired
	// (Java treats an anchor as a bare key: no validity).
	AnchorExpiry bool
	// MaxChain is the longest presented chain it accepts (0: no limit).
	MaxChain int
	// Revocation says what it checks by default, for the docs: none of
	// these clients asks an OCSP responder or reads a CRL out of the box.
	Revocation string
	// Classes are the failure classes this family reports where they
	// differ from the others (Chromium says ERR_CERT_INVALID for SHA-1).
	Classes map[Situation]Class
}

// Situation is one kind of failure a client can meet, for the classes a
// family reports for it.
type Situation string

const (
	SituationSHA1         Situation = "sha1"
	SituationClientCert12 Situation = "client_cert_tls12"
	SituationClientCert13 Situation = "client_cert_tls13"
	SituationNotTLS       Situation = "not_tls"
)

// Suites describes which TLS 1.2 cipher suites a client offers, by what
// matters to a server's choice: AEAD suites with ECDHE are offered by all.
type Suites struct {
	// RSAKex: static RSA key exchange (TLS_RSA_WITH_*).
	RSAKex bool
	// CBCSHA1: CBC suites with a SHA-1 MAC under ECDHE-RSA.
	CBCSHA1 bool
	// ECDSACBCSHA1: the same under ECDHE-ECDSA (Chromium dropped them).
	ECDSACBCSHA1 bool
	// CBCSHA2: CBC suites with SHA-256/384 MACs.
	CBCSHA2 bool
}

// Offers reports whether a client with s offers suite id.
func (s Suites) Offers(id uint16) bool {
	name := tls.CipherSuiteName(id)
	switch {
	case strings.Contains(name, "3DES"), strings.Contains(name, "RC4"), strings.HasPrefix(name, "0x"):
		return false
	case !strings.Contains(name, "ECDHE") && !strings.HasPrefix(name, "TLS_AES") && !strings.HasPrefix(name, "TLS_CHACHA"):
		if !s.RSAKex {
			return false
		}
	}
	switch {
	case strings.HasSuffix(name, "_SHA"):
		if strings.Contains(name, "ECDHE_ECDSA") {
			return s.ECDSACBCSHA1
		}
		return s.CBCSHA1
	case strings.Contains(name, "_CBC_"):
		return s.CBCSHA2
	}
	return true
}

// Presets are the client families certpulse models, in the order the
// docs list them.
func Presets() []Model {
	openssl := Suites{RSAKex: true, CBCSHA1: true, ECDSACBCSHA1: true, CBCSHA2: true}
	return []Model{
		{Family: OpenSSL, Stands: "OpenSSL 3.0 with Debian's defaults (security level 2): curl, openssl s_client, nginx and HAProxy as clients",
			MinVersion: tls.VersionTLS12, Suites: openssl, MinRSABits: 2048, AnchorExpiry: true, Revocation: "none"},
		{Family: Python, Stands: "Python's ssl.create_default_context (OpenSSL 3, security level 2, Python's own cipher string: ECDHE/DHE with AES-GCM, ChaCha20 or CBC-SHA2)",
			MinVersion: tls.VersionTLS12, Suites: Suites{CBCSHA2: true}, MinRSABits: 2048, AnchorExpiry: true, Revocation: "none"},
		{Family: Node, Stands: "Node.js tls (its bundled OpenSSL 3 at security level 1)",
			MinVersion: tls.VersionTLS12, Suites: openssl, MinRSABits: 1024, AnchorExpiry: true, Revocation: "none"},
		{Family: GnuTLS, Stands: "GnuTLS 3.7 with its NORMAL priority: gnutls-cli, wget, apt's https transport",
			MinVersion: tls.VersionTLS10, Suites: openssl, MinRSABits: 1024, AnchorExpiry: true, MaxChain: 16, Revocation: "none (gnutls-cli --ocsp asks)"},
		{Family: Chrome, Stands: "Chromium and the browsers built on it (BoringSSL, Chromium's certificate verifier)",
			MinVersion: tls.VersionTLS12, Suites: Suites{RSAKex: true, CBCSHA1: true}, AIA: true, MinRSABits: 1024, AnchorExpiry: true,
			Revocation: "CRLSets for public CAs only; no OCSP",
			Classes:    map[Situation]Class{SituationSHA1: ClassInvalid, SituationClientCert12: ClassClientCert, SituationClientCert13: ClassClientCert}},
		{Family: Go, Stands: "Go's crypto/tls and crypto/x509 with their defaults",
			MinVersion: tls.VersionTLS12, Suites: Suites{CBCSHA1: true, ECDSACBCSHA1: true}, MinRSABits: 1024, AnchorExpiry: true, Revocation: "none"},
		{Family: Java, Stands: "OpenJDK 17's JSSE with its java.security defaults (PKIX, endpoint identification HTTPS)",
			MinVersion: tls.VersionTLS12, Suites: openssl, SHA1: true, MinRSABits: 1024, MaxChain: 10, Revocation: "none (com.sun.net.ssl.checkRevocation=false)"},
	}
}

// Families are the preset families, in the presets' order.
func Families() []Family {
	ps := Presets()
	out := make([]Family, len(ps))
	for i, m := range ps {
		out[i] = m.Family
	}
	return out
}

// Select returns the presets of fs, in the presets' order (all of them
// when fs is empty); unknown families are left out (configs validate).
func Select(fs []Family) []Model {
	if len(fs) == 0 {
		return Presets()
	}
	var out []Model
	for _, m := range Presets() {
		for _, f := range fs {
			if f == m.Family {
				out = append(out, m)
				break
			}
		}
	}
	return out
}

// Preset returns the preset of a family.
func Preset(f Family) (Model, bool) {
	for _, m := range Presets() {
		if m.Family == f {
			return m, true
		}
	}
	return Model{}, false
}

func (m Model) class(s Situation, def Class) Class {
	if c, ok := m.Classes[s]; ok {
		return c
	}
	return def
}
