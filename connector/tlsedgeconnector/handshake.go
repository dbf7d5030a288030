package tlsedgeconnector

import (
	"strconv"
	"strings"
	"time"

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
	method, userAgent, status  string
	offeredCiphers             []string // IANA names, client order
	offeredGroups              []string // tlsprobe names, client order
	conn                       string
	connRequests               int // 0: not logged
	client                     string
	// rawCiphers, rawGroups: the offers as logged, parsed by parseOffers
	// for the records that need them (a connection's handshake).
	rawCiphers, rawGroups string
	// time: the line's own time, as logged; fromBody: the fields came
	// from the JSON body (the logs output then sets the record's time).
	time     string
	fromBody bool
}

// parseOffers fills offeredCiphers and offeredGroups, without the GREASE
// values (RFC 8701) BoringSSL clients put first: they are no offer, and a
// GREASE group first would make every TLS 1.3 handshake look like an HRR.
func (h *handshake) parseOffers() {
	for _, c := range splitList(h.rawCiphers) {
		if isGREASE(c) {
			continue
		}
		if n := cipherName(c); n != "" {
			h.offeredCiphers = append(h.offeredCiphers, n)
		}
	}
	for _, c := range splitList(h.rawGroups) {
		if isGREASE(c) {
			continue
		}
		if n := groupName(c); n != "" {
			h.offeredGroups = append(h.offeredGroups, n)
		}
	}
}

// recordReader gathers one record's fields, from its attributes or, for
// the shipped JSON formats read without a parser operator, its body.
type recordReader struct {
	h                                              handshake
	requests, cipherID, ciphers, groups, connError string
	// format: a key of a log format was seen (not only the pipeline's
	// proxy, service and environment).
	format bool
}

func (r *recordReader) set(k, v string) {
	h := &r.h
	// The format's short keys (see shortKeys) and the schema's names in
	// one switch: a map lookup per key cost more than the rest of it.
	switch k {
	case attrs.EdgeProxy:
		h.proxy = v
	case attrs.ServiceName:
		h.service = v
	case attrs.DeploymentEnv:
		h.env = v
	case "time":
		h.time = v
	case "node", attrs.EdgeNode:
		h.node, r.format = v, true
	case "listener", attrs.EdgeListener:
		h.listener, r.format = v, true
	case "sni", attrs.ServerAddress:
		h.sni, r.format = v, true
	case "protocol", attrs.TLSProtocolVersion:
		h.version, r.format = versionName(v), true
	case "cipher", attrs.TLSCipher:
		h.cipher, r.format = cipherName(v), true
	case attrs.TLSCipherSuiteID:
		r.cipherID, r.format = v, true
	case "curve", attrs.TLSCurve:
		h.group = groupName(v)
	case "resumed", attrs.TLSResumed:
		h.resumed = truthy(v)
	case "early_data", attrs.TLSEarlyData:
		h.early = truthy(v)
	case "tls_failure", "failure", attrs.EdgeTLSFailure:
		h.failure, r.format = dash(v), true
	case "method", "http.request.method":
		h.method = dash(v)
	case "user_agent", "user_agent.original":
		h.userAgent = dash(v)
	case "connection", attrs.EdgeConnection:
		h.conn, r.format = dash(v), true
	case "connection_requests", attrs.EdgeConnectionRequests:
		r.requests = v
	case "client", "client.address":
		h.client = dash(v)
	case "status", "http.response.status_code":
		h.status = dash(v)
	case "ciphers", attrs.EdgeClientCiphers:
		r.ciphers = v
	case "curves", attrs.EdgeClientGroups:
		r.groups = v
	case "conn_error": // HAProxy's fc_err_str
		r.connError, r.format = dash(v), true
	}
}

// readRecord reads the attributes the configs in distributions/edge set
// and, when they hold no log format's keys and the body is a JSON object
// (the shipped nginx, HAProxy and Envoy overlays hand the line over as it
// is), the body's keys. res is the record's resource (service.name,
// deployment.environment.name may come from there).
func readRecord(res, m pcommon.Map, body pcommon.Value) handshake {
	var r recordReader
	// One pass over the attributes (a record has about 20). The keys of
	// the log formats in distributions/edge are read as they are (see
	// shortKeys): renaming them with one filelog operator each cost as much
	// CPU as parsing the JSON.
	m.Range(func(k string, v pcommon.Value) bool {
		r.set(k, v.AsString())
		return true
	})
	if !r.format && body.Type() == pcommon.ValueTypeStr {
		if line := body.Str(); strings.HasPrefix(line, "{") {
			saved := r
			if scanFlatJSON(line, r.set) != nil {
				r = saved // not a whole line of the format: unparsed
			} else {
				r.h.fromBody = true
			}
		}
	}
	h := r.h
	h.sni = dash(h.sni)
	if h.sni != "" {
		h.sni = strings.ToLower(strings.TrimSuffix(h.sni, "."))
	}
	if h.cipher == "" && r.cipherID != "" {
		h.cipher = cipherName(r.cipherID)
	}
	if n, err := strconv.Atoi(r.requests); err == nil {
		h.connRequests = n
	}
	h.rawCiphers, h.rawGroups = r.ciphers, r.groups
	if v, ok := res.Get(attrs.ServiceName); ok {
		h.service = v.AsString()
	}
	if v, ok := res.Get(attrs.DeploymentEnv); ok {
		h.env = v.AsString()
	}
	if h.failure == "" && r.connError != "" && h.version == "" {
		h.failure = r.connError
	}
	if h.failure != "" {
		h.reason = reasonFor(h.failure)
	}
	return h
}

// shortKeys maps the keys of the JSON log formats shipped in
// distributions/edge (nginx certpulse-tls.conf, HAProxy haproxy-log.cfg,
// Envoy access-log.yaml) to certpulse's schema. The logs output writes the
// schema names and drops these.
var shortKeys = map[string]string{
	"node":                attrs.EdgeNode,
	"listener":            attrs.EdgeListener,
	"client":              "client.address",
	"connection":          attrs.EdgeConnection,
	"connection_requests": attrs.EdgeConnectionRequests,
	"sni":                 attrs.ServerAddress,
	"protocol":            attrs.TLSProtocolVersion,
	"cipher":              attrs.TLSCipher,
	"curve":               attrs.TLSCurve,
	"curves":              attrs.EdgeClientGroups,
	"ciphers":             attrs.EdgeClientCiphers,
	"resumed":             attrs.TLSResumed,
	"early_data":          attrs.TLSEarlyData,
	"method":              "http.request.method",
	"status":              "http.response.status_code",
	"user_agent":          "user_agent.original",
	"tls_failure":         attrs.EdgeTLSFailure,
	"failure":             attrs.EdgeTLSFailure,
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

// lineTimeLayouts: the times the shipped formats write (nginx's
// $time_iso8601 and Envoy's START_TIME are RFC 3339; HAProxy's
// ltime(%Y-%m-%dT%H:%M:%S%z) has no colon in the offset).
var lineTimeLayouts = []string{time.RFC3339Nano, "2006-01-02T15:04:05-0700"}

// lineTime parses a line's own time; ok is false for a time in none of
// the layouts (the record keeps the time it was read).
func lineTime(s string) (time.Time, bool) {
	if s == "" || s == "-" {
		return time.Time{}, false
	}
	for _, l := range lineTimeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t, true
		}
	}
	return time.Time{}, false
}
