// Package faultlab generates a real PKI and serves, on 127.0.0.1, one TLS
// endpoint per reason code certpulse classifies, with a real OCSP responder,
// CRL and AIA caIssuers server. Tests use it; `certpulse-lab` serves it for
// the local demo.
package faultlab

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sync"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// MTLSProfile is the client profile name for the mTLS endpoint.
const MTLSProfile = "lab-mtls"

// Lab is a running fault lab.
type Lab struct {
	Root *CA
	// ExpiredRoot is a trust anchor (in RootPool and roots.pem) whose
	// notAfter has passed: the DST Root CA X3 / AddTrust case.
	ExpiredRoot *CA
	Inter       *CA
	ClientCA    *CA
	ClientCert  *CA
	Endpoints   []Endpoint

	// OCSPURL, CRLURL and AIAURL are served by the lab's HTTP server.
	OCSPURL, CRLURL, AIAURL string

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	mu     sync.Mutex
	lns    []net.Listener
	conns  map[net.Conn]struct{}
	srv    *http.Server

	ocsp *responder
	now  time.Time
}

type server struct {
	ep   Endpoint
	kind kind
	tls  *tls.Config
}

// Start builds the PKI and starts every endpoint on 127.0.0.1.
func Start() (l *Lab, err error) {
	ctx, cancel := context.WithCancel(context.Background())
	l = &Lab{ctx: ctx, cancel: cancel, conns: map[net.Conn]struct{}{}, now: time.Now()}
	defer func() {
		if err != nil {
			l.Close()
		}
	}()
	// The HTTP server comes first: certificates carry its URLs.
	httpLn, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	base := "http://" + httpLn.Addr().String()
	l.OCSPURL, l.CRLURL, l.AIAURL = base+"/ocsp", base+"/crl/intermediate.crl", base+"/aia/intermediate.der"

	if err := l.buildPKI(); err != nil {
		return nil, err
	}
	servers, err := l.buildServers(base)
	if err != nil {
		return nil, err
	}
	crl, err := l.ocsp.crl(l.now)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/ocsp", l.ocsp)
	mux.Handle("/ocsp/", l.ocsp)
	mux.HandleFunc("/ocsp-tarpit", func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-l.ctx.Done():
		}
	})
	mux.HandleFunc("/crl/intermediate.crl", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-crl")
		_, _ = w.Write(crl)
	})
	mux.HandleFunc("/aia/intermediate.der", func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/pkix-cert")
		_, _ = w.Write(l.Inter.Cert.Raw)
	})
	l.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second}
	l.track(httpLn)
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		_ = l.srv.Serve(httpLn)
	}()

	for i := range servers {
		if err := l.serve(&servers[i]); err != nil {
			return nil, err
		}
		l.Endpoints = append(l.Endpoints, servers[i].ep)
	}
	return l, nil
}

func (l *Lab) track(ln net.Listener) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.lns = append(l.lns, ln)
}

// Close stops every server and waits for them.
func (l *Lab) Close() {
	l.cancel()
	if l.srv != nil {
		_ = l.srv.Close()
	}
	l.mu.Lock()
	for _, ln := range l.lns {
		_ = ln.Close()
	}
	for c := range l.conns {
		_ = c.Close()
	}
	l.mu.Unlock()
	l.wg.Wait()
}

// Endpoint returns the endpoint named name.
func (l *Lab) Endpoint(name string) (Endpoint, bool) {
	for _, e := range l.Endpoints {
		if e.Name == name {
			return e, true
		}
	}
	return Endpoint{}, false
}

// RootPool returns a pool holding the lab's trust anchors: the lab root and
// the expired root.
func (l *Lab) RootPool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(l.Root.Cert)
	p.AddCert(l.ExpiredRoot.Cert)
	return p
}

// ClientTLSCertificate is the lab client certificate for the mTLS endpoint.
func (l *Lab) ClientTLSCertificate() tls.Certificate {
	return tls.Certificate{Certificate: [][]byte{l.ClientCert.Cert.Raw}, PrivateKey: l.ClientCert.Key, Leaf: l.ClientCert.Cert}
}

