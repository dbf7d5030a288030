// Package nel is the Network Error Logging testbed: real headless Chromium
// holds a NEL policy for sites served over a valid certificate, the sites
// break (expired, untrusted issuer, a protocol below the browser's floor),
// Chromium reports the failures to the built distribution's nel receiver,
// and the correlator opens an incident that names the browser and carries
// the probe's reason code.
package nel

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/browsertest"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// site is one HTTPS origin served by a real TLS server whose
// configuration the test swaps (a deploy).
type site struct {
	name, service string
	port          int
	cfg           atomic.Pointer[tls.Config]
}

func (s *site) serve(t *testing.T, reportsHost string) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	s.port = ln.Addr().(*net.TCPAddr).Port
	// No session resumption and no keep-alive: a resumed session or a
	// reused connection would carry the old certificate's verdict past the
	// deploy, and the broken certificate would never be seen.
	tl := tls.NewListener(ln, &tls.Config{SessionTicketsDisabled: true, GetConfigForClient: func(*tls.ClientHelloInfo) (*tls.Config, error) {
		c := s.cfg.Load().Clone()
		c.SessionTicketsDisabled = true
		return c, nil
	}})
	srv := &http.Server{ReadHeaderTimeout: 5 * time.Second, ErrorLog: log.New(io.Discard, "", 0), Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// The v0 headers Chromium's NEL needs (see distributions/nel).
		w.Header().Set("Report-To", fmt.Sprintf(`{"group":"certpulse","max_age":86400,"endpoints":[{"url":"https://%s/nel"}]}`, reportsHost))
		w.Header().Set("NEL", `{"report_to":"certpulse","max_age":86400,"failure_fraction":1.0}`)
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, "<!doctype html><title>%s</title><p>%s is up.</p>", s.name, s.name)
	})}
	srv.SetKeepAlivesEnabled(false)
	go func() { _ = srv.Serve(tl) }()
	t.Cleanup(func() { _ = srv.Close() })
}

func leafConfig(t *testing.T, leaf *faultlab.CA, chain ...*x509.Certificate) *tls.Config {
	der := [][]byte{leaf.Cert.Raw}
	for _, c := range chain {
		der = append(der, c.Raw)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: der, PrivateKey: leaf.Key, Leaf: leaf.Cert}}}
}

// load navigates to u; a certificate or protocol error is the point of
// some loads, so only a timeout fails.
func load(t *testing.T, ctx context.Context, u string) string {
	lctx, cancel := context.WithTimeout(ctx, 20*time.Second)
	defer cancel()
	err := chromedp.Do(lctx, chromedp.Navigate(u))
	if err != nil && lctx.Err() != nil {
		t.Fatalf("load %s: %v", u, err)
	}
	title, _ := chromedp.Run(lctx, chromedp.Title())
	return title
}

