package faultlab

import (
	"crypto"
	"crypto/rsa"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"math/big"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// endpointSpec is one lab endpoint, a row of endpointTable: by default a
// healthy leaf for the endpoint's name, issued by the lab intermediate (known
// to the OCSP responder, with OCSP, CRL and AIA URLs), served with the
// intermediate. Each field changes one thing.
type endpointSpec struct {
	name string
	want attrs.Reason
	kind kind
	// recipe changes the leaf (validity, names, key, signature, URLs).
	recipe func(l *Lab, s *certSpec, base string) error
	// issuer returns another issuing CA and the chain served after the
	// leaf; nil issuer with selfSigned issues the leaf by itself.
	issuer     func(l *Lab) (*CA, []*x509.Certificate, error)
	selfSigned bool
	// server changes the server's TLS configuration.
	server func(l *Lab, cfg *tls.Config, leaf *CA) error
	// target sets what a probe of the endpoint needs: STARTTLS, a client
	// profile, pins, another server name.
	target func(e *Endpoint) error
}

const day = 24 * time.Hour

// endpointTable lists every lab endpoint, in the order the lab serves them.
var endpointTable = []endpointSpec{
	// Healthy: zero reasons expected.
	{name: "healthy", want: attrs.ReasonOK},
	{name: "healthy-rsa-stapled", want: attrs.ReasonOK, recipe: rsaKey(2048), server: staple(-time.Hour, 24*time.Hour)},
	{name: "healthy-smtp", want: attrs.ReasonOK, kind: kindSMTP, target: func(e *Endpoint) error { e.StartTLS = "smtp"; return nil }},
	{name: "healthy-mtls", want: attrs.ReasonOK, server: requireClientCert(0, 0), target: func(e *Endpoint) error { e.Profile = MTLSProfile; return nil }},
	// The same demand seen by a profile that sends no client certificate:
	// under TLS 1.2 the server's alert ends the handshake; under TLS 1.3 it
	// arrives after the client considers the handshake done.
	{name: "mtls-required-tls12", want: attrs.ReasonHandshakeFailure, server: requireClientCert(tls.VersionTLS12, tls.VersionTLS12)},
	{name: "mtls-required-tls13", want: attrs.ReasonHandshakeFailure, server: requireClientCert(tls.VersionTLS13, tls.VersionTLS13)},
	// A wildcard certificate: load tests give each target its own name.
	{name: "healthy-wildcard", want: attrs.ReasonOK,
		recipe: func(_ *Lab, s *certSpec, _ string) error {
			s.cn, s.dns = "*.wild."+Domain, []string{"*.wild." + Domain}
			return nil
		},
		target: func(e *Endpoint) error { e.ServerName = "probe.wild." + Domain; return nil }},
	// Healthy, but only P-384 for key exchange: a client that sends a key
	// share for X25519 (Go, browsers) gets a HelloRetryRequest, one more
	// round trip; a post-quantum-only client finds no group in common.
	{name: "hello-retry", want: attrs.ReasonOK, server: func(_ *Lab, cfg *tls.Config, _ *CA) error {
		cfg.CurvePreferences = []tls.CurveID{tls.CurveP384}
		return nil
	}},
	// Cross-signed: the lab root also signed by the expired root, sent in
	// the chain (as Let's Encrypt sent ISRG Root X1 signed by DST Root CA
	// X3). A path to the current root exists: healthy.
	{name: "healthy-cross-signed", want: attrs.ReasonOK, issuer: func(l *Lab) (*CA, []*x509.Certificate, error) {
		cross, err := issue(certSpec{cn: "certpulse lab root", isCA: true, key: l.Root.Key, notBefore: l.now.Add(-365 * day), notAfter: l.now.Add(5 * 365 * day)}, l.ExpiredRoot)
		if err != nil {
			return nil, nil, err
		}
		return l.Inter, []*x509.Certificate{l.Inter.Cert, cross.Cert}, nil
	}},

	// Server-side certificate faults.
	{name: "expired-leaf", want: attrs.ReasonExpiredLeaf, recipe: validity(-100*day, -day)},
	{name: "expired-intermediate", want: attrs.ReasonExpiredIntermediate, recipe: noURLs(validity(-30*day, 90*day)),
		issuer: caUnder("certpulse lab expired intermediate", -365*day, -day, func(l *Lab) *CA { return l.Root })},
	// The only path ends at an expired anchor: every client with that
	// trust store fails although every presented certificate is valid.
	{name: "expired-root", want: attrs.ReasonExpiredRoot, recipe: noURLs(nil),
		issuer: caUnder("certpulse lab intermediate under the retired root", -2*365*day, 365*day, func(l *Lab) *CA { return l.ExpiredRoot })},
	{name: "not-yet-valid", want: attrs.ReasonNotYetValid, recipe: validity(2*day, 90*day)},
	{name: "missing-intermediate", want: attrs.ReasonMissingIntermediate, issuer: func(l *Lab) (*CA, []*x509.Certificate, error) { return l.Inter, nil, nil }},
	{name: "bad-chain-order", want: attrs.ReasonBadChainOrder, recipe: noURLs(nil), issuer: func(l *Lab) (*CA, []*x509.Certificate, error) {
		b1, err := issue(certSpec{cn: "certpulse lab intermediate B1", isCA: true, notBefore: l.now.Add(-time.Hour), notAfter: l.now.Add(5 * 365 * day)}, l.Root)
		if err != nil {
			return nil, nil, err
		}
		b2, err := issue(certSpec{cn: "certpulse lab intermediate B2", isCA: true, notBefore: l.now.Add(-time.Hour), notAfter: l.now.Add(5 * 365 * day)}, b1)
		if err != nil {
			return nil, nil, err
		}
		return b2, []*x509.Certificate{b1.Cert, b2.Cert}, nil // issuer's issuer first: out of order
	}},
	{name: "hostname-mismatch", want: attrs.ReasonHostnameMismatch,
		recipe: func(_ *Lab, s *certSpec, _ string) error {
			s.cn, s.dns = "www.other.example", []string{"www.other.example", "other.example"}
			return nil
		}},
	{name: "self-signed", want: attrs.ReasonSelfSigned, recipe: noURLs(nil), selfSigned: true},
	{name: "unknown-ca", want: attrs.ReasonUnknownCA, recipe: noURLs(nil), issuer: func(l *Lab) (*CA, []*x509.Certificate, error) {
		xr, err := issue(certSpec{cn: "untrusted root", isCA: true, notBefore: l.now.Add(-time.Hour), notAfter: l.now.Add(365 * day)}, nil)
		if err != nil {
			return nil, nil, err
		}
		xi, err := issue(certSpec{cn: "untrusted intermediate", isCA: true, notBefore: l.now.Add(-time.Hour), notAfter: l.now.Add(365 * day)}, xr)
		if err != nil {
			return nil, nil, err
		}
		return xi, []*x509.Certificate{xi.Cert}, nil
	}},
	{name: "revoked", want: attrs.ReasonRevoked, server: func(l *Lab, _ *tls.Config, leaf *CA) error { l.ocsp.add(leaf.Cert, true); return nil }},
	{name: "ocsp-timeout", want: attrs.ReasonOCSPTimeout, recipe: func(_ *Lab, s *certSpec, base string) error { s.ocsp = []string{base + "/ocsp-tarpit"}; return nil }},
	{name: "stale-staple", want: attrs.ReasonOCSPStaleStaple, server: staple(-48*time.Hour, 48*time.Hour)},
	{name: "pin-mismatch", want: attrs.ReasonPinMismatch, target: func(e *Endpoint) error {
		other, err := issue(certSpec{cn: "pin", notBefore: time.Now(), notAfter: time.Now().Add(time.Hour)}, nil)
		if err != nil {
			return err
		}
		e.Pins = []string{"sha256/" + spkiPin(other.Cert)}
		return nil
	}},
	{name: "tls11-only", want: attrs.ReasonProtocolMismatch, server: versions(tls.VersionTLS10, tls.VersionTLS11)},
	// TLS 1.2 with static RSA key exchange only: outside Go's (and modern
	// browsers') default suites.
	{name: "rsa-kex-only", want: attrs.ReasonCipherMismatch, recipe: rsaKey(2048), server: func(_ *Lab, cfg *tls.Config, _ *CA) error {
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_256_GCM_SHA384}
		return nil
	}},
	{name: "weak-key", want: attrs.ReasonWeakKey, recipe: rsaKey(1024)},
	// RSA 512: Go refuses it (crypto/rsa) after the certificate arrived,
	// while encrypting the key exchange; static RSA key exchange only, so the
	// server never needs the private key (it has none).
	{name: "weak-key-512", want: attrs.ReasonWeakKey,
		recipe: func(_ *Lab, s *certSpec, _ string) error { s.key = rsa512{}; return nil },
		server: func(_ *Lab, cfg *tls.Config, _ *CA) error {
			cfg.MaxVersion = tls.VersionTLS12
			cfg.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_128_GCM_SHA256}
			return nil
		}},
	{name: "sha1-signature", want: attrs.ReasonWeakSignature, recipe: func(_ *Lab, s *certSpec, _ string) error { s.sigAlg = x509.ECDSAWithSHA1; return nil }},
	{name: "expiring-soon", want: attrs.ReasonExpiringSoon, recipe: validity(-day, 10*day)},
	// 40 unrelated certificates after the real chain: more than a probe
	// keeps, and out of issuing order.
	{name: "oversized-chain", want: attrs.ReasonBadChainOrder, server: func(l *Lab, cfg *tls.Config, _ *CA) error {
		for i := 0; i < 40; i++ {
			f, err := issue(certSpec{cn: fmt.Sprintf("filler %d", i), notBefore: l.now.Add(-time.Hour), notAfter: l.now.Add(time.Hour)}, nil)
			if err != nil {
				return err
			}
			cfg.Certificates[0].Certificate = append(cfg.Certificates[0].Certificate, f.Cert.Raw)
		}
		return nil
	}},

	// Network faults.
	{name: "tarpit", want: attrs.ReasonHandshakeTimeout, kind: kindTarpit},
	{name: "reset", want: attrs.ReasonConnectionReset, kind: kindReset},
	{name: "not-tls", want: attrs.ReasonNotTLS, kind: kindHTTP},
	{name: "garbage", want: attrs.ReasonNotTLS, kind: kindGarbage},
	{name: "refused", want: attrs.ReasonConnectionRefused, kind: kindRefused},
}

