// Package certpem is certpulse's one reader of certificates from bytes: a
// PEM bundle (certificate blocks in order, private keys counted and never
// decoded) or DER. tlsprobe's certificate files and CA files, AIA
// responses, cert-manager's signed certificates and lifecycle events read
// through it. (kubeconfig files are tlsprobe's: their certificate data is a
// PEM bundle read here.)
package certpem // import "github.com/certpulse/certpulse/internal/certpem"

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
)

// Bundle is what a PEM bundle holds.
type Bundle struct {
	// Certs are the CERTIFICATE blocks that parsed, in order.
	Certs []*x509.Certificate
	// Keys counts the private key blocks (never decoded).
	Keys int
	// Problems name the certificate blocks that did not parse
	// ("certificate block 2: ...").
	Problems []string
	// Truncated: more than max certificates; Certs holds max+1.
	Truncated bool
}

// ReadPEM reads the PEM blocks of data; it stops after more than max
// certificates (max <= 0: no bound). Blocks of other types are skipped.
func ReadPEM(data []byte, max int) Bundle {
	var out Bundle
	n := 0
	for rest := data; ; {
		b, r := pem.Decode(rest)
		if b == nil {
			return out
		}
		rest = r
		switch {
		case strings.Contains(b.Type, "PRIVATE KEY"):
			out.Keys++
		case b.Type == "CERTIFICATE":
			n++
			c, err := x509.ParseCertificate(b.Bytes)
			if err != nil {
				out.Problems = append(out.Problems, fmt.Sprintf("certificate block %d: %v", n, err))
				continue
			}
			out.Certs = append(out.Certs, c)
			if max > 0 && len(out.Certs) > max {
				out.Truncated = true
				return out
			}
		}
	}
}

// IsPEM says whether data looks like PEM (a "-----BEGIN" line).
func IsPEM(data []byte) bool { return bytes.Contains(data, []byte("-----BEGIN")) }

// Parse reads certificates from PEM or DER (one or several concatenated):
// every certificate block must parse, and there must be one.
func Parse(data []byte) ([]*x509.Certificate, error) {
	if !IsPEM(data) {
		if len(data) == 0 {
			return nil, errors.New("no certificate: empty")
		}
		return x509.ParseCertificates(data)
	}
	b := ReadPEM(data, 0)
	if len(b.Problems) > 0 {
		return nil, errors.New(strings.Join(b.Problems, "; "))
	}
	if len(b.Certs) == 0 {
		return nil, errors.New("no CERTIFICATE block in PEM")
	}
	return b.Certs, nil
}