func (l *Lab) buildPKI() error {
	now := l.now
	var err error
	if l.Root, err = issue(certSpec{cn: "certpulse lab root", isCA: true, notBefore: now.Add(-365 * 24 * time.Hour), notAfter: now.Add(10 * 365 * 24 * time.Hour)}, nil); err != nil {
		return err
	}
	if l.Inter, err = issue(certSpec{cn: "certpulse lab intermediate", isCA: true, notBefore: now.Add(-365 * 24 * time.Hour), notAfter: now.Add(5 * 365 * 24 * time.Hour)}, l.Root); err != nil {
		return err
	}
	if l.ExpiredRoot, err = issue(certSpec{cn: "certpulse lab retired root", isCA: true, notBefore: now.Add(-10 * 365 * 24 * time.Hour), notAfter: now.Add(-24 * time.Hour)}, nil); err != nil {
		return err
	}
	if l.ClientCA, err = issue(certSpec{cn: "certpulse lab client CA", isCA: true, notBefore: now.Add(-time.Hour), notAfter: now.Add(365 * 24 * time.Hour)}, nil); err != nil {
		return err
	}
	if l.ClientCert, err = issue(certSpec{cn: "certpulse probe", clientEKU: true, notBefore: now.Add(-time.Hour), notAfter: now.Add(365 * 24 * time.Hour)}, l.ClientCA); err != nil {
		return err
	}
	l.ocsp = newResponder(l.Inter)
	return nil
}

// leafSpec returns a healthy leaf spec for name, issued under the lab
// intermediate with OCSP, CRL and AIA URLs.
func (l *Lab) leafSpec(name, base string) certSpec {
	return certSpec{
		cn:        serverName(name),
		dns:       []string{serverName(name)},
		notBefore: l.now.Add(-24 * time.Hour),
		notAfter:  l.now.Add(90 * 24 * time.Hour),
		ocsp:      []string{base + "/ocsp"},
		crl:       []string{base + "/crl/intermediate.crl"},
		aia:       []string{base + "/aia/intermediate.der"},
	}
}

// leaf issues a leaf under the intermediate and registers it with the OCSP
// responder.
func (l *Lab) leaf(s certSpec) (*CA, error) {
	c, err := issue(s, l.Inter)
	if err != nil {
		return nil, err
	}
	l.ocsp.add(c.Cert, false)
	return c, nil
}

func tlsConf(leaf *CA, chain ...*x509.Certificate) *tls.Config {
	der := [][]byte{leaf.Cert.Raw}
	for _, c := range chain {
		der = append(der, c.Raw)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: der, PrivateKey: leaf.Key}}}
}