// buildServers builds every endpoint of endpointTable.
func (l *Lab) buildServers(base string) ([]server, error) {
	out := make([]server, 0, len(endpointTable))
	for i := range endpointTable {
		s, err := l.buildServer(&endpointTable[i], base)
		if err != nil {
			return nil, fmt.Errorf("lab endpoint %s: %w", endpointTable[i].name, err)
		}
		out = append(out, s)
	}
	return out, nil
}

func (l *Lab) buildServer(sp *endpointSpec, base string) (server, error) {
	s := server{ep: Endpoint{Name: sp.name, ServerName: serverName(sp.name), Want: sp.want}, kind: sp.kind}
	if sp.target != nil {
		if err := sp.target(&s.ep); err != nil {
			return s, err
		}
	}
	if sp.kind != kindTLS && sp.kind != kindSMTP {
		return s, nil // a network fault: no certificate
	}
	spec := l.leafSpec(sp.name, base)
	if sp.recipe != nil {
		if err := sp.recipe(l, &spec, base); err != nil {
			return s, err
		}
	}
	parent, chain := l.Inter, []*x509.Certificate{l.Inter.Cert}
	if sp.issuer != nil {
		var err error
		if parent, chain, err = sp.issuer(l); err != nil {
			return s, err
		}
	}
	var leaf *CA
	var err error
	switch {
	case sp.selfSigned:
		leaf, err = issue(spec, nil)
		chain = nil
	case parent == l.Inter:
		leaf, err = l.leaf(spec) // known to the OCSP responder
	default:
		leaf, err = issue(spec, parent)
	}
	if err != nil {
		return s, err
	}
	s.tls = tlsConf(leaf, chain...)
	if sp.server != nil {
		if err := sp.server(l, s.tls, leaf); err != nil {
			return s, err
		}
	}
	return s, nil
}

