package tlsinspect

import (
	"bufio"
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// handshakeOutcome is what one TCP connect plus TLS handshake produced.
type handshakeOutcome struct {
	connect   time.Duration
	handshake time.Duration
	peer      net.Addr
	state     *tls.ConnectionState
	err       error
	// phase is "connect", "starttls" or "handshake": where err happened.
	phase string
	// sentCert is true when the profile offers a client certificate.
	sentCert bool
	// asked: the server sent a CertificateRequest (Go calls
	// GetClientCertificate only then).
	asked bool
	// grace is how long the post-handshake read waited (TLS 1.3, when a
	// certificate was asked for): not part of any reported duration.
	grace time.Duration
	// presented is the server's chain as it arrived, captured in the
	// verification callback: known even when the handshake fails after it
	// (Go refusing the server's key during the key exchange).
	presented []*x509.Certificate
	// version and cipher are what the server chose, known once its
	// certificate arrived even when the handshake fails after it.
	version, cipher uint16
}

// postHandshakeError is an alert the server sent right after a TLS 1.3
// handshake the client had already completed (certificate_required, or a
// client certificate rejected). state still holds what the server presented.
type postHandshakeError struct{ err error }

func (e *postHandshakeError) Error() string { return e.err.Error() }
func (e *postHandshakeError) Unwrap() error { return e.err }

// Bounds on the read after a TLS 1.3 handshake: twice the handshake time
// (about four round trips), within these limits and the probe deadline.
const (
	minPostHandshakeGrace = 50 * time.Millisecond
	maxPostHandshakeGrace = 500 * time.Millisecond
)

// handshake dials target and runs one TLS handshake with cfg. It never
// verifies: the chain is captured as presented and validated afterwards.
func (in *Inspector) handshake(ctx context.Context, t *Target, serverName string, cfg *tls.Config) handshakeOutcome {
	var out handshakeOutcome
	start := time.Now()
	conn, err := in.dialer.DialContext(ctx, "tcp", t.Endpoint)
	out.connect = time.Since(start)
	if err != nil {
		out.err, out.phase = err, "connect"
		return out
	}
	defer conn.Close()
	out.peer = conn.RemoteAddr()
	if dl, ok := ctx.Deadline(); ok {
		_ = conn.SetDeadline(dl)
	}
	// Close the connection when ctx is cancelled so no read blocks past it.
	stop := context.AfterFunc(ctx, func() { _ = conn.SetDeadline(time.Unix(1, 0)) })
	defer stop()

	hsStart := time.Now()
	if t.StartTLS != "" {
		if err := startTLS(conn, t.StartTLS); err != nil {
			out.handshake = time.Since(hsStart)
			out.err, out.phase = err, "starttls"
			return out
		}
	}
	c := cfg.Clone()
	out.sentCert = len(c.Certificates) > 0 || c.GetClientCertificate != nil
	c.GetClientCertificate = askedFor(c, &out.asked)
	c.ServerName = serverName
	c.InsecureSkipVerify = true // validated afterwards, per profile
	c.VerifyPeerCertificate = func(raw [][]byte, _ [][]*x509.Certificate) error {
		for _, b := range raw {
			if cert, err := x509.ParseCertificate(b); err == nil {
				out.presented = append(out.presented, cert)
			}
		}
		return nil
	}
	c.VerifyConnection = func(st tls.ConnectionState) error {
		out.version, out.cipher = st.Version, st.CipherSuite
		return nil
	}
	tc := tls.Client(conn, c)
	err = tc.HandshakeContext(ctx)
	out.handshake = time.Since(hsStart)
	if err != nil {
		out.err, out.phase = err, "handshake"
		return out
	}
	st := tc.ConnectionState()
	out.state = &st
	// Under TLS 1.3 the client finishes before the server has seen its
	// certificate (or its lack of one): when the server asked for one, read
	// the server's first flight so that a certificate_required or
	// bad_certificate alert is not mistaken for success. A server that
	// asked for none cannot refuse for that reason: no wait.
	if st.Version == tls.VersionTLS13 && out.asked {
		graceStart := time.Now()
		if err := readPostHandshake(ctx, tc, out.handshake); err != nil {
			out.err, out.phase = &postHandshakeError{err}, "handshake"
		}
		out.grace = time.Since(graceStart)
	}
	return out
}

// askedFor returns a GetClientCertificate that records that the server
// asked for a certificate and answers as c would have: its own callback,
// or else the first of c.Certificates the request supports (Go's own
// choice), or none.
func askedFor(c *tls.Config, asked *bool) func(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	get, certs := c.GetClientCertificate, c.Certificates
	return func(cri *tls.CertificateRequestInfo) (*tls.Certificate, error) {
		*asked = true
		if get != nil {
			return get(cri)
		}
		for i := range certs {
			if cri.SupportsCertificate(&certs[i]) == nil {
				return &certs[i], nil
			}
		}
		return new(tls.Certificate), nil
	}
}

// readPostHandshake reads until the server's post-handshake flight (session
// tickets) is processed or a short grace passes; it returns the server's
// alert, or nil when none came (a timeout, or a clean close).
func readPostHandshake(ctx context.Context, tc *tls.Conn, hs time.Duration) error {
	deadline := time.Now().Add(min(max(2*hs, minPostHandshakeGrace), maxPostHandshakeGrace))
	if dl, ok := ctx.Deadline(); ok && dl.Before(deadline) {
		deadline = dl
	}
	_ = tc.SetReadDeadline(deadline)
	var b [1]byte
	_, err := tc.Read(b[:])
	if err == nil || isTimeout(err) || errors.Is(err, io.EOF) || ctx.Err() != nil {
		return nil
	}
	return err
}

// startTLS runs the plaintext part of a STARTTLS upgrade.
func startTLS(conn net.Conn, proto string) error {
	switch proto {
	case "smtp":
		return startTLSSMTP(conn)
	default:
		return fmt.Errorf("unsupported starttls protocol %q", proto)
	}
}

const maxSMTPLines = 64

func startTLSSMTP(conn net.Conn) error {
	r := bufio.NewReaderSize(conn, 1024)
	readReply := func(want string) ([]string, error) {
		var lines []string
		for i := 0; i < maxSMTPLines; i++ {
			line, err := r.ReadSlice('\n')
			if err != nil {
				if errors.Is(err, bufio.ErrBufferFull) {
					return nil, errors.New("smtp: reply line too long")
				}
				return nil, err
			}
			s := strings.TrimRight(string(line), "\r\n")
			if len(s) < 3 || s[:3] != want {
				return nil, fmt.Errorf("smtp: expected %s, got %q", want, truncate(s, 80))
			}
			lines = append(lines, s)
			if len(s) == 3 || s[3] == ' ' {
				return lines, nil
			}
		}
		return nil, errors.New("smtp: reply has too many lines")
	}
	if _, err := readReply("220"); err != nil {
		return err
	}
	if _, err := io.WriteString(conn, "EHLO certpulse.probe\r\n"); err != nil {
		return err
	}
	ehlo, err := readReply("250")
	if err != nil {
		return err
	}
	offered := false
	for _, l := range ehlo {
		if len(l) > 4 && strings.EqualFold(strings.TrimSpace(l[4:]), "STARTTLS") {
			offered = true
		}
	}
	if !offered {
		return errors.New("smtp: server does not offer STARTTLS")
	}
	if _, err := io.WriteString(conn, "STARTTLS\r\n"); err != nil {
		return err
	}
	if _, err := readReply("220"); err != nil {
		return err
	}
	if r.Buffered() > 0 {
		return errors.New("smtp: unexpected data after STARTTLS reply")
	}
	return nil
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "..."
}

// classifyHandshakeError maps a connect/STARTTLS/handshake error to a reason;
// sentCert says whether the profile offered a client certificate.
func classifyHandshakeError(phase string, err error, sentCert bool) Finding {
	var dnsErr *net.DNSError
	var rhe tls.RecordHeaderError
	var certErr *tls.CertificateVerificationError
	msg := err.Error()
	switch {
	case errors.As(err, &dnsErr):
		return Finding{attrs.ReasonDNSFailure, fmt.Sprintf("DNS lookup of %s failed: %v", dnsErr.Name, dnsErr.Err)}
	case errors.Is(err, syscall.ECONNREFUSED):
		return Finding{attrs.ReasonConnectionRefused, "connection refused: nothing listens on the port"}
	case isTimeout(err) && phase == "connect":
		return Finding{attrs.ReasonHandshakeTimeout, "TCP connect timed out"}
	case isTimeout(err):
		return Finding{attrs.ReasonHandshakeTimeout, "server accepted the connection but did not complete the " + phaseName(phase) + " in time"}
	case errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE):
		return Finding{attrs.ReasonConnectionReset, "connection reset by the server during the " + phaseName(phase)}
	case errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF):
		return Finding{attrs.ReasonConnectionReset, "server closed the connection during the " + phaseName(phase)}
	case errors.As(err, &rhe):
		return Finding{attrs.ReasonNotTLS, "the port does not speak TLS (" + describeNonTLS(rhe) + ")"}
	case phase == "starttls":
		return Finding{attrs.ReasonNotTLS, "STARTTLS upgrade failed: " + msg}
	case errors.As(err, &certErr):
		return Finding{attrs.ReasonHandshakeFailure, msg}
	}
	switch {
	case strings.Contains(msg, "protocol version not supported"),
		strings.Contains(msg, "server selected unsupported protocol version"),
		strings.Contains(msg, "no supported versions"):
		return Finding{attrs.ReasonProtocolMismatch, "no TLS version in common with the server: " + msg}
	case strings.Contains(msg, "insufficient security"),
		strings.Contains(msg, "unconfigured cipher suite"),
		strings.Contains(msg, "no cipher suite supported"):
		return Finding{attrs.ReasonCipherMismatch, "no cipher suite in common with the server: " + msg}
	case !sentCert && (strings.Contains(msg, "certificate required") || strings.Contains(msg, "bad certificate")):
		return Finding{attrs.ReasonHandshakeFailure, "server requires a client certificate; this profile sends none (" + msg + ")"}
	case strings.Contains(msg, "certificate required"), strings.Contains(msg, "bad certificate"), strings.Contains(msg, "unknown certificate authority"):
		return Finding{attrs.ReasonHandshakeFailure, "server rejected this profile's client certificate: " + msg}
	case strings.Contains(msg, "exceeds maximum"):
		return Finding{attrs.ReasonHandshakeFailure, "server sent an oversized handshake message: " + msg}
	}
	return Finding{attrs.ReasonHandshakeFailure, "TLS handshake failed: " + msg}
}

