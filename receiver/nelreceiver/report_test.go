package nelreceiver

import (
	"strings"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

var testLimits = limits{maxReports: 100, maxField: 2048, maxAge: time.Hour}

// chromeReport is a report as Chromium 156 sends it.
const chromeReport = `{"age":12,"body":{"elapsed_time":31,"method":"GET","phase":"connection","protocol":"","referrer":"https://app.test/account/42","sampling_fraction":1.0,"server_ip":"127.0.0.1","status_code":0,"type":"tls.cert.date_invalid"},"type":"network-error","url":"https://app.test:8443/account/42?token=x#top","user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.0.0 Safari/537.36"}`

func TestParseReport(t *testing.T) {
	rs, os, err := parseBatch([]byte("["+chromeReport+"]"), testLimits)
	if err != nil || len(rs) != 1 || os[0] != "" {
		t.Fatalf("parseBatch: %v %v", err, os)
	}
	r := rs[0]
	if r.Host != "app.test" || r.Port != 8443 || r.Scheme != "https" || r.Type != "tls.cert.date_invalid" || r.Phase != "connection" ||
		r.ServerIP != "127.0.0.1" || r.Method != "GET" || r.Elapsed != 31 || r.Age != 12*time.Millisecond || r.Sampling != 1 ||
		r.Client.String() != "chrome 156" {
		t.Fatalf("report = %+v", r)
	}
	if strings.Contains(r.key, "#top") || !strings.Contains(r.key, "token=x") {
		t.Fatalf("dedup key %q: the url without its fragment", r.key)
	}
}

func TestParseReportOutcomes(t *testing.T) {
	base := func(body string) string {
		return `{"type":"network-error","url":"https://app.test/","age":0,"body":` + body + `}`
	}
	for _, c := range []struct {
		name, report string
		want         outcome
	}{
		{"valid", base(`{"type":"tls.cert.authority_invalid","phase":"connection"}`), ""},
		{"other report type", `{"type":"csp-violation","url":"https://app.test/","body":{}}`, outcomeOtherType},
		{"no body", `{"type":"network-error","url":"https://app.test/"}`, outcomeInvalid},
		{"no nel type", base(`{"phase":"connection"}`), outcomeInvalid},
		{"junk nel type", base(`{"type":"tls.cert.<script>"}`), outcomeInvalid},
		{"bad phase", base(`{"type":"tls.failed","phase":"later"}`), outcomeInvalid},
		{"bad url", `{"type":"network-error","url":"ftp://app.test/","body":{"type":"tls.failed"}}`, outcomeInvalid},
		{"no host", `{"type":"network-error","url":"https:///x","body":{"type":"tls.failed"}}`, outcomeInvalid},
		{"bad port", `{"type":"network-error","url":"https://app.test:0/","body":{"type":"tls.failed"}}`, outcomeInvalid},
		{"bad server ip", base(`{"type":"tls.failed","server_ip":"evil"}`), outcomeInvalid},
		{"negative age", `{"type":"network-error","url":"https://app.test/","age":-1,"body":{"type":"tls.failed"}}`, outcomeInvalid},
		{"stale", `{"type":"network-error","url":"https://app.test/","age":7200000,"body":{"type":"tls.failed"}}`, outcomeStale},
		{"age not a number", `{"type":"network-error","url":"https://app.test/","age":"soon","body":{"type":"tls.failed"}}`, outcomeInvalid},
		{"sampling above 1", base(`{"type":"tls.failed","sampling_fraction":2}`), outcomeInvalid},
		{"status 1000", base(`{"type":"ok","status_code":1000}`), outcomeInvalid},
		{"long url", `{"type":"network-error","url":"https://app.test/` + strings.Repeat("a", 3000) + `","body":{"type":"tls.failed"}}`, outcomeInvalid},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, os, err := parseBatch([]byte("["+c.report+"]"), testLimits)
			if err != nil {
				t.Fatal(err)
			}
			if os[0] != c.want {
				t.Fatalf("outcome %q, want %q", os[0], c.want)
			}
		})
	}
}

