// Package listen judges listening addresses: which ones only this host can
// reach, so that a server on them may go without authentication.
package listen // import "github.com/certpulse/certpulse/internal/listen"

import (
	"net"
	"net/netip"
	"strings"
)

// LoopbackOnly reports whether endpoint (host:port) binds to a loopback
// address only: localhost, 127.0.0.0/8 or ::1. An empty host, 0.0.0.0, ::,
// a pod IP or a name that is not localhost are reachable from elsewhere.
func LoopbackOnly(endpoint string) bool {
	host, _, err := net.SplitHostPort(endpoint)
	if err != nil {
		return false
	}
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && ip.Unmap().IsLoopback()
}
