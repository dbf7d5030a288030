package tlsinspect

import (
	"context"
	"crypto/tls"
	"sync"
)

// ResumeCheck is one session resumption attempt: a session (ticket) taken
// from one node and offered to another (or the same) node of one name.
type ResumeCheck struct {
	From, To string // host:port of the issuing and the resuming node
	// Version is tls.VersionTLS13 or tls.VersionTLS12.
	Version uint16
	// Issued: the issuing node handed out a session the client can offer.
	Issued bool
	// Resumed: the resuming node accepted it (an abbreviated handshake).
	Resumed bool
	// FromChain and ToChain are the chain fingerprints each node served on
	// its full handshake ("" when that handshake did not complete, or when
	// To resumed and so presented nothing).
	FromChain, ToChain string
	// Err is the first handshake error, if any.
	Err error
}

// sessionSlot is a client session cache holding the one session of a
// check; it records whether the server issued one.
type sessionSlot struct {
	mu sync.Mutex
	s  *tls.ClientSessionState
}

func (c *sessionSlot) Get(string) (*tls.ClientSessionState, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s, c.s != nil
}

func (c *sessionSlot) Put(_ string, s *tls.ClientSessionState) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s != nil {
		c.s = s
	}
}

func (c *sessionSlot) has() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.s != nil
}

// Resume takes a session from node `from` under profile p at version v and
// offers it to node `to`, both with serverName as SNI. The first handshake
// reads the server's post-handshake flight (TLS 1.3 tickets arrive after the
// handshake). Bounded by Options.Timeout and ctx. Ordinary probes never
// resume: only this check uses a session cache.
func (in *Inspector) Resume(ctx context.Context, p Profile, serverName, from, to string, v uint16) ResumeCheck {
	out := ResumeCheck{From: from, To: to, Version: v}
	ctx, cancel := context.WithTimeout(ctx, in.opts.Timeout)
	defer cancel()
	cfg := &tls.Config{MinVersion: v, MaxVersion: v}
	if p.TLS != nil {
		cfg.CipherSuites, cfg.CurvePreferences = p.TLS.CipherSuites, p.TLS.CurvePreferences
		cfg.Certificates, cfg.GetClientCertificate = p.TLS.Certificates, p.TLS.GetClientCertificate
	}
	slot := &sessionSlot{}
	cfg.ClientSessionCache = slot
	first := in.handshake(ctx, &Target{Endpoint: from}, serverName, cfg)
	if first.err != nil {
		out.Err = first.err
		return out
	}
	out.FromChain = ChainSHA256(first.state.PeerCertificates)
	if out.Issued = slot.has(); !out.Issued {
		return out
	}
	second := in.handshake(ctx, &Target{Endpoint: to}, serverName, cfg)
	if second.err != nil {
		out.Err = second.err
		return out
	}
	out.Resumed = second.state.DidResume
	if !out.Resumed {
		out.ToChain = ChainSHA256(second.state.PeerCertificates)
	}
	return out
}