func TestParseBatchErrors(t *testing.T) {
	for _, c := range []struct{ name, body, want string }{
		{"not json", `{`, "JSON array"},
		{"an object", `{"type":"network-error"}`, "JSON array"},
		{"array of strings", `["x"]`, "not an object"},
		{"too many", "[" + strings.Repeat(`{},`, 100) + "{}]", "max_reports_per_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			_, _, err := parseBatch([]byte(c.body), testLimits)
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestReasonOf(t *testing.T) {
	for _, c := range []struct {
		typ  string
		want attrs.Reason
	}{
		{"ok", attrs.ReasonOK},
		{"tls.cert.date_invalid", attrs.ReasonExpiredLeaf},
		{"tls.cert.authority_invalid", attrs.ReasonUnknownCA},
		{"tls.cert.name_invalid", attrs.ReasonHostnameMismatch},
		{"tls.cert.revoked", attrs.ReasonRevoked},
		{"tls.cert.pinned_key_not_in_cert_chain", attrs.ReasonPinMismatch},
		{"tls.version_or_cipher_mismatch", attrs.ReasonProtocolMismatch},
		{"tls.something_new", attrs.ReasonHandshakeFailure},
		{"tcp.refused", attrs.ReasonConnectionRefused},
		{"tcp.timed_out", attrs.ReasonHandshakeTimeout},
		{"dns.name_not_resolved", attrs.ReasonDNSFailure},
		{"http.error", ""},
		{"abandoned", ""},
	} {
		if got := reasonOf(c.typ); got != c.want {
			t.Errorf("reasonOf(%q) = %q, want %q", c.typ, got, c.want)
		}
	}
	for typ, r := range nelReasons {
		if _, ok := attrs.Info(r); !ok {
			t.Errorf("%s maps to %q, not a reason code", typ, r)
		}
	}
}

func TestKnownType(t *testing.T) {
	for in, want := range map[string]string{
		"tls.cert.date_invalid": "tls.cert.date_invalid", "http.error": "http.error", "ok": "ok",
		"tls.cert.new_thing": "tls.other", "tcp.x": "tcp.other", "dns.y": "dns.other", "http.z": "http.other", "zzz": "other",
	} {
		if got := knownType(in); got != want {
			t.Errorf("knownType(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestRepeats(t *testing.T) {
	t0 := time.Unix(1000, 0)
	r := newRepeats(30*time.Second, 2)
	if r.check(1, t0) || !r.check(1, t0.Add(time.Second)) || !r.check(1, t0.Add(5*time.Second)) {
		t.Fatal("a repeat within the window is a repeat")
	}
	if r.check(1, t0.Add(31*time.Second)) {
		t.Fatal("after the window it counts again")
	}
	r.check(2, t0.Add(32*time.Second))
	r.check(3, t0.Add(33*time.Second)) // bound 2: the oldest (1) forgotten
	if r.check(1, t0.Add(34*time.Second)) {
		t.Fatal("the oldest entry is forgotten first when full")
	}
	r.forget(3)
	if r.check(3, t0.Add(35*time.Second)) {
		t.Fatal("a forgotten key (refused by the pipeline) is no repeat")
	}
}

func TestRateLimiter(t *testing.T) {
	t0 := time.Unix(1000, 0)
	l := newRateLimiter(1, 3, 2)
	for i := 0; i < 3; i++ {
		if !l.allow("a", t0) {
			t.Fatalf("request %d within the burst refused", i)
		}
	}
	if l.allow("a", t0) {
		t.Fatal("beyond the burst allowed")
	}
	if !l.allow("a", t0.Add(1100*time.Millisecond)) {
		t.Fatal("a token refilled after a second")
	}
	for i := 0; i < 3; i++ {
		if !l.allow("b", t0.Add(time.Second)) {
			t.Fatal("another client has its own bucket")
		}
	}
	if l.allow("c", t0.Add(1200*time.Millisecond)) {
		t.Fatal("all tracked clients busy: a new one is refused")
	}
	if !l.allow("c", t0.Add(10*time.Second)) {
		t.Fatal("idle clients are forgotten to make room")
	}
}
