package tlsinspect

import (
	"bytes"
	//lint:ignore SA1019 recognising legacy DSA keys in served certificates only
	"crypto/dsa"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"
)

// SPKIPin returns the pin of c: base64 SHA-256 of its SubjectPublicKeyInfo.
func SPKIPin(c *x509.Certificate) string {
	sum := sha256.Sum256(c.RawSubjectPublicKeyInfo)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// CertSHA256 returns the upper-case hex SHA-256 of c's DER (tls.server.hash.sha256).
func CertSHA256(c *x509.Certificate) string {
	sum := sha256.Sum256(c.Raw)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// ChainSHA256 returns the hex SHA-256 over the presented chain, in order.
func ChainSHA256(chain []*x509.Certificate) string {
	h := sha256.New()
	for _, c := range chain {
		sum := sha256.Sum256(c.Raw)
		h.Write(sum[:])
	}
	return hex.EncodeToString(h.Sum(nil))
}

// SANs returns the sorted SAN set of c (DNS names, IPs, emails, URIs).
func SANs(c *x509.Certificate) []string {
	out := make([]string, 0, len(c.DNSNames)+len(c.IPAddresses))
	for _, n := range c.DNSNames {
		out = append(out, "dns:"+strings.ToLower(n))
	}
	for _, ip := range c.IPAddresses {
		out = append(out, "ip:"+ip.String())
	}
	for _, e := range c.EmailAddresses {
		out = append(out, "email:"+e)
	}
	for _, u := range c.URIs {
		out = append(out, "uri:"+u.String())
	}
	sort.Strings(out)
	return out
}

// SANSHA256 returns the hex SHA-256 of the sorted SAN set.
func SANSHA256(c *x509.Certificate) string {
	sum := sha256.Sum256([]byte(strings.Join(SANs(c), "\n")))
	return hex.EncodeToString(sum[:])
}

// NormalizePin accepts "sha256/<b64>" or "<b64>" and returns the base64 part.
func NormalizePin(p string) (string, error) {
	b := strings.TrimPrefix(strings.TrimSpace(p), "sha256/")
	raw, err := base64.StdEncoding.DecodeString(b)
	if err != nil || len(raw) != sha256.Size {
		return "", fmt.Errorf("pin %q is not sha256/<base64 of 32 bytes>", p)
	}
	return b, nil
}

// Name renders a certificate for humans: its subject CN, or the full subject.
func Name(c *x509.Certificate) string {
	if c.Subject.CommonName != "" {
		return "CN=" + c.Subject.CommonName
	}
	return c.Subject.String()
}

func isSelfSigned(c *x509.Certificate) bool {
	if !bytes.Equal(c.RawIssuer, c.RawSubject) {
		return false
	}
	err := c.CheckSignature(c.SignatureAlgorithm, c.RawTBSCertificate, c.Signature)
	return err == nil || isInsecureAlgorithm(err)
}

// weakKey describes c's key when it is weak: RSA < 2048, EC < 256 bits, DSA.
func weakKey(c *x509.Certificate) string {
	switch k := c.PublicKey.(type) {
	case *rsa.PublicKey:
		if n := k.N.BitLen(); n < 2048 {
			return fmt.Sprintf("RSA %d bits", n)
		}
	case *ecdsa.PublicKey:
		if n := k.Curve.Params().BitSize; n < 256 {
			return fmt.Sprintf("EC %d bits", n)
		}
	case *dsa.PublicKey:
		return "DSA"
	case ed25519.PublicKey:
	}
	return ""
}

// weakSignature names c's signature algorithm when it is weak (MD2/MD5/SHA-1).
func weakSignature(c *x509.Certificate) string {
	switch c.SignatureAlgorithm {
	case x509.MD2WithRSA, x509.MD5WithRSA, x509.SHA1WithRSA, x509.DSAWithSHA1, x509.ECDSAWithSHA1:
		return c.SignatureAlgorithm.String()
	}
	return ""
}

// orderProblem reports why the presented chain is not in issuing order (each
// certificate issued by the next), or "" when it is. The chain is bounded
// (Options.MaxChainCerts): comparing each certificate with those before it
// allocates nothing, where a set of their DER copied every certificate.
func orderProblem(chain []*x509.Certificate) string {
	for i, c := range chain {
		for _, prev := range chain[:i] {
			if bytes.Equal(prev.Raw, c.Raw) {
				return fmt.Sprintf("certificate %d (%s) is sent twice", i, Name(c))
			}
		}
		if i+1 < len(chain) && !bytes.Equal(c.RawIssuer, chain[i+1].RawSubject) {
			return fmt.Sprintf("certificate %d (%s) is followed by %s, not by its issuer", i, Name(c), Name(chain[i+1]))
		}
	}
	return ""
}

// verifyAt builds a path for chain[0] under roots at time t.
func verifyAt(chain []*x509.Certificate, extra []*x509.Certificate, roots *x509.CertPool, t time.Time) ([]*x509.Certificate, error) {
	inter := x509.NewCertPool()
	for _, c := range chain[1:] {
		inter.AddCert(c)
	}
	for _, c := range extra {
		inter.AddCert(c)
	}
	chains, err := chain[0].Verify(x509.VerifyOptions{
		Roots:         roots,
		Intermediates: inter,
		CurrentTime:   t,
		KeyUsages:     []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	})
	if err != nil {
		return nil, err
	}
	best := chains[0]
	for _, ch := range chains[1:] {
		if len(ch) < len(best) {
			best = ch
		}
	}
	return best, nil
}

// validityOverlap returns a time at which every certificate in certs is
// valid, preferring now; ok is false when no such time exists.
func validityOverlap(certs []*x509.Certificate, now time.Time) (time.Time, bool) {
	lo, hi := certs[0].NotBefore, certs[0].NotAfter
	for _, c := range certs[1:] {
		if c.NotBefore.After(lo) {
			lo = c.NotBefore
		}
		if c.NotAfter.Before(hi) {
			hi = c.NotAfter
		}
	}
	if lo.After(hi) {
		return now, false
	}
	switch {
	case now.Before(lo):
		return lo, true
	case now.After(hi):
		return hi, true
	}
	return now, true
}

func isTimeError(err error) bool {
	var ce x509.CertificateInvalidError
	return errors.As(err, &ce) && ce.Reason == x509.Expired
}

func isUnknownAuthority(err error) bool {
	var ua x509.UnknownAuthorityError
	return errors.As(err, &ua)
}

func isInsecureAlgorithm(err error) bool {
	var ia x509.InsecureAlgorithmError
	return errors.As(err, &ia) || strings.Contains(err.Error(), "insecure algorithm")
}

// chainInvalid reports a chain that leads to a trusted root but breaks a
// rule on the way (name constraints, key usage, a CA not allowed to sign):
// every client refuses it as invalid, not as unknown. Expiry is looked
// past (reported on its own).
func chainInvalid(chain []*x509.Certificate, roots *x509.CertPool, now time.Time) bool {
	t := now
	if ov, ok := validityOverlap(chain, now); ok {
		t = ov
	}
	_, err := verifyAt(chain, nil, roots, t)
	var inv x509.CertificateInvalidError
	return errors.As(err, &inv) && inv.Reason != x509.Expired
}
