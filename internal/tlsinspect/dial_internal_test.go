package tlsinspect

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/faultlab"
)

// TestPostHandshakeReadOnlyWhenAsked: the TLS 1.3 read that catches a
// certificate_required alert runs only when the server asked for a client
// certificate; a server that did not costs no wait. Against a server that
// requires one, the alert still fails the probe, with and without a
// certificate it refuses.
func TestPostHandshakeReadOnlyWhenAsked(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	in := New(DefaultOptions())
	t.Cleanup(in.Close)
	tls13 := &tls.Config{MinVersion: tls.VersionTLS13}
	get := func(name string) *Target {
		ep, ok := lab.Endpoint(name)
		if !ok {
			t.Fatalf("no lab endpoint %s", name)
		}
		return &Target{Endpoint: ep.Address}
	}
	ep, _ := lab.Endpoint("healthy")
	out := in.handshake(context.Background(), get("healthy"), ep.ServerName, tls13)
	if out.err != nil || out.state == nil || out.state.Version != tls.VersionTLS13 {
		t.Fatalf("healthy over TLS 1.3: %+v", out)
	}
	if out.asked || out.grace != 0 {
		t.Errorf("no certificate asked for, yet asked=%v and a %s wait", out.asked, out.grace)
	}

	ep, _ = lab.Endpoint("mtls-required-tls13")
	out = in.handshake(context.Background(), get("mtls-required-tls13"), ep.ServerName, tls13)
	var phe *postHandshakeError
	if !out.asked || !errors.As(out.err, &phe) || out.grace <= 0 {
		t.Errorf("client certificate required: asked=%v err=%v grace=%s, want asked, a post-handshake alert and the wait", out.asked, out.err, out.grace)
	}
	// A certificate the server does not trust is refused after the
	// handshake too (the lab's mTLS server trusts only its client CA).
	withCert := tls13.Clone()
	withCert.Certificates = []tls.Certificate{selfSigned(t)}
	out = in.handshake(context.Background(), get("mtls-required-tls13"), ep.ServerName, withCert)
	if !out.asked || !out.sentCert || !errors.As(out.err, &phe) {
		t.Errorf("untrusted client certificate: asked=%v sent=%v err=%v, want a post-handshake alert", out.asked, out.sentCert, out.err)
	}
}

func selfSigned(t *testing.T) tls.Certificate {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "stranger"}, NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}, KeyUsage: x509.KeyUsageDigitalSignature}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: key}
}
