package nelreceiver // import "github.com/certpulse/certpulse/receiver/nelreceiver"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"net"
	"net/url"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/certpulse/certpulse/internal/useragent"
)

// report is one network-error report as certpulse keeps it: the origin,
// never the path, query or referrer (they can name a user); the user
// agent reduced to a family and major version.
type report struct {
	Scheme string
	Host   string
	Port   int64
	// key identifies the request for dedup (url, type, phase); it is
	// hashed with the client's address and never stored.
	key      string
	Age      time.Duration
	Type     string
	Phase    string
	ServerIP string
	Protocol string
	Method   string
	Status   int64
	Elapsed  int64
	Sampling float64
	Client   useragent.Client
}

// wireReport is a Reporting API v0 report (the `application/reports+json`
// array's elements).
type wireReport struct {
	Age       json.Number `json:"age"`
	Type      string      `json:"type"`
	URL       string      `json:"url"`
	UserAgent string      `json:"user_agent"`
	Body      *struct {
		Phase            string      `json:"phase"`
		Type             string      `json:"type"`
		ServerIP         string      `json:"server_ip"`
		Protocol         string      `json:"protocol"`
		Method           string      `json:"method"`
		StatusCode       json.Number `json:"status_code"`
		ElapsedTime      json.Number `json:"elapsed_time"`
		SamplingFraction json.Number `json:"sampling_fraction"`
		Referrer         string      `json:"referrer"`
	} `json:"body"`
}

// outcome of one report (the nel_reports telemetry attribute).
type outcome string

const (
	outcomeAccepted    outcome = "accepted"
	outcomeDuplicate   outcome = "duplicate"
	outcomeUnknownHost outcome = "unknown_host"
	outcomeInvalid     outcome = "invalid"
	outcomeStale       outcome = "stale"
	outcomeOtherType   outcome = "other_type"
	outcomeRefused     outcome = "refused"
)

// errBatch: the body is not a JSON array of objects.
var errBatch = errors.New("the body must be a JSON array of report objects (application/reports+json)")

// errTooMany: more reports than max_reports_per_request.
type errTooMany struct{ n, limit int }

func (e errTooMany) Error() string {
	return fmt.Sprintf("%d reports in one request, more than max_reports_per_request (%d)", e.n, e.limit)
}

// limits bound what one report may hold.
type limits struct {
	maxReports int
	maxField   int
	maxAge     time.Duration
}

// parseBatch reads a request body. A body that is not an array of objects,
// or holds more than maxReports, is an error (the request is refused);
// otherwise each element is judged alone: reports[i] is valid when
// outcomes[i] is "" (accepted so far), else why it is not.
func parseBatch(body []byte, lim limits) ([]report, []outcome, error) {
	var raw []json.RawMessage
	if err := json.Unmarshal(body, &raw); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", errBatch, err)
	}
	if len(raw) > lim.maxReports {
		return nil, nil, errTooMany{len(raw), lim.maxReports}
	}
	reports := make([]report, len(raw))
	outcomes := make([]outcome, len(raw))
	for i, m := range raw {
		if len(m) == 0 || m[0] != '{' {
			return nil, nil, fmt.Errorf("%w: element %d is not an object", errBatch, i)
		}
		reports[i], outcomes[i] = parseReport(m, lim)
	}
	return reports, outcomes, nil
}

func parseReport(m []byte, lim limits) (report, outcome) {
	var w wireReport
	d := json.NewDecoder(bytes.NewReader(m))
	d.UseNumber()
	if err := d.Decode(&w); err != nil {
		return report{}, outcomeInvalid
	}
	if w.Type != "network-error" {
		return report{}, outcomeOtherType
	}
	if w.Body == nil || len(w.URL) > lim.maxField || !utf8.ValidString(w.URL) {
		return report{}, outcomeInvalid
	}
	b := w.Body
	for _, s := range []string{b.Phase, b.Type, b.ServerIP, b.Protocol, b.Method} {
		if len(s) > lim.maxField || !utf8.ValidString(s) {
			return report{}, outcomeInvalid
		}
	}
	if b.Type == "" || len(b.Type) > maxTypeLength || !token(b.Type) {
		return report{}, outcomeInvalid
	}
	u, err := url.Parse(w.URL)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Hostname() == "" {
		return report{}, outcomeInvalid
	}
	r := report{Scheme: u.Scheme, Host: strings.ToLower(strings.TrimSuffix(u.Hostname(), ".")), Type: knownType(b.Type)}
	r.Port = 443
	if u.Scheme == "http" {
		r.Port = 80
	}
	if p := u.Port(); p != "" {
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return report{}, outcomeInvalid
		}
		r.Port = int64(n)
	}
	// The dedup key: the url without its fragment, the type and phase.
	u.Fragment, u.RawFragment = "", ""
	r.key = u.String() + "\x00" + b.Type + "\x00" + b.Phase
	switch b.Phase {
	case "dns", "connection", "application", "":
		r.Phase = b.Phase
	default:
		return report{}, outcomeInvalid
	}
	if ip := net.ParseIP(b.ServerIP); ip != nil {
		r.ServerIP = ip.String()
	} else if b.ServerIP != "" {
		return report{}, outcomeInvalid
	}
	if token(b.Protocol) {
		r.Protocol = b.Protocol
	}
	if token(b.Method) {
		r.Method = strings.ToUpper(b.Method)
	}
	age, ok := nonNegInt(w.Age)
	if !ok {
		return report{}, outcomeInvalid
	}
	r.Age = time.Duration(age) * time.Millisecond
	if r.Age > lim.maxAge {
		return report{}, outcomeStale
	}
	if r.Status, ok = nonNegInt(b.StatusCode); !ok || r.Status > 999 {
		return report{}, outcomeInvalid
	}
	if r.Elapsed, ok = nonNegInt(b.ElapsedTime); !ok {
		return report{}, outcomeInvalid
	}
	if b.SamplingFraction != "" {
		f, err := b.SamplingFraction.Float64()
		if err != nil || math.IsNaN(f) || f < 0 || f > 1 {
			return report{}, outcomeInvalid
		}
		r.Sampling = f
	}
	r.Client = useragent.Parse(w.UserAgent)
	return r, ""
}

// nonNegInt reads an optional non-negative integer (milliseconds, a
// status); a fraction is cut, as browsers send whole numbers.
func nonNegInt(n json.Number) (int64, bool) {
	if n == "" {
		return 0, true
	}
	f, err := n.Float64()
	if err != nil || math.IsNaN(f) || f < 0 || f > 1<<53 {
		return 0, false
	}
	return int64(f), true
}

// token: ASCII letters, digits and ".-_/" only (NEL types, ALPN ids,
// methods), so nothing else reaches an attribute a label may come from.
func token(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '-' || c == '_' || c == '/') {
			return false
		}
	}
	return true
}
