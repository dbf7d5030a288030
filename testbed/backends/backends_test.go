// Package backends runs the built distribution with the shipped single-tier
// config against real servers that speak Mimir's and Loki's protocols:
// Prometheus 3 (Mimir's stand-in: OTLP with Mimir's default naming, and
// remote write) and VictoriaLogs (a real OTLP log sink). Grafana, Loki and
// Mimir are AGPL and are not used. `make backends` builds both servers from
// the module proxy, cached under .cache/bin by version.
package backends

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certpulse/certpulse/internal/dashboards"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

func need(t *testing.T, env string) string {
	t.Helper()
	v := os.Getenv(env)
	if v == "" {
		// `go test ./...` (make unit) skips; `make backends` sets it.
		t.Skipf("%s not set: run `make backends`", env)
	}
	if _, err := os.Stat(v); err != nil {
		t.Fatalf("%s=%s: %v", env, v, err)
	}
	return v
}

// promSeries returns, per metric name matching the regexp, the sorted label
// names of its series (job and instance aside).
func promSeries(t *testing.T, base, nameRe string) map[string][]string {
	t.Helper()
	resp, err := http.Get(base + "/api/v1/series?match[]=" + url.QueryEscape(`{__name__=~"`+nameRe+`"}`))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var r struct {
		Data []map[string]string `json:"data"`
	}
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		t.Fatal(err)
	}
	sets := map[string]map[string]bool{}
	for _, s := range r.Data {
		name := s["__name__"]
		var keys []string
		for k := range s {
			if k != "__name__" {
				keys = append(keys, k)
			}
		}
		sort.Strings(keys)
		if sets[name] == nil {
			sets[name] = map[string]bool{}
		}
		sets[name][strings.Join(keys, ",")] = true
	}
	out := map[string][]string{}
	for name, s := range sets {
		for k := range s {
			out[name] = append(out[name], k)
		}
		sort.Strings(out[name])
	}
	return out
}

// shipped reads one exporter's block from a shipped config.
func shipped(t *testing.T, file, exporter string) map[string]any {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "distributions", "otelcol-certpulse", file))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Exporters map[string]map[string]any `yaml:"exporters"`
	}
	if err := yaml.Unmarshal(data, &cfg); err != nil {
		t.Fatal(err)
	}
	e, ok := cfg.Exporters[exporter]
	if !ok {
		t.Fatalf("%s has no exporter %s", file, exporter)
	}
	return e
}

