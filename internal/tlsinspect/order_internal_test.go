package tlsinspect

import (
	"crypto/x509"
	"crypto/x509/pkix"
	"testing"
)

// TestOrderProblem: a chain in issuing order has none; a certificate sent
// twice and one followed by another than its issuer are named.
func TestOrderProblem(t *testing.T) {
	cert := func(cn, issuer string) *x509.Certificate {
		return &x509.Certificate{Raw: []byte("der:" + cn + "<-" + issuer), RawSubject: []byte(cn), RawIssuer: []byte(issuer), Subject: pkix.Name{CommonName: cn}}
	}
	leaf, inter, root := cert("leaf", "inter"), cert("inter", "root"), cert("root", "root")
	other := cert("other", "root")
	for _, c := range []struct {
		name  string
		chain []*x509.Certificate
		want  string
	}{
		{"leaf alone", []*x509.Certificate{leaf}, ""},
		{"in order", []*x509.Certificate{leaf, inter}, ""},
		{"in order with the root", []*x509.Certificate{leaf, inter, root}, ""},
		{"reversed", []*x509.Certificate{leaf, root, inter}, "certificate 0 (CN=leaf) is followed by CN=root, not by its issuer"},
		{"wrong intermediate", []*x509.Certificate{leaf, other}, "certificate 0 (CN=leaf) is followed by CN=other, not by its issuer"},
		{"sent twice", []*x509.Certificate{leaf, inter, root, root}, "certificate 3 (CN=root) is sent twice"},
		{"an intermediate twice: out of order first", []*x509.Certificate{leaf, inter, inter}, "certificate 1 (CN=inter) is followed by CN=inter, not by its issuer"},
		{"the leaf twice", []*x509.Certificate{leaf, leaf}, "certificate 0 (CN=leaf) is followed by CN=leaf, not by its issuer"},
		{"self-issued root twice", []*x509.Certificate{root, root}, "certificate 1 (CN=root) is sent twice"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := orderProblem(c.chain); got != c.want {
				t.Errorf("orderProblem = %q, want %q", got, c.want)
			}
		})
	}
}

func BenchmarkOrderProblem(b *testing.B) {
	chain := []*x509.Certificate{
		{Raw: make([]byte, 1500), RawSubject: []byte("leaf"), RawIssuer: []byte("inter")},
		{Raw: append(make([]byte, 1499), 1), RawSubject: []byte("inter"), RawIssuer: []byte("root")},
	}
	b.ReportAllocs()
	for b.Loop() {
		if orderProblem(chain) != "" {
			b.Fatal("in order")
		}
	}
}
