package edge

import (
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"
	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// TestEnvoyEdgeLogs: Envoy does not install here, so its listener access
// log is tested with lines written in its documented format
// (testdata/envoy-tls.json: %DOWNSTREAM_TLS_VERSION%, BoringSSL's words in
// %DOWNSTREAM_TRANSPORT_FAILURE_REASON%), not captured from a running Envoy.
func TestEnvoyEdgeLogs(t *testing.T) {
	bin := tb.Env(t, "edge", "CERTPULSE_BIN")[0]
	dir := t.TempDir()
	logPath := filepath.Join(dir, "tls.json")
	if fh, err := os.Create(logPath); err == nil {
		fh.Close()
	}
	loki, stderr := startCollector(t, bin, dir, "envoy", "ENVOY_TLS_LOG="+logPath)
	lines, err := os.ReadFile("testdata/envoy-tls.json")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(logPath, lines, 0o600); err != nil {
		t.Fatal(err)
	}
	// The log's own records; the connector's windows (every second while
	// there are handshakes) are not what this test counts.
	var recs []logtest.Record
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(recs) < 5; time.Sleep(200 * time.Millisecond) {
		recs = recs[:0]
		for _, r := range loki.All() {
			if r.EventName() != attrs.EventEdgeWindow {
				recs = append(recs, r)
			}
		}
	}
	if len(recs) != 5 {
		t.Fatalf("want 5 records, got %d\n%s", len(recs), tb.Tail(stderr.String(), 2000))
	}
	versions, reasons := map[string]bool{}, map[string]bool{}
	for _, r := range recs {
		if v := r.Attr("tls.protocol.version"); v != "" {
			versions[v] = true
			if r.Attr("server.address") != "api.example.com" || r.Attr("tls.cipher") == "" || r.Attr("certpulse.edge.node") != "edge-1" {
				t.Errorf("access record: %v", r.Attributes().AsRaw())
			}
		}
		if reason := r.Attr("certpulse.reason"); reason != "" {
			reasons[reason] = true
		}
	}
	if !versions["1.3"] || !versions["1.2"] {
		t.Errorf("versions %v", versions)
	}
	for _, want := range []string{"cipher_mismatch", "protocol_mismatch", "unknown_ca"} {
		if !reasons[want] {
			t.Errorf("no %s (got %v)", want, reasons)
		}
	}
}

// TestEnvoyStatsSink: Envoy's OpenTelemetry stats sink (stats-sink.yaml)
// pushes its stats over OTLP/gRPC; the shipped stats.yaml keeps the
// listener SSL counters, tag-extracted or not, and drops the rest. Envoy
// does not install here: the request is shaped as the sink documents it
// (prefix envoy, cumulative counters, tags as attributes), not captured.
func TestEnvoyStatsSink(t *testing.T) {
	bin := tb.Env(t, "edge", "CERTPULSE_BIN")[0]
	dir := t.TempDir()
	sink := tb.NewLogSink()
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	base := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(base, []byte(fmt.Sprintf(`processors:
  memory_limiter: {check_interval: 1s, limit_mib: 256}
  batch: {timeout: 200ms}
exporters:
  otlphttp/mimir: {endpoint: %s/mimir}
service:
  telemetry: {metrics: {level: none}}
`, srv.URL)), 0o600); err != nil {
		t.Fatal(err)
	}
	addr := fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))
	overlay, _ := filepath.Abs("../../distributions/edge/envoy/stats.yaml")
	cmd := exec.Command(bin, "--config", base, "--config", overlay)
	cmd.Env = append(os.Environ(), "ENVOY_STATS_OTLP_ENDPOINT="+addr)
	exited, stderr := tb.Start(t, cmd)
	waitListen(t, "collector", addr, exited, stderr)

	md := pmetric.NewMetrics()
	sm := md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty()
	counter := func(name string, v int64, attrs map[string]string) {
		m := sm.Metrics().AppendEmpty()
		m.SetName(name)
		s := m.SetEmptySum()
		s.SetIsMonotonic(true)
		s.SetAggregationTemporality(pmetric.AggregationTemporalityCumulative)
		dp := s.DataPoints().AppendEmpty()
		dp.SetStartTimestamp(pcommon.NewTimestampFromTime(time.Now().Add(-time.Minute)))
		dp.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		dp.SetIntValue(v)
		for k, a := range attrs {
			dp.Attributes().PutStr(k, a)
		}
	}
	l := map[string]string{"envoy.listener_address": "0.0.0.0_443"}
	counter("envoy.listener.ssl.handshake", 1200, l)
	counter("envoy.listener.ssl.session_reused", 900, l)
	counter("envoy.listener.ssl.connection_error", 7, l)
	counter("envoy.listener.ssl.ciphers", 1100, map[string]string{"envoy.listener_address": "0.0.0.0_443", "envoy.ssl_cipher": "TLS_AES_128_GCM_SHA256"})
	counter("envoy.listener.0.0.0.0_443.ssl.versions.TLSv1.3", 1100, nil) // without tag extraction
	counter("envoy.cluster.upstream_rq_total", 5000, map[string]string{"envoy.cluster_name": "backend"})
	counter("envoy.listener.downstream_cx_total", 1300, l)

	conn, err := grpc.NewClient(addr, grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if _, err := pmetricotlp.NewGRPCClient(conn).Export(ctx, pmetricotlp.NewExportRequestFromMetrics(md)); err != nil {
		t.Fatal(err)
	}
	want := map[string]float64{"envoy.listener.ssl.handshake": 1200, "envoy.listener.ssl.session_reused": 900, "envoy.listener.ssl.connection_error": 7,
		"envoy.listener.ssl.ciphers": 1100, "envoy.listener.0.0.0.0_443.ssl.versions.TLSv1.3": 1100}
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline) && sink.Metric("envoy.listener.ssl.handshake", nil) == 0; {
		time.Sleep(100 * time.Millisecond)
	}
	for name, v := range want {
		if got := sink.Metric(name, nil); got != v {
			t.Errorf("%s = %v, want %v", name, got, v)
		}
	}
	if got := sink.Metric("envoy.listener.ssl.ciphers", map[string]string{"envoy.ssl_cipher": "TLS_AES_128_GCM_SHA256"}); got != 1100 {
		t.Errorf("the cipher tag is lost: %v", got)
	}
	for _, dropped := range []string{"envoy.cluster.upstream_rq_total", "envoy.listener.downstream_cx_total"} {
		if n := len(sink.Series(dropped)); n != 0 {
			t.Errorf("%s reached Mimir (%d series): only listener SSL counters should", dropped, n)
		}
	}
}
