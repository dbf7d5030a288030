package tlsinspect_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

func mkCert(t testing.TB, cn string, dns []string, isCA bool, parent *x509.Certificate, parentKey *ecdsa.PrivateKey, nb, na time.Time) (*x509.Certificate, *ecdsa.PrivateKey) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(time.Now().UnixNano()), Subject: pkix.Name{CommonName: cn}, DNSNames: dns,
		NotBefore: nb, NotAfter: na, IsCA: isCA, BasicConstraintsValid: true,
		KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	if parent == nil {
		parent, parentKey = tmpl, key
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, &key.PublicKey, parentKey)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c, key
}

func FuzzClassifyChain(f *testing.F) {
	now := time.Now()
	root, rk := mkCert(f, "root", nil, true, nil, nil, now.Add(-time.Hour), now.Add(time.Hour*24*365))
	inter, ik := mkCert(f, "inter", nil, true, root, rk, now.Add(-time.Hour), now.Add(time.Hour*24*365))
	leaf, _ := mkCert(f, "leaf", []string{"a.test"}, false, inter, ik, now.Add(-time.Hour), now.Add(time.Hour*24*90))
	old, _ := mkCert(f, "old", []string{"a.test"}, false, inter, ik, now.Add(-48*time.Hour), now.Add(-time.Hour))
	cat := func(cs ...*x509.Certificate) []byte {
		var b []byte
		for _, c := range cs {
			b = append(b, c.Raw...)
		}
		return b
	}
	f.Add(cat(leaf, inter), "a.test")
	f.Add(cat(inter, leaf), "a.test")
	f.Add(cat(old, inter, root), "b.test")
	f.Add(cat(leaf), "")
	f.Add([]byte{0x30, 0x82, 0x01}, "x")
	roots := x509.NewCertPool()
	roots.AddCert(root)
	o := tlsinspect.DefaultOptions()
	o.AIA.Enabled = false
	in := tlsinspect.New(o)
	defer in.Close()
	f.Fuzz(func(t *testing.T, der []byte, name string) {
		chain, err := x509.ParseCertificates(der)
		if err != nil || len(chain) == 0 {
			return
		}
		fs := in.Classify(context.Background(), chain, name, nil, roots)
		for i, fd := range fs {
			if _, ok := attrs.Info(fd.Reason); !ok {
				t.Fatalf("unknown reason %q", fd.Reason)
			}
			if i > 0 && attrs.Rank(fs[i-1].Reason) >= attrs.Rank(fd.Reason) {
				t.Fatalf("findings not in precedence order: %v", fs)
			}
		}
	})
}

func TestClassifyOffline(t *testing.T) {
	now := time.Now()
	root, rk := mkCert(t, "root", nil, true, nil, nil, now.Add(-time.Hour), now.Add(time.Hour*24*365))
	inter, ik := mkCert(t, "inter", nil, true, root, rk, now.Add(-time.Hour), now.Add(time.Hour*24*365))
	leaf, _ := mkCert(t, "leaf", []string{"a.test"}, false, inter, ik, now.Add(-time.Hour), now.Add(time.Hour*24*90))
	roots := x509.NewCertPool()
	roots.AddCert(root)
	o := tlsinspect.DefaultOptions()
	o.AIA.Enabled = false
	in := tlsinspect.New(o)
	defer in.Close()
	cases := []struct {
		chain []*x509.Certificate
		name  string
		pins  []string
		want  attrs.Reason
	}{
		{[]*x509.Certificate{leaf, inter}, "a.test", nil, attrs.ReasonOK},
		{[]*x509.Certificate{leaf, inter}, "b.test", nil, attrs.ReasonHostnameMismatch},
		{[]*x509.Certificate{leaf}, "a.test", nil, attrs.ReasonMissingIntermediate}, // a lone leaf, AIA off: incomplete all the same
		{[]*x509.Certificate{leaf, inter, root}, "a.test", nil, attrs.ReasonOK},
		{[]*x509.Certificate{leaf, inter}, "a.test", []string{"sha256/" + tlsinspect.SPKIPin(inter)}, attrs.ReasonOK},
		{[]*x509.Certificate{leaf, inter}, "a.test", []string{"sha256/" + tlsinspect.SPKIPin(root)}, attrs.ReasonOK}, // anchor on the path
		{[]*x509.Certificate{leaf, inter}, "a.test", []string{"sha256/AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA="}, attrs.ReasonPinMismatch},
	}
	for i, c := range cases {
		fs := in.Classify(context.Background(), c.chain, c.name, c.pins, roots)
		got := attrs.ReasonOK
		if len(fs) > 0 {
			got = fs[0].Reason
		}
		if got != c.want {
			t.Errorf("case %d: %s, want %s (%v)", i, got, c.want, fs)
		}
	}
}
