package faultlab

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"strings"
	"time"
)

// CA is a certificate with its signing key.
type CA struct {
	Cert *x509.Certificate
	Key  crypto.Signer
}

// certSpec describes a certificate to issue.
type certSpec struct {
	cn        string
	dns       []string
	ips       []net.IP
	notBefore time.Time
	notAfter  time.Time
	isCA      bool
	key       crypto.Signer // nil: new ECDSA P-256
	sigAlg    x509.SignatureAlgorithm
	ocsp      []string
	crl       []string
	aia       []string
	clientEKU bool
}

func newECKey() crypto.Signer {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		panic(err) // crypto/rand does not fail
	}
	return k
}

func newRSAKey(bits int) (crypto.Signer, error) {
	return rsa.GenerateKey(rand.Reader, bits)
}

func serial() *big.Int {
	n, err := rand.Int(rand.Reader, new(big.Int).Lsh(big.NewInt(1), 120))
	if err != nil {
		panic(err)
	}
	return n.Add(n, big.NewInt(1))
}

// issue creates a certificate signed by parent (self-signed when parent is nil).
func issue(s certSpec, parent *CA) (*CA, error) {
	key := s.key
	if key == nil {
		key = newECKey()
	}
	tmpl := &x509.Certificate{
		SerialNumber:          serial(),
		Subject:               pkix.Name{CommonName: s.cn, Organization: []string{"certpulse fault lab"}},
		NotBefore:             s.notBefore,
		NotAfter:              s.notAfter,
		DNSNames:              s.dns,
		IPAddresses:           s.ips,
		OCSPServer:            s.ocsp,
		CRLDistributionPoints: s.crl,
		IssuingCertificateURL: s.aia,
		SignatureAlgorithm:    s.sigAlg,
		BasicConstraintsValid: true,
	}
	if s.isCA {
		tmpl.IsCA = true
		tmpl.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign | x509.KeyUsageDigitalSignature
	} else {
		tmpl.KeyUsage = x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment
		tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}
		if s.clientEKU {
			tmpl.ExtKeyUsage = []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth}
		}
	}
	signer, parentCert := key, tmpl
	if parent != nil {
		signer, parentCert = parent.Key, parent.Cert
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, parentCert, key.Public(), signer)
	if err != nil {
		return nil, fmt.Errorf("issue %s: %w", s.cn, err)
	}
	c, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, err
	}
	return &CA{Cert: c, Key: key}, nil
}

// PEM encodes certificates.
func PEM(certs ...*x509.Certificate) []byte {
	var out []byte
	for _, c := range certs {
		out = append(out, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})...)
	}
	return out
}

// KeyPEM encodes a private key as PKCS#8.
func KeyPEM(k crypto.Signer) ([]byte, error) {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		return nil, err
	}
	return pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), nil
}

// IssueLeaf issues a leaf for names under the lab intermediate, valid
// notBefore..notAfter, with the lab's CRL and AIA URLs and its OCSP
// responder (or, with stallOCSP, the responder's tarpit), known to the
// responder as good. Testbeds build their own servers from it.
func (l *Lab) IssueLeaf(names []string, notBefore, notAfter time.Time, stallOCSP bool) (*CA, error) {
	base := strings.TrimSuffix(l.OCSPURL, "/ocsp")
	s := l.leafSpec("x", base)
	s.cn, s.dns, s.notBefore, s.notAfter = names[0], names, notBefore, notAfter
	if stallOCSP {
		s.ocsp = []string{base + "/ocsp-tarpit"}
	}
	return l.leaf(s)
}

// SelfSigned issues a self-signed leaf for names, from no CA anyone
// trusts (a certificate swapped in from elsewhere).
func SelfSigned(names []string, notBefore, notAfter time.Time) (*CA, error) {
	return issue(certSpec{cn: names[0], dns: names, notBefore: notBefore, notAfter: notAfter}, nil)
}