// Recipes and server changes the table uses.

func validity(from, to time.Duration) func(*Lab, *certSpec, string) error {
	return func(l *Lab, s *certSpec, _ string) error {
		s.notBefore, s.notAfter = l.now.Add(from), l.now.Add(to)
		return nil
	}
}

// noURLs drops the OCSP, CRL and AIA URLs (a leaf the lab's responder does
// not know), after next.
func noURLs(next func(*Lab, *certSpec, string) error) func(*Lab, *certSpec, string) error {
	return func(l *Lab, s *certSpec, base string) error {
		if next != nil {
			if err := next(l, s, base); err != nil {
				return err
			}
		}
		s.ocsp, s.crl, s.aia = nil, nil, nil
		return nil
	}
}

func rsaKey(bits int) func(*Lab, *certSpec, string) error {
	return func(_ *Lab, s *certSpec, _ string) error {
		k, err := newRSAKey(bits)
		s.key = k
		return err
	}
}

// caUnder issues an intermediate CA named cn under the CA parent returns,
// valid from..to around now, served after the leaf.
func caUnder(cn string, from, to time.Duration, parent func(*Lab) *CA) func(*Lab) (*CA, []*x509.Certificate, error) {
	return func(l *Lab) (*CA, []*x509.Certificate, error) {
		ca, err := issue(certSpec{cn: cn, isCA: true, notBefore: l.now.Add(from), notAfter: l.now.Add(to)}, parent(l))
		if err != nil {
			return nil, nil, err
		}
		return ca, []*x509.Certificate{ca.Cert}, nil
	}
}

