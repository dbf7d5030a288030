package edge

import (
	"bufio"
	"fmt"
	"math/rand/v2"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// TestTailThroughput writes an nginx certpulse_tls access log (1% garbage
// lines, some truncated ones) before the collector starts, then runs the
// built distribution with the shipped nginx overlay reading it from the
// beginning on one core (GOMAXPROCS=1) and the tlsedge connector counting,
// and measures lines per second and per CPU second, and peak memory. Every
// line must be counted (tlsedge.records), the garbage as unparsed. The size
// is EDGE_TAIL_BYTES (make bench-edge: 1 GiB); make edge runs 20 MB as a
// check, not a measurement.
func TestTailThroughput(t *testing.T) {
	bin := tb.Env(t, "edge", "CERTPULSE_BIN")[0]
	size := int64(20 << 20)
	if s := os.Getenv("EDGE_TAIL_BYTES"); s != "" {
		n, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			t.Fatalf("EDGE_TAIL_BYTES=%q: %v", s, err)
		}
		size = n
	}
	data := t.TempDir()
	logPath, errPath := filepath.Join(data, "tls.json"), filepath.Join(data, "error.log")
	lines, garbage := writeAccessLog(t, logPath, size)
	if err := os.WriteFile(errPath, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	// metrics: the connector's metrics instance alone (the figure the
	// issue's 48,000 was); logs: the logs instance too, as the shipped
	// configs run it, its records dropped by a filter before any exporter
	// (the export to Loki is the exporter's cost, not the tailing's).
	for _, variant := range []string{"metrics", "metrics+logs"} {
		t.Run(variant, func(t *testing.T) {
			tailOnce(t, bin, variant == "metrics+logs", logPath, errPath, size, lines, garbage)
		})
	}
}

func tailOnce(t *testing.T, bin string, withLogs bool, logPath, errPath string, size int64, lines, garbage int) {
	dir := t.TempDir()
	logsPipeline := ""
	if withLogs {
		logsPipeline = `
    logs/out: {receivers: [tlsedge], processors: [filter/drop], exporters: [otlphttp/mimir]}`
	}
	sink := tb.NewLogSink()
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	base := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(base, []byte(fmt.Sprintf(`extensions:
  file_storage: {directory: %s, create_directory: true}
processors:
  memory_limiter: {check_interval: 1s, limit_mib: 512, spike_limit_mib: 128}
  filter/drop: {error_mode: ignore, logs: {log_record: ['true']}}
connectors:
  tlsedge: {interval: 1s}
receivers:
  filelog/nginx_access: {start_at: beginning}
exporters:
  otlphttp/mimir: {endpoint: %s/mimir}
service:
  extensions: [file_storage]
  telemetry: {metrics: {level: none}, logs: {level: warn}}
  pipelines:
    metrics/edge: {receivers: [tlsedge], exporters: [otlphttp/mimir]}%s
`, filepath.Join(dir, "state"), srv.URL, logsPipeline)), 0o600); err != nil {
		t.Fatal(err)
	}
	overlay, _ := filepath.Abs("../../distributions/edge/nginx/collector.yaml")
	cmd := exec.Command(bin, "--config", overlay, "--config", base)
	cmd.Env = append(os.Environ(), "GOMAXPROCS=1", "NGINX_TLS_LOG="+logPath, "NGINX_ERROR_LOG="+errPath)
	start := time.Now()
	exited, _ := tb.Start(t, cmd)
	pid := cmd.Process.Pid
	var counted float64
	var peakRSS int64
	deadline := start.Add(30 * time.Minute)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("collector exited: %v", err)
		default:
		}
		peakRSS = max(peakRSS, procStatus(pid, "VmRSS:"))
		if counted = sink.Metric("tlsedge.records", nil); counted >= float64(lines) {
			break
		}
		time.Sleep(250 * time.Millisecond)
	}
	elapsed := time.Since(start)
	cpu := procCPU(pid)
	if counted != float64(lines) {
		t.Fatalf("tlsedge.records = %v, want %d lines", counted, lines)
	}
	if u := sink.Metric("tlsedge.records", map[string]string{"certpulse.edge.record": "unparsed"}); u != float64(garbage) {
		t.Errorf("unparsed = %v, want %d", u, garbage)
	}
	hwm := procStatus(pid, "VmHWM:")
	t.Logf("%s: %d MiB, %d lines (%d garbage) in %s: %.0f lines/s wall, %.0f lines per CPU second (GOMAXPROCS=1, %s CPU); RSS peak %d MiB (VmHWM %d MiB)",
		t.Name(), size>>20, lines, garbage, elapsed.Round(100*time.Millisecond), float64(lines)/elapsed.Seconds(), float64(lines)/cpu.Seconds(), cpu.Round(100*time.Millisecond), peakRSS>>10, hwm>>10)
}

// writeAccessLog writes about size bytes of certpulse_tls lines: 200 names,
// three nodes, keep-alive connections of 1-4 requests, TLS 1.3 and 1.2, 10%
// resumed; every 100th line garbage, every 500th truncated.
func writeAccessLog(t *testing.T, path string, size int64) (lines, garbage int) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	w := bufio.NewWriterSize(f, 1<<20)
	r := rand.New(rand.NewPCG(1, 2))
	var written int64
	conn, req := 1, 1
	for written < size {
		var line string
		switch {
		case lines%100 == 99:
			line = "garbage \x01{{{ not json " + strconv.Itoa(lines)
			garbage++
		case lines%500 == 250:
			line = `{"time":"2026-12-01T10:00:00+00:00","node":"edge-1","protocol":"TLSv1.3`
			garbage++
		default:
			if req > 1+r.IntN(4) {
				conn, req = conn+1, 1
			}
			proto, cipher := "TLSv1.3", "TLS_AES_128_GCM_SHA256"
			if r.IntN(10) == 0 {
				proto, cipher = "TLSv1.2", "ECDHE-RSA-AES128-GCM-SHA256"
			}
			resumed := "."
			if r.IntN(10) == 0 {
				resumed = "r"
			}
			line = fmt.Sprintf(`{"time":"2026-12-01T10:00:00+00:00","node":"edge-%d","listener":"10.0.0.%d:443","client":"192.0.2.%d","connection":"%d","connection_requests":"%d","sni":"svc-%d.example.com","protocol":"%s","cipher":"%s","curve":"X25519","curves":"X25519:prime256v1:secp384r1","ciphers":"TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256:ECDHE-RSA-AES128-GCM-SHA256","resumed":"%s","early_data":"","method":"GET","status":"200","user_agent":"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"}`,
				conn%3, conn%3, r.IntN(250), conn, req, r.IntN(200), proto, cipher, resumed)
			req++
		}
		n, err := w.WriteString(line + "\n")
		if err != nil {
			t.Fatal(err)
		}
		written += int64(n)
		lines++
	}
	if err := w.Flush(); err != nil {
		t.Fatal(err)
	}
	return lines, garbage
}

// procStatus reads a kB field of /proc/<pid>/status.
func procStatus(pid int, field string) int64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0
	}
	for _, l := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(l, field) {
			n, _ := strconv.ParseInt(strings.Fields(l)[1], 10, 64)
			return n
		}
	}
	return 0
}

// procCPU is the process's user + system CPU time.
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * time.Second / 100 // USER_HZ
}
