package certpem

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"strings"
	"testing"
	"time"
)

func der(t *testing.T, cn string) []byte {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: cn}, NotBefore: time.Now(), NotAfter: time.Now().Add(time.Hour)}
	b, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func block(typ string, b []byte) string {
	return string(pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: b}))
}

func TestReadPEM(t *testing.T) {
	a, b := der(t, "a"), der(t, "b")
	for _, tc := range []struct {
		name     string
		data     string
		max      int
		certs    []string
		keys     int
		problems int
		trunc    bool
	}{
		{name: "bundle in order", data: block("CERTIFICATE", a) + block("CERTIFICATE", b), certs: []string{"a", "b"}},
		{name: "key counted, not decoded", data: block("EC PRIVATE KEY", []byte("secret")) + block("CERTIFICATE", b), certs: []string{"b"}, keys: 1},
		{name: "bad block named, others read", data: block("CERTIFICATE", []byte("junk")) + block("CERTIFICATE", b), certs: []string{"b"}, problems: 1},
		{name: "other blocks skipped", data: block("X509 CRL", []byte("x")) + block("CERTIFICATE", a), certs: []string{"a"}},
		{name: "bounded", data: block("CERTIFICATE", a) + block("CERTIFICATE", b) + block("CERTIFICATE", a), max: 1, certs: []string{"a", "b"}, trunc: true},
		{name: "not PEM", data: "hello"},
	} {
		got := ReadPEM([]byte(tc.data), tc.max)
		var cns []string
		for _, c := range got.Certs {
			cns = append(cns, c.Subject.CommonName)
		}
		if strings.Join(cns, ",") != strings.Join(tc.certs, ",") || got.Keys != tc.keys || len(got.Problems) != tc.problems || got.Truncated != tc.trunc {
			t.Errorf("%s: certs %v keys %d problems %v truncated %v", tc.name, cns, got.Keys, got.Problems, got.Truncated)
		}
	}
}

func TestParse(t *testing.T) {
	a, b := der(t, "a"), der(t, "b")
	if cs, err := Parse(append(append([]byte{}, a...), b...)); err != nil || len(cs) != 2 {
		t.Errorf("DER pair: %d, %v", len(cs), err)
	}
	if cs, err := Parse([]byte(block("CERTIFICATE", a))); err != nil || len(cs) != 1 {
		t.Errorf("PEM: %d, %v", len(cs), err)
	}
	for _, bad := range []string{"", block("CERTIFICATE", []byte("junk")), block("RSA PRIVATE KEY", []byte("k")), "\x30\x03junk"} {
		if _, err := Parse([]byte(bad)); err == nil {
			t.Errorf("Parse(%q): no error", bad)
		}
	}
}