func (l *Lab) buildServers(base string) ([]server, error) {
	var out []server
	var err error
	add := func(name string, want attrs.Reason, k kind, cfg *tls.Config) *server {
		out = append(out, server{ep: Endpoint{Name: name, ServerName: serverName(name), Want: want}, kind: k, tls: cfg})
		return &out[len(out)-1]
	}
	healthyLeaf := func(name string) (*tls.Config, error) {
		lf, err := l.leaf(l.leafSpec(name, base))
		if err != nil {
			return nil, err
		}
		return tlsConf(lf, l.Inter.Cert), nil
	}
	var cfg *tls.Config

	// Healthy endpoints: zero reasons expected.
	if cfg, err = healthyLeaf("healthy"); err != nil {
		return nil, err
	}
	add("healthy", attrs.ReasonOK, kindTLS, cfg)
	{
		s := l.leafSpec("healthy-rsa-stapled", base)
		if s.key, err = newRSAKey(2048); err != nil {
			return nil, err
		}
		lf, err := l.leaf(s)
		if err != nil {
			return nil, err
		}
		cfg = tlsConf(lf, l.Inter.Cert)
		if cfg.Certificates[0].OCSPStaple, err = l.ocsp.staple(lf.Cert, l.now.Add(-time.Hour), l.now.Add(24*time.Hour)); err != nil {
			return nil, err
		}
		add("healthy-rsa-stapled", attrs.ReasonOK, kindTLS, cfg)
	}
	if cfg, err = healthyLeaf("healthy-smtp"); err != nil {
		return nil, err
	}
	add("healthy-smtp", attrs.ReasonOK, kindSMTP, cfg).ep.StartTLS = "smtp"
	if cfg, err = healthyLeaf("healthy-mtls"); err != nil {
		return nil, err
	}
	cfg.ClientAuth = tls.RequireAndVerifyClientCert
	cfg.ClientCAs = x509.NewCertPool()
	cfg.ClientCAs.AddCert(l.ClientCA.Cert)
	add("healthy-mtls", attrs.ReasonOK, kindTLS, cfg).ep.Profile = MTLSProfile
	// The same demand seen by a profile that sends no client certificate:
	// under TLS 1.2 the server's alert ends the handshake; under TLS 1.3 it
	// arrives after the client considers the handshake done.
	for _, v := range []struct {
		name string
		min  uint16
		max  uint16
	}{{"mtls-required-tls12", tls.VersionTLS12, tls.VersionTLS12}, {"mtls-required-tls13", tls.VersionTLS13, tls.VersionTLS13}} {
		if cfg, err = healthyLeaf(v.name); err != nil {
			return nil, err
		}
		cfg.ClientAuth = tls.RequireAndVerifyClientCert
		cfg.ClientCAs = x509.NewCertPool()
		cfg.ClientCAs.AddCert(l.ClientCA.Cert)
		cfg.MinVersion, cfg.MaxVersion = v.min, v.max
		add(v.name, attrs.ReasonHandshakeFailure, kindTLS, cfg)
	}
	{
		// A wildcard certificate: load tests give each target its own name.
		s := l.leafSpec("healthy-wildcard", base)
		s.cn, s.dns = "*.wild."+Domain, []string{"*.wild." + Domain}
		lf, err := l.leaf(s)
		if err != nil {
			return nil, err
		}
		add("healthy-wildcard", attrs.ReasonOK, kindTLS, tlsConf(lf, l.Inter.Cert)).ep.ServerName = "probe.wild." + Domain
	}

	// Server-side certificate faults.
	{
		s := l.leafSpec("expired-leaf", base)
		s.notBefore, s.notAfter = l.now.Add(-100*24*time.Hour), l.now.Add(-24*time.Hour)
		lf, err := l.leaf(s)
		if err != nil {
			return nil, err
		}
		add("expired-leaf", attrs.ReasonExpiredLeaf, kindTLS, tlsConf(lf, l.Inter.Cert))
	}
	{
		ei, err := issue(certSpec{cn: "certpulse lab expired intermediate", isCA: true, notBefore: l.now.Add(-365 * 24 * time.Hour), notAfter: l.now.Add(-24 * time.Hour)}, l.Root)
		if err != nil {
			return nil, err
		}
		s := l.leafSpec("expired-intermediate", base)
		s.ocsp, s.crl, s.aia = nil, nil, nil
		s.notBefore = l.now.Add(-30 * 24 * time.Hour)
		lf, err := issue(s, ei)
		if err != nil {
			return nil, err
		}
		add("expired-intermediate", attrs.ReasonExpiredIntermediate, kindTLS, tlsConf(lf, ei.Cert))
	}
	{
		// The only path ends at an expired anchor: every client with that
		// trust store fails although every presented certificate is valid.
		oi, err := issue(certSpec{cn: "certpulse lab intermediate under the retired root", isCA: true, notBefore: l.now.Add(-2 * 365 * 24 * time.Hour), notAfter: l.now.Add(365 * 24 * time.Hour)}, l.ExpiredRoot)
		if err != nil {
			return nil, err
		}
		s := l.leafSpec("expired-root", base)
		s.ocsp, s.crl, s.aia = nil, nil, nil
		lf, err := issue(s, oi)
		if err != nil {
			return nil, err
		}
		add("expired-root", attrs.ReasonExpiredRoot, kindTLS, tlsConf(lf, oi.Cert))
	}
	{
		// Cross-signed: the lab root also signed by the expired root, sent
		// in the chain (as Let's Encrypt sent ISRG Root X1 signed by DST
		// Root CA X3). A path to the current root exists: healthy.
		cross, err := issue(certSpec{cn: "certpulse lab root", isCA: true, key: l.Root.Key, notBefore: l.now.Add(-365 * 24 * time.Hour), notAfter: l.now.Add(5 * 365 * 24 * time.Hour)}, l.ExpiredRoot)
		if err != nil {
			return nil, err
		}
		lf, err := l.leaf(l.leafSpec("healthy-cross-signed", base))
		if err != nil {
			return nil, err
		}
		add("healthy-cross-signed", attrs.ReasonOK, kindTLS, tlsConf(lf, l.Inter.Cert, cross.Cert))
	}
	{
		s := l.leafSpec("not-yet-valid", base)
		s.notBefore = l.now.Add(2 * 24 * time.Hour)
		lf, err := l.leaf(s)
		if err != nil {
			return nil, err
		}
		add("not-yet-valid", attrs.ReasonNotYetValid, kindTLS, tlsConf(lf, l.Inter.Cert))
	}
	{
		lf, err := l.leaf(l.leafSpec("missing-intermediate", base))
		if err != nil {
			return nil, err
		}
		add("missing-intermediate", attrs.ReasonMissingIntermediate, kindTLS, tlsConf(lf))
	}
	{
		b1, err := issue(certSpec{cn: "certpulse lab intermediate B1", isCA: true, notBefore: l.now.Add(-time.Hour), notAfter: l.now.Add(5 * 365 * 24 * time.Hour)}, l.Root)
		if err != nil {
			return nil, err
		}
		b2, err := issue(certSpec{cn: "certpulse lab intermediate B2", isCA: true, notBefore: l.now.Add(-time.Hour), notAfter: l.now.Add(5 * 365 * 24 * time.Hour)}, b1)
		if err != nil {
			return nil, err
		}
		s := l.leafSpec("bad-chain-order", base)
		s.ocsp, s.crl, s.aia = nil, nil, nil
		lf, err := issue(s, b2)
		if err != nil {
			return nil, err
		}
		add("bad-chain-order", attrs.ReasonBadChainOrder, kindTLS, tlsConf(lf, b1.Cert, b2.Cert))
	}
	{
		s := l.leafSpec("hostname-mismatch", base)
		s.cn, s.dns = "www.other.example", []string{"www.other.example", "other.example"}
		lf, err := l.leaf(s)
		if err != nil {
			return nil, err
		}
		add("hostname-mismatch", attrs.ReasonHostnameMismatch, kindTLS, tlsConf(lf, l.Inter.Cert))
	}
	{
		s := l.leafSpec("self-signed", base)
		s.ocsp, s.crl, s.aia = nil, nil, nil
		lf, err := issue(s, nil)
		if err != nil {
			return nil, err
		}
		add("self-signed", attrs.ReasonSelfSigned, kindTLS, tlsConf(lf))
	}
	{
		xr, err := issue(certSpec{cn: "untrusted root", isCA: true, notBefore: l.now.Add(-time.Hour), notAfter: l.now.Add(365 * 24 * time.Hour)}, nil)
		if err != nil {
			return nil, err
		}
		xi, err := issue(certSpec{cn: "untrusted intermediate", isCA: true, notBefore: l.now.Add(-time.Hour), notAfter: l.now.Add(365 * 24 * time.Hour)}, xr)
		if err != nil {
			return nil, err
		}
		s := l.leafSpec("unknown-ca", base)
		s.ocsp, s.crl, s.aia = nil, nil, nil
		lf, err := issue(s, xi)
		if err != nil {
			return nil, err
		}
		add("unknown-ca", attrs.ReasonUnknownCA, kindTLS, tlsConf(lf, xi.Cert))
	}
	{
		lf, err := l.leaf(l.leafSpec("revoked", base))
		if err != nil {
			return nil, err
		}
		l.ocsp.add(lf.Cert, true)
		add("revoked", attrs.ReasonRevoked, kindTLS, tlsConf(lf, l.Inter.Cert))
	}
	{
		s := l.leafSpec("ocsp-timeout", base)
		s.ocsp = []string{base + "/ocsp-tarpit"}
		lf, err := l.leaf(s)
		if err != nil {
			return nil, err
		}
		add("ocsp-timeout", attrs.ReasonOCSPTimeout, kindTLS, tlsConf(lf, l.Inter.Cert))
	}
	{
		lf, err := l.leaf(l.leafSpec("stale-staple", base))
		if err != nil {
			return nil, err
		}
		cfg := tlsConf(lf, l.Inter.Cert)
		if cfg.Certificates[0].OCSPStaple, err = l.ocsp.staple(lf.Cert, l.now.Add(-48*time.Hour), l.now.Add(48*time.Hour)); err != nil {
			return nil, err
		}
		add("stale-staple", attrs.ReasonOCSPStaleStaple, kindTLS, cfg)
	}
	{
		if cfg, err = healthyLeaf("pin-mismatch"); err != nil {
			return nil, err
		}
		other := newECKey()
		otherCert, err := issue(certSpec{cn: "pin", notBefore: l.now, notAfter: l.now.Add(time.Hour), key: other}, nil)
		if err != nil {
			return nil, err
		}
		add("pin-mismatch", attrs.ReasonPinMismatch, kindTLS, cfg).ep.Pins = []string{"sha256/" + spkiPin(otherCert.Cert)}
	}
	{
		if cfg, err = healthyLeaf("tls11-only"); err != nil {
			return nil, err
		}
		cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
		add("tls11-only", attrs.ReasonProtocolMismatch, kindTLS, cfg)
	}
	{
		// TLS 1.2 with static RSA key exchange only: outside Go's (and
		// modern browsers') default suites.
		s := l.leafSpec("rsa-kex-only", base)
		if s.key, err = newRSAKey(2048); err != nil {
			return nil, err
		}
		lf, err := l.leaf(s)
		if err != nil {
			return nil, err
		}
		cfg = tlsConf(lf, l.Inter.Cert)
		cfg.MaxVersion = tls.VersionTLS12
		cfg.CipherSuites = []uint16{tls.TLS_RSA_WITH_AES_256_GCM_SHA384}
		add("rsa-kex-only", attrs.ReasonCipherMismatch, kindTLS, cfg)
	}
	{
		s := l.leafSpec("weak-key", base)
		if s.key, err = newRSAKey(1024); err != nil {
			return nil, err
		}
		lf, err := l.leaf(s)
		if err != nil {
			return nil, err
		}
		add("weak-key", attrs.ReasonWeakKey, kindTLS, tlsConf(lf, l.Inter.Cert))
	}
	{
		s := l.leafSpec("sha1-signature", base)
		s.sigAlg = x509.ECDSAWithSHA1
		lf, err := l.leaf(s)
		if err != nil {
			return nil, err
		}
		add("sha1-signature", attrs.ReasonWeakSignature, kindTLS, tlsConf(lf, l.Inter.Cert))
	}
	{
		s := l.leafSpec("expiring-soon", base)
		s.notAfter = l.now.Add(10 * 24 * time.Hour)
		lf, err := l.leaf(s)
		if err != nil {
			return nil, err
		}
		add("expiring-soon", attrs.ReasonExpiringSoon, kindTLS, tlsConf(lf, l.Inter.Cert))
	}
	{
		// 40 unrelated certificates after the real chain: more than a probe
		// keeps, and out of issuing order.
		lf, err := l.leaf(l.leafSpec("oversized-chain", base))
		if err != nil {
			return nil, err
		}
		cfg := tlsConf(lf, l.Inter.Cert)
		for i := 0; i < 40; i++ {
			f, err := issue(certSpec{cn: fmt.Sprintf("filler %d", i), notBefore: l.now.Add(-time.Hour), notAfter: l.now.Add(time.Hour)}, nil)
			if err != nil {
				return nil, err
			}
			cfg.Certificates[0].Certificate = append(cfg.Certificates[0].Certificate, f.Cert.Raw)
		}
		add("oversized-chain", attrs.ReasonBadChainOrder, kindTLS, cfg)
	}

	// Network faults.
	add("tarpit", attrs.ReasonHandshakeTimeout, kindTarpit, nil)
	add("reset", attrs.ReasonConnectionReset, kindReset, nil)
	add("not-tls", attrs.ReasonNotTLS, kindHTTP, nil)
	add("garbage", attrs.ReasonNotTLS, kindGarbage, nil)
	add("refused", attrs.ReasonConnectionRefused, kindRefused, nil)
	return out, nil
}