// TestDeliveryToBackends: the shipped single-tier config, with its URLs
// pointed at Prometheus 3 and VictoriaLogs (and the lab's targets), lands
// metrics with Mimir's names and labels (OTLP and the documented remote-write
// alternative alike), answers every dashboard query with data where the lab
// guarantees some, and delivers every record kind to the log store.
func TestDeliveryToBackends(t *testing.T) {
	bin := need(t, "CERTPULSE_BIN")
	prom := need(t, "PROMETHEUS3_BIN")
	vlogs := need(t, "VICTORIALOGS_BIN")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	otlpProm := tb.Prometheus3(t, ctx, prom)
	prwProm := tb.Prometheus3(t, ctx, prom)
	vlBase := fmt.Sprintf("http://127.0.0.1:%d", tb.FreePort(t))
	tb.StartReady(t, ctx, "victoria-logs", vlBase+"/health", nil, vlogs, "-storageDataPath="+filepath.Join(t.TempDir(), "vl"),
		"-httpListenAddr="+strings.TrimPrefix(vlBase, "http://"), "-loggerLevel=WARN")

	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	dir := t.TempDir()
	files, err := lab.WriteFiles(filepath.Join(dir, "lab"))
	if err != nil {
		t.Fatal(err)
	}

	// The overlay the collector merges over the shipped single-tier.yaml:
	// URLs of the stand-in servers (whose paths differ from Mimir's and
	// Loki's), the lab's targets at a short interval, loopback ports, and the
	// shipped remote-write exporter from agent.yaml next to OTLP.
	lcPort := tb.FreePort(t)
	prw := shipped(t, "agent.yaml", "prometheusremotewrite/mimir")
	prw["endpoint"] = prwProm + "/api/v1/write"
	overlay := map[string]any{
		"extensions": map[string]any{"health_check": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))}},
		"receivers": map[string]any{
			"tlsprobe":      labProbes(files, nil),
			"certlifecycle": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", lcPort)},
		},
		"processors": map[string]any{"tlscorrelator": map[string]any{"open_incidents_interval": "5s"}},
		"exporters": map[string]any{
			"otlphttp/mimir":              map[string]any{"endpoint": otlpProm + "/api/v1/otlp"},
			"otlphttp/loki":               map[string]any{"endpoint": vlBase + "/insert/opentelemetry"},
			"prometheusremotewrite/mimir": prw,
			// Not in single-tier.yaml: the remediation exporter in dry run,
			// so that its audit records (and the decisions counter) exist.
			"remediation": map[string]any{
				"dry_run": true,
				"verify": map[string]any{
					"allow_private_fetch_networks": []string{"127.0.0.0/8"},
					"tls":                          map[string]any{"ca_file": files.Roots},
				},
				"policies": []any{map[string]any{
					"name": "reload-expired", "reasons": []string{"expired_leaf"},
					"actions": []any{map[string]any{"name": "reload", "type": "webhook", "operation": "reload", "url": "http://127.0.0.1:9/never-called", "hmac_secret": "backends-action-0123456789"}},
				}},
				"audit": map[string]any{
					"endpoint":    fmt.Sprintf("http://127.0.0.1:%d/v1/lifecycle", lcPort),
					"headers":     map[string]any{"Authorization": "Bearer backends-token"},
					"hmac_secret": "backends-hmac-0123456789",
				},
			},
		},
		"service": map[string]any{
			"telemetry": map[string]any{"metrics": map[string]any{"level": "none", "readers": []any{}}},
			"pipelines": map[string]any{
				"logs":              map[string]any{"exporters": []string{"otlphttp/loki", "signaltometrics/incidents", "remediation"}},
				"metrics":           map[string]any{"exporters": []string{"otlphttp/mimir", "prometheusremotewrite/mimir"}},
				"metrics/incidents": map[string]any{"exporters": []string{"otlphttp/mimir", "prometheusremotewrite/mimir"}},
			},
		},
	}
	startSingleTier(t, ctx, bin, dir, "backends", overlay)

	// Wait for every endpoint's metrics and for the correlator's incidents.
	want := len(lab.Endpoints)
	var n int
	for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		n, _ = tb.PromQuery(otlpProm, `count by (server_address) (tlsprobe_success{certpulse_edge_node=""})`)
		m, _ := tb.PromQuery(prwProm, `count by (server_address) (tlsprobe_success{certpulse_edge_node=""})`)
		if n >= want && m >= want {
			break
		}
	}
	if n < want {
		t.Fatalf("tlsprobe_success for %d of %d endpoints within 90s", n, want)
	}
	// A lifecycle event through the shipped sender (bearer token + HMAC).
	send := exec.CommandContext(ctx, "sh", "-c", `printf '%s' '{"type":"deployed","id":"backends-1","service":"lab-healthy","environment":"lab","job_id":"deploy-backends"}' | ../../distributions/otelcol-certpulse/hooks/certpulse-send`)
	send.Env = append(os.Environ(), fmt.Sprintf("CERTPULSE_URL=http://127.0.0.1:%d/v1/lifecycle", lcPort), "CERTPULSE_TOKEN=backends-token", "CERTPULSE_HMAC_SECRET=backends-hmac-0123456789")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("certpulse-send: %v: %s", err, out)
	}
	time.Sleep(12 * time.Second) // two more rounds: rates and incidents have data

	checkSameSeries(t, otlpProm, prwProm)
	checkIncidentMetrics(t, otlpProm)
	checkDashboards(t, otlpProm)
	checkRules(t, otlpProm)
	checkSeriesCount(t, otlpProm)
	checkLogs(t, vlBase)
}

