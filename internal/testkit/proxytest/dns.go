package proxytest

import (
	"context"
	"net"
	"net/netip"
	"strings"
	"testing"

	"golang.org/x/net/dns/dnsmessage"
)

// DNS answers A and AAAA queries for the names it holds over UDP on
// 127.0.0.1 (every other name: NXDOMAIN). Resolver returns a resolver that
// asks it, for code that takes a *net.Resolver.
type DNS struct {
	Addr  string
	names map[string][]netip.Addr
	conn  net.PacketConn
}

// StartDNS serves names (host name -> addresses) until cleanup.
func StartDNS(t testing.TB, names map[string][]netip.Addr) *DNS {
	t.Helper()
	return StartDNSAt(t, "127.0.0.1:0", names)
}

// StartDNSAt is StartDNS on addr: port 53 of a loopback address, for a
// program whose own resolver reads a resolv.conf naming it.
func StartDNSAt(t testing.TB, addr string, names map[string][]netip.Addr) *DNS {
	t.Helper()
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		t.Fatal(err)
	}
	d := &DNS{Addr: pc.LocalAddr().String(), names: map[string][]netip.Addr{}, conn: pc}
	for n, a := range names {
		d.names[strings.ToLower(strings.TrimSuffix(n, "."))+"."] = a
	}
	done := make(chan struct{})
	go func() { defer close(done); d.serve() }()
	t.Cleanup(func() { _ = pc.Close(); <-done })
	return d
}

// Resolver asks this server only.
func (d *DNS) Resolver() *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(ctx context.Context, _, _ string) (net.Conn, error) {
		var dl net.Dialer
		return dl.DialContext(ctx, "udp", d.Addr)
	}}
}

func (d *DNS) serve() {
	buf := make([]byte, 1500)
	for {
		n, from, err := d.conn.ReadFrom(buf)
		if err != nil {
			return
		}
		if out, ok := d.answer(buf[:n]); ok {
			_, _ = d.conn.WriteTo(out, from)
		}
	}
}

func (d *DNS) answer(q []byte) ([]byte, bool) {
	var p dnsmessage.Parser
	h, err := p.Start(q)
	if err != nil {
		return nil, false
	}
	question, err := p.Question()
	if err != nil {
		return nil, false
	}
	addrs, known := d.names[strings.ToLower(question.Name.String())]
	rh := dnsmessage.Header{ID: h.ID, Response: true, Authoritative: true, RecursionDesired: h.RecursionDesired, RecursionAvailable: true}
	if !known {
		rh.RCode = dnsmessage.RCodeNameError
	}
	b := dnsmessage.NewBuilder(nil, rh)
	b.EnableCompression()
	_ = b.StartQuestions()
	_ = b.Question(question)
	_ = b.StartAnswers()
	for _, a := range addrs {
		rr := dnsmessage.ResourceHeader{Name: question.Name, Class: dnsmessage.ClassINET, TTL: 5}
		switch {
		case a.Is4() && question.Type == dnsmessage.TypeA:
			_ = b.AResource(rr, dnsmessage.AResource{A: a.As4()})
		case a.Is6() && !a.Is4In6() && question.Type == dnsmessage.TypeAAAA:
			_ = b.AAAAResource(rr, dnsmessage.AAAAResource{AAAA: a.As16()})
		}
	}
	out, err := b.Finish()
	return out, err == nil
}
