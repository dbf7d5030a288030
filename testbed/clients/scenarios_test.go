package clients

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/faultlab"
)

// scenario is one endpoint and the name a client asks for.
type scenario struct {
	id, what   string
	host, name string
	port       int
}

// labScenarios are the fault lab's TLS endpoints a default client can try
// (not the mTLS one that needs the lab's client certificate, the SMTP one,
// the pin the client does not hold, or the 30 s tarpit).
func labScenarios(t *testing.T, lab *faultlab.Lab) []scenario {
	skip := map[string]bool{"healthy-mtls": true, "healthy-smtp": true, "pin-mismatch": true, "tarpit": true}
	var out []scenario
	for _, e := range lab.Endpoints {
		if skip[e.Name] {
			continue
		}
		host, p, err := net.SplitHostPort(e.Address)
		require.NoError(t, err)
		port, _ := strconv.Atoi(p)
		out = append(out, scenario{id: e.Name, what: "fault lab: " + e.Name, host: host, port: port, name: e.ServerName})
		if e.Name == "healthy-wildcard" {
			// The same *.wild certificate asked for a name two labels
			// down and for the bare domain: neither is covered.
			out = append(out,
				scenario{id: "wildcard-two-labels", what: "*.wild certificate, name a.b.wild", host: host, port: port, name: "a.b.wild." + faultlab.Domain},
				scenario{id: "wildcard-apex", what: "*.wild certificate, name wild (the bare domain)", host: host, port: port, name: "wild." + faultlab.Domain})
		}
	}
	return out
}

// extraScenarios are servers the lab's table does not have: protocol and
// cipher floors, a name-constrained intermediate, a leaf for client
// authentication only, an expired cross-sign beside a valid path, a
// not-yet-valid intermediate.
func extraScenarios(t *testing.T, lab *faultlab.Lab) []scenario {
	now := time.Now()
	type extra struct {
		id, what string
		cfg      func(name string) *tls.Config
	}
	good := func(name string) *tls.Config {
		leaf, err := lab.IssueLeaf([]string{name}, now.Add(-time.Hour), now.Add(90*24*time.Hour), false)
		require.NoError(t, err)
		return serve(leaf.Cert, leaf.Key, lab.Inter.Cert)
	}
	issued := func(name string, tmpl func(*x509.Certificate), parent *faultlab.CA, chain ...*x509.Certificate) *tls.Config {
		c, k := mint(t, name, tmpl, parent)
		return serve(c, k, chain...)
	}
	extras := []extra{
		{"tls13-only", "TLS 1.3 only", func(n string) *tls.Config { c := good(n); c.MinVersion = tls.VersionTLS13; return c }},
		{"tls12-only", "TLS 1.2 only", func(n string) *tls.Config {
			c := good(n)
			c.MinVersion, c.MaxVersion = tls.VersionTLS12, tls.VersionTLS12
			return c
		}},
		{"tls10-only", "TLS 1.0 only", func(n string) *tls.Config {
			c := good(n)
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
			return c
		}},
		{"cbc-only", "TLS 1.2, ECDHE with AES-CBC-SHA1 suites only", func(n string) *tls.Config {
			c := good(n)
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}
			return c
		}},
		{"chacha-only", "TLS 1.2, ECDHE with ChaCha20-Poly1305 only", func(n string) *tls.Config {
			c := good(n)
			c.MaxVersion = tls.VersionTLS12
			c.CipherSuites = []uint16{tls.TLS_ECDHE_ECDSA_WITH_CHACHA20_POLY1305_SHA256}
			return c
		}},
		{"name-constraint-violated", "intermediate constrained to .allowed.test issues the name", func(n string) *tls.Config {
			ica, ik := mint(t, "certpulse lab constrained intermediate", func(c *x509.Certificate) {
				c.IsCA, c.BasicConstraintsValid, c.KeyUsage = true, true, x509.KeyUsageCertSign|x509.KeyUsageCRLSign
				c.PermittedDNSDomains, c.PermittedDNSDomainsCritical = []string{".allowed.test"}, true
			}, lab.Root)
			c, k := mint(t, n, nil, &faultlab.CA{Cert: ica, Key: ik})
			return serve(c, k, ica)
		}},
		{"client-auth-eku", "leaf with extended key usage clientAuth only", func(n string) *tls.Config {
			return issued(n, func(c *x509.Certificate) { c.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth} }, lab.Inter, lab.Inter.Cert)
		}},
		{"expired-cross-sign", "valid chain plus an expired cross-signed intermediate", func(n string) *tls.Config {
			cross, _ := mint(t, lab.Inter.Cert.Subject.CommonName, func(c *x509.Certificate) {
				c.IsCA, c.BasicConstraintsValid, c.KeyUsage = true, true, x509.KeyUsageCertSign
				c.NotBefore, c.NotAfter = now.Add(-400*24*time.Hour), now.Add(-30*24*time.Hour)
			}, lab.ExpiredRoot, withKey(lab.Inter.Key))
			leaf, err := lab.IssueLeaf([]string{n}, now.Add(-time.Hour), now.Add(90*24*time.Hour), false)
			require.NoError(t, err)
			return serve(leaf.Cert, leaf.Key, lab.Inter.Cert, cross)
		}},
		{"intermediate-not-yet-valid", "intermediate valid from tomorrow", func(n string) *tls.Config {
			ica, ik := mint(t, "certpulse lab future intermediate", func(c *x509.Certificate) {
				c.IsCA, c.BasicConstraintsValid, c.KeyUsage = true, true, x509.KeyUsageCertSign
				c.NotBefore = now.Add(24 * time.Hour)
			}, lab.Root)
			c, k := mint(t, n, nil, &faultlab.CA{Cert: ica, Key: ik})
			return serve(c, k, ica)
		}},
	}
	var out []scenario
	for _, x := range extras {
		name := x.id + ".extra." + faultlab.Domain
		cfg := x.cfg(name)
		ln, err := tls.Listen("tcp", "127.0.0.1:0", cfg)
		require.NoError(t, err)
		t.Cleanup(func() { ln.Close() })
		go acceptLoop(ln)
		out = append(out, scenario{id: x.id, what: x.what, host: "127.0.0.1", port: ln.Addr().(*net.TCPAddr).Port, name: name})
	}
	return out
}