func TestChromiumReportsBecomeIncidents(t *testing.T) {
	bin := tb.Env(t, "nel", "CERTPULSE_BIN")[0]
	lab, err := faultlab.Start()
	require.NoError(t, err)
	t.Cleanup(lab.Close)
	dir := t.TempDir()
	now := time.Now()
	roots := filepath.Join(dir, "roots.pem")
	require.NoError(t, os.WriteFile(roots, faultlab.PEM(lab.Root.Cert), 0o600))

	// The reporting endpoint, on its own origin, over a lab certificate.
	reports, err := lab.IssueLeaf([]string{"reports.test"}, now.Add(-time.Hour), now.Add(90*24*time.Hour), false)
	require.NoError(t, err)
	reportsCrt, reportsKey := filepath.Join(dir, "reports.crt"), filepath.Join(dir, "reports.key")
	require.NoError(t, os.WriteFile(reportsCrt, faultlab.PEM(reports.Cert, lab.Inter.Cert), 0o600))
	key, err := faultlab.KeyPEM(reports.Key)
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(reportsKey, key, 0o600))
	nelPort := tb.FreePort(t)

	cases := []struct {
		name, host, service string
		broken              func(t *testing.T, good *tls.Config) *tls.Config
		nelType             string
		probeReason         attrs.Reason
	}{
		{"expired", "expired.app.test", "shop", func(t *testing.T, _ *tls.Config) *tls.Config {
			leaf, err := lab.IssueLeaf([]string{"expired.app.test"}, now.Add(-60*24*time.Hour), now.Add(-24*time.Hour), false)
			require.NoError(t, err)
			return leafConfig(t, leaf, lab.Inter.Cert)
		}, "tls.cert.date_invalid", attrs.ReasonExpiredLeaf},
		{"untrusted issuer", "untrusted.app.test", "checkout", func(t *testing.T, _ *tls.Config) *tls.Config {
			other, err := faultlab.SelfSigned([]string{"untrusted.app.test"}, now.Add(-time.Hour), now.Add(90*24*time.Hour))
			require.NoError(t, err)
			return leafConfig(t, other)
		}, "tls.cert.authority_invalid", attrs.ReasonSelfSigned},
		{"protocol below the browser's floor", "legacy.app.test", "legacy", func(t *testing.T, good *tls.Config) *tls.Config {
			c := good.Clone()
			c.MinVersion, c.MaxVersion = tls.VersionTLS10, tls.VersionTLS11
			return c
		}, "tls.version_or_cipher_mismatch", attrs.ReasonProtocolMismatch},
	}
	sites := make([]*site, len(cases))
	rules := []string{fmt.Sprintf("MAP reports.test 127.0.0.1:%d", nelPort)}
	var targets, services strings.Builder
	for i, c := range cases {
		leaf, err := lab.IssueLeaf([]string{c.host}, now.Add(-time.Hour), now.Add(90*24*time.Hour), false)
		require.NoError(t, err)
		s := &site{name: c.host, service: c.service}
		s.cfg.Store(leafConfig(t, leaf, lab.Inter.Cert))
		s.serve(t, "reports.test")
		sites[i] = s
		rules = append(rules, fmt.Sprintf("MAP %s 127.0.0.1:%d", c.host, s.port))
		fmt.Fprintf(&targets, "  - {endpoint: \"127.0.0.1:%d\", server_name: %s, service: %s, criticality: high, ca_file: %s}\n", s.port, c.host, c.service, roots)
		fmt.Fprintf(&services, "      - {name: %s, server_names: [%s]}\n", c.service, c.host)
	}

	sink := tb.NewLogSink()
	sinkSrv := httptest.NewServer(sink)
	t.Cleanup(sinkSrv.Close)
	prom := ""
	if p3 := os.Getenv("PROMETHEUS3_BIN"); p3 != "" {
		prom = tb.Prometheus3(t, context.Background(), p3, "--enable-feature=created-timestamp-zero-ingestion")
	} else if proxytest.InCI() {
		t.Fatal("PROMETHEUS3_BIN not set (make nel sets it)")
	}
	targetsFile := filepath.Join(dir, "targets.yaml")
	require.NoError(t, os.WriteFile(targetsFile, []byte("targets:\n"+targets.String()), 0o600))
	// The shipped single-tier.yaml and nel/single-tier.yaml, with the
	// test's addresses, the sites' services and short intervals.
	var metricsExporters string
	if prom != "" {
		metricsExporters = fmt.Sprintf(`
  otlphttp/prom3:
    endpoint: %s/api/v1/otlp`, prom)
	}
	hcPort := tb.FreePort(t)
	overlay := fmt.Sprintf(`
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
receivers:
  tlsprobe:
    targets_file: %s
    collection_interval: 20s
    allow_private_fetch_networks: [127.0.0.0/8]
    timeout: 3s
  certlifecycle:
    endpoint: 127.0.0.1:%d
  nel:
    services:
%sexporters:
  otlphttp/mimir:
    endpoint: %s/mimir
  otlphttp/loki:
    endpoint: %s/loki%s
service:
  telemetry:
    metrics:
      level: none
      readers: []
`, hcPort, targetsFile, tb.FreePort(t), services.String(), sinkSrv.URL, sinkSrv.URL, metricsExporters)
	if prom != "" {
		overlay += `  pipelines:
    metrics/incidents:
      exporters: [otlphttp/mimir, otlphttp/prom3]
`
	}
	ovFile := filepath.Join(dir, "test-overlay.yaml")
	require.NoError(t, os.WriteFile(ovFile, []byte(overlay), 0o600))
	abs := func(p string) string { s, _ := filepath.Abs(filepath.Join("..", "..", p)); return s }
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	tb.StartReady(t, ctx, "otelcol-certpulse", fmt.Sprintf("http://127.0.0.1:%d/", hcPort), []string{"NODE_NAME=nel-test", "POD_IP=127.0.0.1", "CERTPULSE_STATE_DIR=" + filepath.Join(dir, "state"),
		"CERTPULSE_WEBHOOK_TOKEN=nel-token", "CERTPULSE_WEBHOOK_HMAC=nel-hmac-0123456789", "MIMIR_URL=http://unused.invalid", "MIMIR_TENANT=certpulse",
		"LOKI_URL=http://unused.invalid", "LOKI_TENANT=certpulse", fmt.Sprintf("CERTPULSE_NEL_ENDPOINT=127.0.0.1:%d", nelPort),
		"CERTPULSE_NEL_CERT_FILE=" + reportsCrt, "CERTPULSE_NEL_KEY_FILE=" + reportsKey},
		bin, "--config", abs("distributions/otelcol-certpulse/single-tier.yaml"), "--config", abs("distributions/nel/single-tier.yaml"), "--config", ovFile)

	home := filepath.Join(dir, "home")
	require.NoError(t, os.MkdirAll(home, 0o700))
	browsertest.NSSTrust(t, home, lab.Root.Cert)
	bctx := browsertest.Start(t, home, rules, "*reporting*=2,*network_error_logging*=2", chromedp.Flag("short-reporting-delay", true))

	// Healthy: every page loads over its valid certificate and Chromium
	// stores each site's NEL policy.
	for _, c := range cases {
		require.Equal(t, c.host, load(t, bctx, "https://"+c.host+"/"), "the healthy page loads")
	}
	// Healthy probes first (the services' endpoints are known).
	seen := map[string]string{}
	defer func() {
		if t.Failed() {
			t.Logf("probe results: %v; records: %d", seen, len(sink.All()))
		}
	}()
	waitFor(t, 45*time.Second, "a healthy probe of every site", func() bool {
		ok := map[string]bool{}
		for _, r := range logtest.Named(sink.All(), attrs.EventProbeResult) {
			seen[r.ResAttr(attrs.ServiceName)] = r.Attr(attrs.ReasonKey) + ": " + r.Body().AsString()
			if r.Attr(attrs.ReasonKey) == string(attrs.ReasonOK) {
				ok[r.ResAttr(attrs.ServiceName)] = true
			}
		}
		return len(ok) == len(cases)
	})

	for i, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s := sites[i]
			s.cfg.Store(c.broken(t, s.cfg.Load()))
			// Three pages fail (the correlator's default nel.min_reports).
			broke := time.Now()
			for _, path := range []string{"/", "/cart", "/account"} {
				load(t, bctx, "https://"+c.host+path)
			}
			loaded := time.Now()
			var report logtest.Record
			waitFor(t, 20*time.Second, "the NEL report of "+c.host, func() bool {
				for _, r := range logtest.Named(sink.All(), attrs.EventNELReport) {
					if r.Attr(attrs.ServerAddress) == c.host {
						report = r
						return true
					}
				}
				return false
			})
			require.Equal(t, c.nelType, report.Attr(attrs.NELType))
			require.Equal(t, "chrome", report.Attr(attrs.UserAgentName))
			require.Equal(t, c.service, report.ResAttr(attrs.ServiceName))
			require.Empty(t, report.Attr(attrs.ClientAddress), "no client address by default")

			var opened time.Time
			var reason string
			waitFor(t, 20*time.Second, "an incident naming the browser, with the probe's reason", func() bool {
				for _, r := range logtest.Named(sink.All(), attrs.EventIncident) {
					// Whichever came first, the browsers' reports or a
					// scheduled probe of the broken site, the incident
					// counts the users' reports and names chrome among
					// the failing clients (a probe names every family
					// its presets say fail, chrome included).
					if r.ResAttr(attrs.ServiceName) != c.service || !slices.Contains(strings.Split(r.Attr(attrs.ClientsFailing), ","), "chrome") ||
						r.Attr(attrs.IncidentUserReports) == "" || r.Attr(attrs.IncidentUserReports) == "0" {
						continue
					}
					if opened.IsZero() {
						opened = time.Now()
					}
					reason = r.Attr(attrs.ReasonKey)
					if pr := r.Attr(attrs.IncidentProbeReason); pr != "" {
						reason = pr
					}
					if reason == string(c.probeReason) {
						return true
					}
				}
				return false
			})
			t.Logf("%s: three failed page loads took %s; the last failure to an incident naming chrome at the sink: %s", c.name,
				loaded.Sub(broke).Round(time.Millisecond), opened.Sub(loaded).Round(time.Millisecond))

			// Chromium's own reloads of the error page are counted once.
			time.Sleep(6 * time.Second)
			n := 0
			for _, r := range logtest.Named(sink.All(), attrs.EventNELReport) {
				if r.Attr(attrs.ServerAddress) == c.host && r.Attr(attrs.NELType) == c.nelType {
					n++
				}
			}
			require.Equal(t, 3, n, "one report for each failed page load")
		})
	}
	if prom == "" {
		return
	}
	// The dashboard row: real-user failures by type and browser.
	var total int
	waitFor(t, 30*time.Second, "certpulse_nel_reports in Prometheus 3", func() bool {
		n, err := tb.PromQuery(prom, `certpulse_nel_reports{user_agent_name="chrome"}`)
		return err == nil && n >= len(cases)
	})
	time.Sleep(3 * time.Second)
	total = tb.CheckPanels(t, prom, "certpulse-edge", "", func(expr string) bool { return strings.Contains(expr, "certpulse_nel_reports") }, nil)
	t.Logf("real-user dashboard row: %d PromQL queries with data on Prometheus 3", total)
}

func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("timed out after %s waiting for %s", d, what)
}
