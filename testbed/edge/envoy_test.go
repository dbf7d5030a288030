package edge

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/logtest"
	"github.com/certpulse/certpulse/testbed/internal/tb"
)

// TestEnvoyEdgeLogs: Envoy does not install here, so its listener access
// log is tested with lines written in its documented format
// (testdata/envoy-tls.json: %DOWNSTREAM_TLS_VERSION%, BoringSSL's words in
// %DOWNSTREAM_TRANSPORT_FAILURE_REASON%), not captured from a running Envoy.
func TestEnvoyEdgeLogs(t *testing.T) {
	bin := os.Getenv("CERTPULSE_BIN")
	if bin == "" {
		t.Skip("CERTPULSE_BIN not set (make edge builds it)")
	}
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
	var recs []logtest.Record
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(recs) < 5; time.Sleep(200 * time.Millisecond) {
		recs = loki.All()
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