// checkIncidentMetrics: the correlator's output reaches Mimir as metrics
// through the pipeline (signaltometrics + deltatocumulative), with the
// routing labels.
func checkIncidentMetrics(t *testing.T, base string) {
	for _, q := range []string{
		`certpulse_incident_transitions{certpulse_incident_state="opened", certpulse_reason="expired_leaf", service_name="lab-expired-leaf", deployment_environment_name="lab", certpulse_owner="team-lab", certpulse_severity=~".+"}`,
		// Opened incidents of four lab services at least (expired leaf,
		// hostname mismatch, revoked, ...).
		`count(count by (service_name) (certpulse_incident_transitions{certpulse_incident_state="opened"})) >= 4`,
		// The remediation exporter's decisions for the expired leaf (dry run).
		`certpulse_remediation_decisions{service_name="lab-expired-leaf", certpulse_lifecycle_pipeline_stage=~"verified|dry_run"}`,
		// The correlator's open-incidents snapshot as a gauge.
		`certpulse_incidents_open{service_name="lab-expired-leaf", deployment_environment_name="lab", certpulse_owner="team-lab", certpulse_reason="expired_leaf", certpulse_severity=~".+", certpulse_incident_remediation=~"none|running|awaiting_approval"} >= 1`,
		`sum(certpulse_incidents_open) >= 4`,
	} {
		n, err := tb.PromQuery(base, q)
		if err != nil || n == 0 {
			t.Errorf("incident metrics: %q: %d series, %v", q, n, err)
		}
	}
}

// checkSameSeries: the OTLP path and the remote-write path give the same
// series names, each with the same label names.
func checkSameSeries(t *testing.T, otlpProm, prwProm string) {
	a := promSeries(t, otlpProm, "tlsprobe_.*|certpulse_.*|target_info")
	b := promSeries(t, prwProm, "tlsprobe_.*|certpulse_.*|target_info")
	if len(a) == 0 {
		t.Fatal("no tlsprobe series over OTLP")
	}
	for name, la := range a {
		lb, ok := b[name]
		if !ok {
			t.Errorf("%s: over OTLP, missing over remote write", name)
			continue
		}
		if strings.Join(la, " | ") != strings.Join(lb, " | ") {
			t.Errorf("%s: label names differ\n  OTLP:         %v\n  remote write: %v", name, la, lb)
		}
	}
	for name := range b {
		if _, ok := a[name]; !ok {
			t.Errorf("%s: over remote write, missing over OTLP", name)
		}
	}
	if strings.HasSuffix(strings.Join(keys(a), " "), "_seconds") || a["tlsprobe_cert_time_left"] == nil {
		t.Errorf("names are not Mimir's defaults (no unit suffixes): %v", keys(a))
	}
	for _, label := range []string{"service_name", "deployment_environment_name", "certpulse_owner", "certpulse_criticality", "certpulse_vantage", "server_address"} {
		if !strings.Contains(strings.Join(a["tlsprobe_success"], ","), label) {
			t.Errorf("tlsprobe_success has no %s label: %v", label, a["tlsprobe_success"])
		}
	}
	for name, sets := range a {
		for _, s := range sets {
			for _, bad := range []string{"fingerprint", "subject", "serial", "san"} {
				for _, l := range strings.Split(s, ",") {
					if strings.Contains(l, bad) && name != "target_info" {
						t.Errorf("%s has high-cardinality label %s", name, l)
					}
				}
			}
		}
	}
	t.Logf("%d series names agree between OTLP and remote write", len(a))
}

func keys[V any](m map[string]V) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// mayBeEmpty lists dashboard queries the lab cannot fill: fed by sources the
// single-tier lab run has none of.
var mayBeEmpty = []string{
	"absent", // probe absent: every lab target reports
	// Time to detect/act/fix: recorded when an incident resolves, and the
	// lab's incidents stay open; testbed/remediate (make remediate) fills
	// and queries these panels.
	"certpulse_incident_time_to_",
}