func acceptLoop(ln net.Listener) {
	for {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(15 * time.Second))
			if tc := c.(*tls.Conn); tc.Handshake() == nil {
				faultlab.Respond(tc)
			}
		}()
	}
}

func serve(leaf *x509.Certificate, key any, chain ...*x509.Certificate) *tls.Config {
	der := [][]byte{leaf.Raw}
	for _, c := range chain {
		der = append(der, c.Raw)
	}
	return &tls.Config{SessionTicketsDisabled: true, Certificates: []tls.Certificate{{Certificate: der, PrivateKey: key, Leaf: leaf}}}
}

type mintOpt func(*mintOpts)
type mintOpts struct{ key *ecdsa.PrivateKey }

func withKey(k any) mintOpt {
	return func(o *mintOpts) { o.key, _ = k.(*ecdsa.PrivateKey) }
}

// mint issues a certificate for name under parent (a leaf for name unless
// tmpl says otherwise), with a new P-256 key unless one is given.
func mint(t *testing.T, name string, tmpl func(*x509.Certificate), parent *faultlab.CA, opts ...mintOpt) (*x509.Certificate, *ecdsa.PrivateKey) {
	var o mintOpts
	for _, f := range opts {
		f(&o)
	}
	key := o.key
	if key == nil {
		var err error
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
	}
	serial, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 62))
	require.NoError(t, err)
	c := &x509.Certificate{
		SerialNumber: serial, Subject: pkix.Name{CommonName: name}, DNSNames: []string{name},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour),
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	if tmpl != nil {
		tmpl(c)
		if c.IsCA {
			c.DNSNames, c.ExtKeyUsage = nil, nil
		}
	}
	der, err := x509.CreateCertificate(rand.Reader, c, parent.Cert, &key.PublicKey, parent.Key)
	require.NoError(t, err)
	cert, err := x509.ParseCertificate(der)
	require.NoError(t, err)
	return cert, key
}
