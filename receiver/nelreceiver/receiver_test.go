package nelreceiver

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/receiver/nelreceiver/internal/metadata"
)

func testConfig() *Config {
	cfg := createDefaultConfig()
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Services = []ServiceConfig{{Name: "app", ServerNames: []string{"app.test", "*.app.test"}, Environment: "prod", Criticality: "high"}}
	return cfg
}

// start runs the receiver into next and returns its URL.
func start(t *testing.T, cfg *Config, next consumer.Logs) (*nelReceiver, string) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r, "http://" + r.addr + cfg.Path
}

func send(t *testing.T, method, u, origin, ctype, body string) (*http.Response, string) {
	t.Helper()
	req, err := http.NewRequest(method, u, strings.NewReader(body))
	require.NoError(t, err)
	if origin != "" {
		req.Header.Set("Origin", origin)
	}
	if ctype != "" {
		req.Header.Set("Content-Type", ctype)
	}
	if method == http.MethodOptions {
		req.Header.Set("Access-Control-Request-Method", "POST")
		req.Header.Set("Access-Control-Request-Headers", "content-type")
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	return resp, string(b)
}

const reportsType = "application/reports+json"

func TestPreflight(t *testing.T) {
	_, u := start(t, testConfig(), new(consumertest.LogsSink))
	resp, _ := send(t, http.MethodOptions, u, "https://www.app.test", "", "")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "https://www.app.test", resp.Header.Get("Access-Control-Allow-Origin"))
	require.Contains(t, resp.Header.Get("Access-Control-Allow-Methods"), "POST")
	require.Contains(t, strings.ToLower(resp.Header.Get("Access-Control-Allow-Headers")), "content-type")

	resp, body := send(t, http.MethodOptions, u, "https://evil.test", "", "")
	require.Equal(t, http.StatusForbidden, resp.StatusCode)
	require.Contains(t, body, "not an origin of a configured service")
	require.Empty(t, resp.Header.Get("Access-Control-Allow-Origin"))
}

func TestReportsBecomeRecords(t *testing.T) {
	sink := new(consumertest.LogsSink)
	_, u := start(t, testConfig(), sink)
	batch := "[" + chromeReport + "," +
		`{"age":0,"type":"network-error","url":"https://other.test/","user_agent":"curl/8.5.0","body":{"type":"tls.failed"}},` +
		`{"age":0,"type":"deprecation","url":"https://app.test/","body":{}},` +
		`{"age":0,"type":"network-error","url":"https://app.test/","user_agent":"Mozilla/5.0 Firefox/128.0","body":{"type":"ok","phase":"application","status_code":200,"sampling_fraction":0.01}}` + "]"
	resp, body := send(t, http.MethodPost, u, "https://app.test", reportsType, batch)
	require.Equal(t, http.StatusNoContent, resp.StatusCode, body)
	require.Equal(t, "https://app.test", resp.Header.Get("Access-Control-Allow-Origin"))
	recs := records(sink)
	require.Len(t, recs, 2, "the unknown host and the other report type are not records")

	lr, res := recs[0].rec, recs[0].res
	require.Equal(t, attrs.EventNELReport, lr.EventName())
	require.Equal(t, "app", get(res, attrs.ServiceName))
	require.Equal(t, "prod", get(res, attrs.DeploymentEnv))
	a := lr.Attributes()
	for k, want := range map[string]string{
		attrs.ServerAddress: "app.test", attrs.ServerPort: "8443", attrs.NELType: "tls.cert.date_invalid",
		attrs.ReasonKey: "expired_leaf", attrs.ReasonSideKey: "server", attrs.NELPhase: "connection",
		attrs.NetworkPeerAddress: "127.0.0.1", attrs.UserAgentName: "chrome", attrs.UserAgentVersion: "156",
		attrs.ClientsFailing: "chrome", attrs.HTTPMethod: "GET", attrs.URLScheme: "https",
	} {
		require.Equal(t, want, get(a, k), k)
	}
	for _, k := range []string{attrs.ClientAddress, "url.full", "url.path"} {
		_, ok := a.Get(k)
		require.False(t, ok, "%s stored", k)
	}
	require.NotContains(t, lr.Body().AsString(), "account/42", "no path, query or referrer is kept")
	require.WithinDuration(t, time.Now().Add(-12*time.Millisecond), lr.Timestamp().AsTime(), 2*time.Second)

	ok := recs[1].rec.Attributes()
	require.Equal(t, "ok", get(ok, attrs.ReasonKey))
	_, failing := ok.Get(attrs.ClientsFailing)
	require.False(t, failing, "a success report names no failing client")
}

