package tlsinspect

import (
	"errors"
	"fmt"
	"net/netip"
	"syscall"
)

// fetchDeniedError is a fetch of a certificate URL (OCSP, CRL, AIA) refused
// at dial time because it would reach a non-public address.
type fetchDeniedError struct{ ip netip.Addr }

func (e *fetchDeniedError) Error() string {
	return fmt.Sprintf("address %s denied by policy (loopback, link-local, private and unspecified addresses are refused unless listed in allow_private_fetch_networks)", e.ip)
}

// cgnat is the shared address space (RFC 6598), not routable on the internet.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// nonPublic reports addresses a certificate URL must not reach by default.
func nonPublic(ip netip.Addr) bool {
	return ip.IsLoopback() || ip.IsPrivate() || ip.IsUnspecified() || ip.IsLinkLocalUnicast() ||
		ip.IsLinkLocalMulticast() || ip.IsInterfaceLocalMulticast() || ip.IsMulticast() || cgnat.Contains(ip)
}

// fetchControl runs after name resolution, on the address about to be
// dialed, so that DNS rebinding cannot bypass it. OCSP, CRL and AIA URLs come
// from certificates the probed server chooses.
func (in *Inspector) fetchControl(_, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return fmt.Errorf("fetch address %q: %w", address, err)
	}
	ip := ap.Addr().Unmap()
	if !nonPublic(ip) {
		return nil
	}
	for _, p := range in.opts.AllowPrivateFetch {
		if p.Contains(ip) {
			return nil
		}
	}
	return &fetchDeniedError{ip: ip}
}

// deniedFetch returns the refusal when err is a fetch fetchControl refused.
func deniedFetch(err error) *fetchDeniedError {
	var d *fetchDeniedError
	if errors.As(err, &d) {
		return d
	}
	return nil
}

// ParseNetworks parses allow_private_fetch_networks: CIDRs, or single
// addresses (a /32 or /128).
func ParseNetworks(cidrs []string) ([]netip.Prefix, error) {
	out := make([]netip.Prefix, 0, len(cidrs))
	var errs []error
	for _, c := range cidrs {
		p, err := netip.ParsePrefix(c)
		if err != nil {
			a, aerr := netip.ParseAddr(c)
			if aerr != nil {
				errs = append(errs, fmt.Errorf("allow_private_fetch_networks: %q is not a CIDR (10.0.0.0/8) or an address", c))
				continue
			}
			p = netip.PrefixFrom(a, a.BitLen())
		}
		out = append(out, p.Masked())
	}
	return out, errors.Join(errs...)
}
