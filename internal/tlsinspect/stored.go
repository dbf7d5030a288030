package tlsinspect

import (
	"bytes"
	"crypto/x509"
	"fmt"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// GroupStored splits certificates found at rest (a PEM bundle, a
// kubeconfig entry) into groups: a certificate followed by the issuers stored
// right after it, in issuing order. A self-signed certificate ends its group,
// so a CA bundle becomes one group per root.
func GroupStored(certs []*x509.Certificate) [][]*x509.Certificate {
	var out [][]*x509.Certificate
	for _, c := range certs {
		if n := len(out); n > 0 {
			g := out[n-1]
			last := g[len(g)-1]
			if !isSelfSigned(last) && bytes.Equal(last.RawIssuer, c.RawSubject) {
				out[n-1] = append(g, c)
				continue
			}
		}
		out = append(out, []*x509.Certificate{c})
	}
	return out
}

// StoredRole is the role of a certificate at rest: leaf (not a CA), root
// (a self-signed CA) or intermediate (any other CA).
func StoredRole(c *x509.Certificate) string {
	switch {
	case !c.IsCA:
		return "leaf"
	case isSelfSigned(c):
		return "root"
	}
	return "intermediate"
}

// ClassifyStored judges one group of certificates at rest, without a
// handshake: the validity period of every certificate (expired_leaf,
// expired_intermediate, expired_root, not_yet_valid, expiring_soon), key and
// signature strength and order, and, when roots is not nil, the trust path
// under roots for any extended key usage (client certificates such as the
// kubelet's validate too). Hostname, pins and revocation need a server and
// are not judged.
func ClassifyStored(group []*x509.Certificate, roots *x509.CertPool, now time.Time, soon time.Duration) []Finding {
	if len(group) == 0 {
		return nil
	}
	fs := chainFindings(group)
	first := group[0]
	if roots != nil && StoredRole(first) != "root" {
		fs = append(fs, storedTrust(group, roots, now)...)
	}
	soonDone := false
	for _, c := range group {
		role := StoredRole(c)
		what := "certificate"
		expired := attrs.ReasonExpiredLeaf
		switch role {
		case "root":
			what, expired = "CA certificate", attrs.ReasonExpiredRoot
		case "intermediate":
			what, expired = "intermediate", attrs.ReasonExpiredIntermediate
		}
		switch {
		case now.After(c.NotAfter):
			fs = append(fs, Finding{expired, fmt.Sprintf("%s %s expired %s ago (notAfter %s)", what, Name(c), humanDur(now.Sub(c.NotAfter)), c.NotAfter.UTC().Format(time.RFC3339))})
		case now.Before(c.NotBefore):
			fs = append(fs, Finding{attrs.ReasonNotYetValid, fmt.Sprintf("%s %s is not valid until %s", what, Name(c), c.NotBefore.UTC().Format(time.RFC3339))})
		case c.NotAfter.Sub(now) < soon && !soonDone:
			soonDone = true
			fs = append(fs, Finding{attrs.ReasonExpiringSoon, fmt.Sprintf("%s %s expires in %s (notAfter %s)", what, Name(c), humanDur(c.NotAfter.Sub(now)), c.NotAfter.UTC().Format(time.RFC3339))})
		}
	}
	return sortFindings(fs)
}

// storedTrust builds a path for group[0] under roots (looking past expiry,
// which the validity checks report) and names what is wrong when none exists.
func storedTrust(group []*x509.Certificate, roots *x509.CertPool, now time.Time) []Finding {
	inter := x509.NewCertPool()
	for _, c := range group[1:] {
		inter.AddCert(c)
	}
	verify := func(t time.Time) error {
		_, err := group[0].Verify(x509.VerifyOptions{Roots: roots, Intermediates: inter, CurrentTime: t, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
		return err
	}
	err := verify(now)
	if err != nil && isTimeError(err) {
		if t, ok := validityOverlap(group, now); ok {
			err = verify(t)
		}
	}
	leaf := group[0]
	switch {
	case err == nil, isInsecureAlgorithm(err), isTimeError(err):
		return nil // valid, or reported by the signature and validity checks
	case isUnknownAuthority(err) && isSelfSigned(leaf):
		return []Finding{{attrs.ReasonSelfSigned, fmt.Sprintf("certificate %s is self-signed and not in ca_file", Name(leaf))}}
	case isUnknownAuthority(err):
		top := group[len(group)-1]
		if len(group) == 1 {
			return []Finding{{attrs.ReasonUnknownCA, fmt.Sprintf("certificate %s is issued by %q, which is neither stored with it nor in ca_file; a client that trusts only ca_file fails (a missing intermediate or the wrong CA)", Name(leaf), leaf.Issuer.String())}}
		}
		return []Finding{{attrs.ReasonUnknownCA, fmt.Sprintf("chain does not lead to a root in ca_file (top issuer %q)", top.Issuer.String())}}
	}
	return []Finding{{attrs.ReasonUnknownCA, "chain does not validate under ca_file: " + err.Error()}}
}