func (l *Lab) serve(sp *server) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	sp.ep.Address = ln.Addr().String()
	s := *sp
	if s.kind == kindRefused {
		// Reserve a port, then close it: nothing listens there.
		return ln.Close()
	}
	l.track(ln)
	if s.kind == kindHTTP {
		hs := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
			_, _ = io.WriteString(w, "plain HTTP\n")
		})}
		l.wg.Add(2)
		go func() { defer l.wg.Done(); _ = hs.Serve(ln) }()
		go func() { defer l.wg.Done(); <-l.ctx.Done(); _ = hs.Close() }()
		return nil
	}
	l.wg.Add(1)
	go func() {
		defer l.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			if !l.addConn(c) {
				_ = c.Close()
				return
			}
			l.wg.Add(1)
			go func() {
				defer l.wg.Done()
				defer l.dropConn(c)
				l.handle(s, c)
			}()
		}
	}()
	return nil
}

func (l *Lab) addConn(c net.Conn) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.ctx.Err() != nil {
		return false
	}
	l.conns[c] = struct{}{}
	return true
}

func (l *Lab) dropConn(c net.Conn) {
	_ = c.Close()
	l.mu.Lock()
	delete(l.conns, c)
	l.mu.Unlock()
}

func (l *Lab) handle(s server, c net.Conn) {
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	switch s.kind {
	case kindTarpit:
		select {
		case <-l.ctx.Done():
		case <-time.After(30 * time.Second):
		}
	case kindReset:
		if tc, ok := c.(*net.TCPConn); ok {
			_ = tc.SetLinger(0)
		}
	case kindGarbage:
		buf := make([]byte, 256)
		_, _ = rand.Read(buf)
		buf[0] = 0x7f // never a TLS record type
		_, _ = c.Write(buf)
	case kindSMTP:
		if err := smtpServerStartTLS(c); err != nil {
			return
		}
		tc := tls.Server(c, s.tls)
		_ = tc.Handshake()
		_ = tc.Close()
	case kindTLS:
		tc := tls.Server(c, s.tls)
		if err := tc.Handshake(); err == nil {
			_, _ = io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
		}
		_ = tc.Close()
	}
}

func spkiPin(c *x509.Certificate) string {
	return pinOf(c.RawSubjectPublicKeyInfo)
}