// checkDashboards: every PromQL query of every dashboard panel and variable,
// with Grafana's variables substituted, runs on Prometheus 3 and returns data.
func checkDashboards(t *testing.T, base string) {
	endpoint := "expired-leaf." + faultlab.Domain
	total := 0
	for _, d := range dashboards.All() {
		if d.UID == "certpulse-edge" {
			continue // the lab has no proxies: testbed/edge queries it (make edge)
		}
		total += tb.CheckPanels(t, base, d.UID, endpoint, nil, allowedEmpty)
		for _, v := range d.Templating.List {
			q, ok := v.Query.(string)
			if v.Type != "query" || !ok {
				continue
			}
			// label_values(<selector>, <label>)
			inner := strings.TrimSuffix(strings.TrimPrefix(q, "label_values("), ")")
			comma := strings.LastIndex(inner, ",")
			if comma < 0 || inner == q {
				t.Errorf("%s variable %s: %q is not label_values(selector, label)", d.UID, v.Name, q)
				continue
			}
			metric, label := dashboards.Substitute(strings.TrimSpace(inner[:comma]), endpoint), strings.TrimSpace(inner[comma+1:])
			if label == "cloud_region" {
				continue // the lab's targets name no region
			}
			resp, err := http.Get(base + "/api/v1/label/" + label + "/values?match[]=" + url.QueryEscape(metric))
			if err != nil {
				t.Fatal(err)
			}
			var r struct {
				Data []string `json:"data"`
			}
			_ = json.NewDecoder(resp.Body).Decode(&r)
			resp.Body.Close()
			if len(r.Data) == 0 {
				t.Errorf("%s variable %s (%s): no values", d.UID, v.Name, q)
			}
		}
	}
	t.Logf("%d dashboard PromQL queries ran on Prometheus 3", total)
}

func allowedEmpty(expr string) bool {
	for _, s := range mayBeEmpty {
		if strings.Contains(expr, s) {
			return true
		}
	}
	return false
}

// mustFire names the rules the lab guarantees data for: an expired leaf
// (page tier), validation ratios, OCSP failures. The others need what one
// lab run lacks (two vantages, a silent target) or read a recorded series
// (the burn rate: promtool's unit tests evaluate it).
var mustFire = map[string]bool{
	"certpulse:validation_success:ratio_rate5m": true,
	"certpulse:validation_success:ratio_rate1h": true,
	"CertpulseCertificateExpiring/page":         true,
	"CertpulseOCSPResponderFailing/alert":       true,
}

// checkRules: every expression of the shipped ruler rules runs on Prometheus
// 3 against the lab's series, and the ones the lab guarantees return data.
func checkRules(t *testing.T, base string) {
	data, err := os.ReadFile(filepath.Join("..", "..", "distributions", "prometheus", "certpulse-rules.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert, Record, Expr string
				Labels              map[string]string
			}
		}
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var fired []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			name := r.Record
			if r.Alert != "" {
				name = r.Alert + "/" + r.Labels["severity"]
			}
			n, err := tb.PromQuery(base, r.Expr)
			if err != nil {
				t.Errorf("rule %s: %v", name, err)
				continue
			}
			if n > 0 {
				fired = append(fired, fmt.Sprintf("%s(%d)", name, n))
			} else if mustFire[name] {
				t.Errorf("rule %s: no data, the lab guarantees some", name)
			}
		}
	}
	t.Logf("rules with data on the lab: %v", fired)
}

// checkSeriesCount logs the series per target and client profile: the
// numbers docs/performance.md reports. It returns the total per endpoint.
func checkSeriesCount(t *testing.T, base string) map[string]int {
	totals := map[string]int{}
	for _, ep := range []string{"healthy", "healthy-rsa-stapled", "healthy-mtls", "expired-leaf"} {
		addr := ep + "." + faultlab.Domain
		resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(`count by (__name__, certpulse_client_profile) ({__name__=~"tlsprobe_.*", server_address="`+addr+`"})`))
		if err != nil {
			t.Fatal(err)
		}
		var r struct {
			Data struct {
				Result []struct {
					Metric map[string]string `json:"metric"`
					Value  []any             `json:"value"`
				} `json:"result"`
			} `json:"data"`
		}
		err = json.NewDecoder(resp.Body).Decode(&r)
		resp.Body.Close()
		if err != nil {
			t.Fatal(err)
		}
		total := 0
		var parts []string
		for _, s := range r.Data.Result {
			var n int
			fmt.Sscan(fmt.Sprint(s.Value[1]), &n)
			total += n
			parts = append(parts, fmt.Sprintf("%s{%s}=%d", s.Metric["__name__"], s.Metric["certpulse_client_profile"], n))
		}
		sort.Strings(parts)
		t.Logf("series for %s: %d (%s)", ep, total, strings.Join(parts, " "))
		totals[ep] = total
	}
	return totals
}