func TestRepeatedReportCountedOnce(t *testing.T) {
	sink := new(consumertest.LogsSink)
	_, u := start(t, testConfig(), sink)
	for range 3 { // Chromium's own reloads of the error page
		resp, body := send(t, http.MethodPost, u, "https://app.test", reportsType, "["+chromeReport+"]")
		require.Equal(t, http.StatusNoContent, resp.StatusCode, body)
	}
	require.Len(t, records(sink), 1)
	other := strings.Replace(chromeReport, "tls.cert.date_invalid", "tls.cert.authority_invalid", 1)
	resp, _ := send(t, http.MethodPost, u, "https://app.test", reportsType, "["+other+"]")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Len(t, records(sink), 2, "another type is another report")
}

func TestBadRequests(t *testing.T) {
	cfg := testConfig()
	cfg.MaxRequestBodySize = 4096
	cfg.MaxReportsPerRequest = 2
	_, u := start(t, cfg, new(consumertest.LogsSink))
	for _, c := range []struct {
		name, method, origin, ctype, body string
		status                            int
		says                              string
	}{
		{"get", http.MethodGet, "", "", "", http.StatusMethodNotAllowed, "use POST"},
		{"foreign origin", http.MethodPost, "https://evil.test", reportsType, "[]", http.StatusForbidden, "not an origin"},
		{"content type", http.MethodPost, "", "text/plain", "[]", http.StatusUnsupportedMediaType, "application/reports+json"},
		{"malformed", http.MethodPost, "", reportsType, "[{", http.StatusBadRequest, "JSON array"},
		{"too large", http.MethodPost, "", reportsType, "[" + strings.Repeat(" ", 5000) + "]", http.StatusRequestEntityTooLarge, "max_request_body_size"},
		{"too many", http.MethodPost, "", reportsType, "[{},{},{}]", http.StatusRequestEntityTooLarge, "max_reports_per_request"},
	} {
		t.Run(c.name, func(t *testing.T) {
			resp, body := send(t, c.method, u, c.origin, c.ctype, c.body)
			require.Equal(t, c.status, resp.StatusCode, body)
			require.Contains(t, body, c.says)
		})
	}
}

func TestRateLimited(t *testing.T) {
	cfg := testConfig()
	cfg.RateLimit = RateLimitConfig{RequestsPerSecond: 0.001, Burst: 2, MaxClients: 10}
	_, u := start(t, cfg, new(consumertest.LogsSink))
	for i := range 2 {
		resp, _ := send(t, http.MethodPost, u, "", reportsType, "[]")
		require.Equal(t, http.StatusNoContent, resp.StatusCode, "request %d", i)
	}
	resp, body := send(t, http.MethodPost, u, "", reportsType, "[]")
	require.Equal(t, http.StatusTooManyRequests, resp.StatusCode, body)
	require.NotEmpty(t, resp.Header.Get("Retry-After"))
}

// refusing fails the first n batches.
type refusing struct {
	consumertest.LogsSink
	n int
}

func (r *refusing) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if r.n > 0 {
		r.n--
		return errors.New("queue full")
	}
	return r.LogsSink.ConsumeLogs(ctx, ld)
}

func TestPipelineRefusalIsRetried(t *testing.T) {
	next := &refusing{n: 1}
	_, u := start(t, testConfig(), next)
	resp, body := send(t, http.MethodPost, u, "https://app.test", reportsType, "["+chromeReport+"]")
	require.Equal(t, http.StatusServiceUnavailable, resp.StatusCode, body)
	resp, body = send(t, http.MethodPost, u, "https://app.test", reportsType, "["+chromeReport+"]")
	require.Equal(t, http.StatusNoContent, resp.StatusCode, body)
	require.Len(t, records(&next.LogsSink), 1, "the retry of a refused report is no repeat")
}

func TestIncludeClientAddress(t *testing.T) {
	cfg := testConfig()
	cfg.IncludeClientAddress = true
	sink := new(consumertest.LogsSink)
	_, u := start(t, cfg, sink)
	resp, _ := send(t, http.MethodPost, u, "", reportsType, "["+chromeReport+"]")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	require.Equal(t, "127.0.0.1", get(records(sink)[0].rec.Attributes(), attrs.ClientAddress))
}

type resRec struct {
	res pcommon.Map
	rec plog.LogRecord
}

func records(sink *consumertest.LogsSink) []resRec {
	var out []resRec
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			for j := 0; j < rl.ScopeLogs().Len(); j++ {
				lrs := rl.ScopeLogs().At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					out = append(out, resRec{rl.Resource().Attributes(), lrs.At(k)})
				}
			}
		}
	}
	return out
}

func get(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}