func phaseName(phase string) string {
	switch phase {
	case "starttls":
		return "STARTTLS exchange"
	case "connect":
		return "TCP connect"
	}
	return "TLS handshake"
}

func describeNonTLS(rhe tls.RecordHeaderError) string {
	h := rhe.RecordHeader[:]
	if strings.HasPrefix(string(h), "HTTP/") || strings.HasPrefix(string(h), "<") {
		return "it answered with plain HTTP"
	}
	if h[0] >= 0x20 && h[0] < 0x7f {
		return fmt.Sprintf("it answered in plain text %q", string(h))
	}
	return fmt.Sprintf("first bytes % x", h)
}

// splitHostPort splits endpoint; the port must be numeric.
func splitHostPort(endpoint string) (string, int, error) {
	host, p, err := net.SplitHostPort(endpoint)
	if err != nil {
		return "", 0, err
	}
	port, err := strconv.Atoi(p)
	if err != nil || port <= 0 || port > 65535 {
		return "", 0, fmt.Errorf("bad port %q in %q", p, endpoint)
	}
	return host, port, nil
}

// permissiveConfig offers every version and cipher Go can speak, to capture
// the chain (and learn what the server does speak) after a profile's own
// handshake failed on version or cipher.
func permissiveConfig(base *tls.Config) *tls.Config {
	c := &tls.Config{MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS13}
	for _, cs := range tls.CipherSuites() {
		c.CipherSuites = append(c.CipherSuites, cs.ID)
	}
	for _, cs := range tls.InsecureCipherSuites() {
		c.CipherSuites = append(c.CipherSuites, cs.ID)
	}
	if base != nil {
		c.Certificates = base.Certificates
	}
	return c
}

func versionName(v uint16) string {
	switch v {
	case tls.VersionTLS10:
		return "1.0"
	case tls.VersionTLS11:
		return "1.1"
	case tls.VersionTLS12:
		return "1.2"
	case tls.VersionTLS13:
		return "1.3"
	case 0:
		return ""
	}
	return fmt.Sprintf("0x%04x", v)
}

// VersionName returns the tls.protocol.version value for v ("1.2").
func VersionName(v uint16) string { return versionName(v) }
