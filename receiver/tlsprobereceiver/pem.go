package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"crypto/x509"
	"encoding/pem"
	"fmt"
)

// nextPEMCert returns the next CERTIFICATE block of data, skipping other
// blocks; nil when none is left.
func nextPEMCert(data []byte) (*x509.Certificate, []byte, error) {
	for {
		b, rest := pem.Decode(data)
		if b == nil {
			return nil, nil, nil
		}
		data = rest
		if b.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(b.Bytes)
		if err != nil {
			return nil, nil, fmt.Errorf("bad certificate: %w", err)
		}
		return c, rest, nil
	}
}
