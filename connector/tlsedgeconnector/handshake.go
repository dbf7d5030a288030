package tlsedgeconnector

import (
	"strconv"
	"strings"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/certpulse/certpulse/internal/attrs"
)

// kind is what one log record is to the connector.
type kind uint8

const (
	kindUnparsed  kind = iota // no TLS fields: a line the proxy config could not parse
	kindHandshake             // a successful handshake's first record
	kindRequest               // a later request on a counted connection
	kindFailure               // a failed handshake
	kindOther                 // an error-log line not about a handshake
)

func (k kind) String() string {
	return [...]string{"unparsed", "handshake", "request", "failure", "other"}[k]
}

// handshake is one record in the normalized schema.
type handshake struct {
	proxy, node, listener, sni string
	service, env               string
	version, cipher, group     string
	resumed, early             bool
	failure                    string // the proxy's words
	reason                     attrs.Reason
	method, userAgent          string
	offeredCiphers             []string // IANA names, client order
	offeredGroups              []string // tlsprobe names, client order
	conn                       string
	connRequests               int // 0: not logged
	client                     string
}

// readRecord reads the attributes the configs in distributions/edge set.
// res is the record's resource (service.name, deployment.environment.name
// may come from there).
func readRecord(res, m pcommon.Map) handshake {
	g := func(k string) string {
		if v, ok := m.Get(k); ok {
			return v.AsString()
		}
		return ""
	}
	h := handshake{
		proxy:     g(attrs.EdgeProxy),
		node:      g(attrs.EdgeNode),
		listener:  g(attrs.EdgeListener),
		sni:       strings.ToLower(strings.TrimSuffix(dash(g(attrs.ServerAddress)), ".")),
		version:   versionName(g(attrs.TLSProtocolVersion)),
		cipher:    cipherName(g(attrs.TLSCipher)),
		group:     groupName(g(attrs.TLSCurve)),
		resumed:   truthy(g(attrs.TLSResumed)),
		early:     truthy(g(attrs.TLSEarlyData)),
		failure:   dash(g(attrs.EdgeTLSFailure)),
		method:    dash(g("http.request.method")),
		userAgent: dash(g("user_agent.original")),
		conn:      dash(g(attrs.EdgeConnection)),
		client:    dash(g("client.address")),
	}
	if h.cipher == "" {
		h.cipher = cipherName(g(attrs.TLSCipherSuiteID))
	}
	if n, err := strconv.Atoi(g(attrs.EdgeConnectionRequests)); err == nil {
		h.connRequests = n
	}
	for _, c := range splitList(g(attrs.EdgeClientCiphers)) {
		if n := cipherName(c); n != "" {
			h.offeredCiphers = append(h.offeredCiphers, n)
		}
	}
	for _, c := range splitList(g(attrs.EdgeClientGroups)) {
		if n := groupName(c); n != "" {
			h.offeredGroups = append(h.offeredGroups, n)
		}
	}
	if v, ok := res.Get(attrs.ServiceName); ok {
		h.service = v.AsString()
	} else {
		h.service = g(attrs.ServiceName)
	}
	if v, ok := res.Get(attrs.DeploymentEnv); ok {
		h.env = v.AsString()
	} else {
		h.env = g(attrs.DeploymentEnv)
	}
	if h.failure != "" {
		h.reason = reasonFor(h.failure)
	}
	return h
}

// classify says what a record is, before connection tracking.
func (h *handshake) classify() kind {
	switch {
	case h.failure != "":
		return kindFailure
	case h.version != "":
		return kindHandshake
	case h.proxy != "" && (h.conn != "" || h.listener != "" || h.method != ""):
		// Parsed, but no TLS: a plain-HTTP request or an error-log line
		// that is not about a handshake.
		return kindOther
	}
	return kindUnparsed
}

// reasonFor maps a proxy's handshake failure text (OpenSSL's reason
// string, an alert the client sent, Envoy's transport failure reason) to a
// certpulse reason code, as seen by clients.
func reasonFor(failure string) attrs.Reason {
	// BoringSSL (Envoy) writes NO_SHARED_CIPHER, TLSV1_ALERT_UNKNOWN_CA.
	f := strings.ReplaceAll(strings.ToLower(failure), "_", " ")
	switch {
	case strings.Contains(f, "no shared cipher"), strings.Contains(f, "no suitable key share"),
		strings.Contains(f, "no shared group"):
		return attrs.ReasonCipherMismatch
	case strings.Contains(f, "unsupported protocol"), strings.Contains(f, "version too low"),
		strings.Contains(f, "no protocols available"), strings.Contains(f, "protocol version"):
		return attrs.ReasonProtocolMismatch
	case strings.Contains(f, "unknown ca"):
		return attrs.ReasonUnknownCA
	case strings.Contains(f, "certificate expired"):
		return attrs.ReasonExpiredLeaf
	case strings.Contains(f, "certificate revoked"):
		return attrs.ReasonRevoked
	case strings.Contains(f, "timeout"), strings.Contains(f, "timed out"):
		return attrs.ReasonHandshakeTimeout
	case strings.Contains(f, "connection reset"), strings.Contains(f, "reset by peer"):
		return attrs.ReasonConnectionReset
	case strings.Contains(f, "http request"), strings.Contains(f, "plain http"),
		strings.Contains(f, "wrong version number"): // the first bytes are not a TLS record
		return attrs.ReasonNotTLS
	}
	return attrs.ReasonHandshakeFailure
}

// nonIdempotent: methods a server must not accept as replayable 0-RTT
// early data (RFC 8470; RFC 9110 section 9.2.2).
func nonIdempotent(method string) bool {
	switch strings.ToUpper(method) {
	case "", "GET", "HEAD", "OPTIONS", "TRACE", "PUT", "DELETE":
		return false
	}
	return true
}

// inferHRR: TLS 1.3 and the chosen group is not one the client sent a key
// share for. Clients send a share for their first group and, when the first
// is a hybrid post-quantum group (Chrome, Firefox, Go), for their first
// classical group too. ok is false when the proxy does not log both.
func inferHRR(h *handshake) (hrr, ok bool) {
	if h.version != "1.3" || h.group == "" || len(h.offeredGroups) == 0 {
		return false, false
	}
	if h.offeredGroups[0] == h.group {
		return false, true
	}
	if hybridGroup(h.offeredGroups[0]) {
		for _, g := range h.offeredGroups[1:] {
			if !hybridGroup(g) {
				return g != h.group, true
			}
		}
	}
	return true, true
}

func truthy(s string) bool {
	switch strings.ToLower(strings.TrimSpace(s)) {
	case "true", "1", "r", "yes", "on":
		return true
	}
	return false
}

func dash(s string) string {
	if s == "-" {
		return ""
	}
	return s
}

func splitList(s string) []string {
	s = dash(strings.TrimSpace(s))
	if s == "" {
		return nil
	}
	return strings.FieldsFunc(s, func(r rune) bool { return r == ':' || r == ',' || r == ' ' })
}