// checkLogs: every record kind the single-tier pipeline sends is in the log
// store, found by service and environment.
func checkLogs(t *testing.T, base string) {
	kinds := map[string]string{
		"probe result":      `"service.name":"lab-healthy" AND "deployment.environment.name":"lab" AND event_name:"certpulse.probe.result" AND "certpulse.reason":"ok"`,
		"remediation audit": `"service.name":"lab-expired-leaf" AND "deployment.environment.name":"lab" AND event_name:"certpulse.lifecycle.remediation"`,
		"lifecycle":         `"service.name":"lab-healthy" AND "deployment.environment.name":"lab" AND event_name:"certpulse.lifecycle.deployed"`,
		"incident":          `"service.name":"lab-expired-leaf" AND "deployment.environment.name":"lab" AND "certpulse.incident.state":"opened"`,
	}
	for kind, q := range kinds {
		var body []byte
		for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
			resp, err := http.PostForm(base+"/select/logsql/query", url.Values{"query": {q}, "limit": {"1"}})
			if err != nil {
				t.Fatal(err)
			}
			body, _ = io.ReadAll(resp.Body)
			resp.Body.Close()
			if len(bytes.TrimSpace(body)) > 0 {
				break
			}
		}
		if len(bytes.TrimSpace(body)) == 0 {
			t.Errorf("%s: no record in VictoriaLogs for %s", kind, q)
			continue
		}
		t.Logf("%s: %s", kind, tb.Tail(string(body), 600))
	}
}

// startSingleTier runs the built distribution with the shipped
// single-tier.yaml and overlay merged over it, until ctx ends.
func startSingleTier(t *testing.T, ctx context.Context, bin, dir, name string, overlay map[string]any) {
	t.Helper()
	ov, err := yaml.Marshal(overlay)
	if err != nil {
		t.Fatal(err)
	}
	ovPath := filepath.Join(dir, "overlay.yaml")
	if err := os.WriteFile(ovPath, ov, 0o600); err != nil {
		t.Fatal(err)
	}
	shippedCfg, _ := filepath.Abs(filepath.Join("..", "..", "distributions", "otelcol-certpulse", "single-tier.yaml"))
	tb.StartReady(t, ctx, "otelcol-certpulse", "", []string{"NODE_NAME=" + name + "-test", "POD_IP=127.0.0.1", "CERTPULSE_STATE_DIR=" + filepath.Join(dir, "state"),
		"CERTPULSE_WEBHOOK_TOKEN=" + name + "-token", "CERTPULSE_WEBHOOK_HMAC=" + name + "-hmac-0123456789", "MIMIR_URL=http://unused.invalid", "MIMIR_TENANT=certpulse",
		"LOKI_URL=http://unused.invalid", "LOKI_TENANT=certpulse"}, bin, "--config", shippedCfg, "--config", ovPath)
}

// labProbes is the tlsprobe overlay for the lab's targets at a short
// interval, plus extra settings.
func labProbes(files faultlab.Files, extra map[string]any) map[string]any {
	m := map[string]any{
		"collection_interval":          "5s",
		"timeout":                      "2s",
		"allow_private_fetch_networks": []string{"127.0.0.0/8"},
		"ocsp":                         map[string]any{"timeout": "500ms"},
		"client_profiles":              map[string]any{faultlab.MTLSProfile: map[string]any{"cert_file": files.ClientCert, "key_file": files.ClientKey}},
		"targets_file":                 files.TargetsFile,
	}
	for k, v := range extra {
		m[k] = v
	}
	return m
}
