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
	"io"
	"net"
	"net/http"
	"sync"
	"time"
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
	// NodeGroups are the edge nodes of a name (tlsprobe `nodes` targets).
	NodeGroups []NodeGroup

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
	if err := l.startNodeGroups(); err != nil {
		return nil, err
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
			respond(tc)
		} else {
			// The alert is sent; read what the client still sends
			// (a TLS 1.3 client's request) so that closing does not reset
			// the connection and discard the alert before it is read.
			drain(c)
		}
		_ = tc.Close()
	}
}

// respond answers a completed handshake with an empty 200, ends its side
// (close_notify) and reads what the client sent until it closes (at most
// a second): closing with the client's request unread would reset the
// connection, and a browser would report the reset instead of the page.
func respond(tc *tls.Conn) {
	_, _ = io.WriteString(tc, "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
	_ = tc.CloseWrite()
	drain(tc)
}

// drain reads and drops what the peer sends until it closes, at most a
// second and 64 KiB.
func drain(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
}

// Respond is what the lab's servers do after a handshake, for testbeds'
// own servers: an empty 200, close_notify, the client's request drained.
func Respond(tc *tls.Conn) { respond(tc) }

func spkiPin(c *x509.Certificate) string {
	return pinOf(c.RawSubjectPublicKeyInfo)
}
