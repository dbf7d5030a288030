package clients

import (
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"testing"

	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// TestEvidenceMinRSABits: the smallest RSA key a client checks, past the
// leaf; a self-issued root sent along is checked by no client.
func TestEvidenceMinRSABits(t *testing.T) {
	cert := func(cn, issuer string, bits int) *x509.Certificate {
		return &x509.Certificate{Subject: pkix.Name{CommonName: cn}, Issuer: pkix.Name{CommonName: issuer},
			RawSubject: []byte(cn), RawIssuer: []byte(issuer), PublicKey: &rsa.PublicKey{N: new(big.Int).Lsh(big.NewInt(1), uint(bits-1)), E: 65537}}
	}
	for _, c := range []struct {
		name  string
		chain []*x509.Certificate
		want  int
	}{
		{"leaf and intermediate", []*x509.Certificate{cert("leaf", "inter", 2048), cert("inter", "root", 3072)}, 2048},
		{"a weak intermediate", []*x509.Certificate{cert("leaf", "inter", 2048), cert("inter", "root", 1024)}, 1024},
		{"a weak root sent along is not counted", []*x509.Certificate{cert("leaf", "inter", 2048), cert("inter", "root", 2048), cert("root", "root", 1024)}, 2048},
		{"a weak cross-signed root is", []*x509.Certificate{cert("leaf", "inter", 2048), cert("inter", "root", 2048), cert("root", "other", 1024)}, 1024},
	} {
		t.Run(c.name, func(t *testing.T) {
			if got := EvidenceOf(&tlsinspect.Result{Chain: c.chain}).MinRSABits; got != c.want {
				t.Errorf("MinRSABits = %d, want %d", got, c.want)
			}
		})
	}
}