// staple staples an OCSP response produced at now+thisUpdate, valid until
// now+nextUpdate.
func staple(thisUpdate, nextUpdate time.Duration) func(*Lab, *tls.Config, *CA) error {
	return func(l *Lab, cfg *tls.Config, leaf *CA) error {
		st, err := l.ocsp.staple(leaf.Cert, l.now.Add(thisUpdate), l.now.Add(nextUpdate))
		cfg.Certificates[0].OCSPStaple = st
		return err
	}
}

func versions(min, max uint16) func(*Lab, *tls.Config, *CA) error {
	return func(_ *Lab, cfg *tls.Config, _ *CA) error {
		cfg.MinVersion, cfg.MaxVersion = min, max
		return nil
	}
}

// requireClientCert demands a client certificate from the lab client CA,
// optionally within TLS versions min..max (0: Go's defaults).
func requireClientCert(min, max uint16) func(*Lab, *tls.Config, *CA) error {
	return func(l *Lab, cfg *tls.Config, _ *CA) error {
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AddCert(l.ClientCA.Cert)
		cfg.MinVersion, cfg.MaxVersion = min, max
		return nil
	}
}

// rsa512 is a 512-bit RSA public key with no private half (Go cannot
// generate one): enough for a certificate, and for a server whose key is
// never used because every client aborts first.
type rsa512 struct{}

var rsa512Modulus, _ = new(big.Int).SetString("B0850301388805BEDDC864F359F3B28F891E45DD236B2B6D0A1A3201E228F4DA3228B5BFE556A1672B0A2055FD4C218C54D8C503A0E4DDCB1CC262AF942C838F", 16)

func (rsa512) Public() crypto.PublicKey { return &rsa.PublicKey{N: rsa512Modulus, E: 65537} }
func (rsa512) Sign(io.Reader, []byte, crypto.SignerOpts) ([]byte, error) {
	return nil, errors.New("the lab's 512-bit key has no private half")
}
func (rsa512) Decrypt(io.Reader, []byte, crypto.DecrypterOpts) ([]byte, error) {
	return nil, errors.New("the lab's 512-bit key has no private half")
}
