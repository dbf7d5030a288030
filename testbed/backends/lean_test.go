package backends

import (
	"context"
	"fmt"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/dashboards"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// fullOnly are the metrics series lean does not record for a healthy
// target (the log records in Loki carry them): dashboard panels on them are
// empty in lean.
var fullOnly = []string{"tlsprobe_duration", "tlsprobe_tls_info", "tlsprobe_tls_hello_retry", "tlsprobe_chain_length",
	"tlsprobe_cert_not_after", "tlsprobe_cert_lifetime_used", "tlsprobe_ocsp_staple_age", "tlsprobe_ocsp_responder_duration", "tlsprobe_crl_status",
	// Lean records OCSP status only while it is not good (the lab's
	// endpoint under the dashboard has a good one).
	"tlsprobe_ocsp_status{"}

// TestLeanSeries runs the built distribution with the shipped
// single-tier.yaml and `series: lean` into Prometheus 3 (Mimir's names):
// a healthy target has at most 2 tlsprobe series (3 with target_info), a
// failing one adds its failure; every shipped rule runs and those the lab
// guarantees still return data; every dashboard query not on a full-only
// metric returns data.
func TestLeanSeries(t *testing.T) {
	bin := need(t, "CERTPULSE_BIN")
	prom := need(t, "PROMETHEUS3_BIN")
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	otlpProm := tb.Prometheus3(t, ctx, prom)
	logs := httptest.NewServer(tb.NewLogSink())
	defer logs.Close()
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
	overlay := map[string]any{
		"extensions": map[string]any{"health_check": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))}},
		"receivers": map[string]any{
			"tlsprobe":      labProbes(files, map[string]any{"series": "lean"}),
			"certlifecycle": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))},
		},
		"processors": map[string]any{"tlscorrelator": map[string]any{"open_incidents_interval": "5s"}},
		"exporters": map[string]any{
			"otlphttp/mimir": map[string]any{"endpoint": otlpProm + "/api/v1/otlp"},
			"otlphttp/loki":  map[string]any{"endpoint": logs.URL + "/loki"},
		},
		"service": map[string]any{"telemetry": map[string]any{"metrics": map[string]any{"level": "none", "readers": []any{}}}},
	}
	startSingleTier(t, ctx, bin, dir, "lean", overlay)

	want := len(lab.Endpoints)
	var n int
	for end := time.Now().Add(90 * time.Second); time.Now().Before(end); time.Sleep(time.Second) {
		if n, _ = tb.PromQuery(otlpProm, `count by (server_address) (tlsprobe_success{certpulse_edge_node=""})`); n >= want {
			break
		}
	}
	if n < want {
		t.Fatalf("tlsprobe_success for %d of %d endpoints within 90s", n, want)
	}
	time.Sleep(12 * time.Second) // rounds for the rates

	totals := checkSeriesCount(t, otlpProm)
	for _, ep := range []string{"healthy", "healthy-rsa-stapled"} {
		if totals[ep] > 2 {
			t.Errorf("lean: %s has %d tlsprobe series, want at most 2 (3 with target_info)", ep, totals[ep])
		}
	}
	if totals["expired-leaf"] <= totals["healthy"] {
		t.Errorf("lean: the failing target has no more series (%d) than a healthy one (%d)", totals["expired-leaf"], totals["healthy"])
	}
	all, _ := tb.PromQuery(otlpProm, `{__name__=~"tlsprobe_.*"}`)
	info, _ := tb.PromQuery(otlpProm, `target_info`)
	t.Logf("lean: %d tlsprobe series for %d targets (%d target_info)", all, want, info)
	checkRules(t, otlpProm)
	endpoint := "expired-leaf." + faultlab.Domain
	total := 0
	for _, d := range dashboards.All() {
		if d.UID == "certpulse-edge" {
			continue
		}
		total += tb.CheckPanels(t, otlpProm, d.UID, endpoint, nil, func(expr string) bool {
			if allowedEmpty(expr) {
				return true
			}
			for _, m := range fullOnly {
				if strings.Contains(expr, m) {
					return true
				}
			}
			return false
		})
	}
	t.Logf("lean: %d dashboard queries ran; every one not on a full-only metric returned data", total)
}
