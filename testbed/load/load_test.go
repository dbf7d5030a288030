// Package load runs the built distribution with 10,000 targets at a 60 s
// interval against the fault lab (in its own process) and measures the
// collector's CPU and RSS. Run with `make bench` (needs CERTPULSE_BIN and
// CERTPULSE_LAB_BIN).
package load

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

const cfgTmpl = `
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
receivers:
  tlsprobe:
    collection_interval: 60s
    timeout: 5s
    max_concurrency: 64
    vantage: load
    allow_private_fetch_networks: [127.0.0.0/8]
    targets_file: %s
processors:
  batch:
exporters:
  file:
    path: %s
service:
  extensions: [health_check]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [tlsprobe]
      processors: [batch]
      exporters: [file]
    metrics:
      receivers: [tlsprobe]
      processors: [batch]
      exporters: [file]
`

func env(t *testing.T, k string) string {
	v := os.Getenv(k)
	if v == "" {
		t.Skipf("%s not set: run `make bench`", k)
	}
	return v
}

// procStat returns utime+stime and the current and peak RSS of pid.
func procStat(pid int) (cpu time.Duration, rss, hwm int64, err error) {
	data, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, 0, 0, err
	}
	f := strings.Fields(string(data[bytes.LastIndexByte(data, ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	cpu = time.Duration(ut+st) * time.Second / 100 // USER_HZ
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return cpu, 0, 0, err
	}
	sc := bufio.NewScanner(bytes.NewReader(status))
	for sc.Scan() {
		line := sc.Text()
		var kb int64
		if strings.HasPrefix(line, "VmRSS:") {
			_, _ = fmt.Sscanf(strings.TrimPrefix(line, "VmRSS:"), "%d", &kb)
			rss = kb << 10
		}
		if strings.HasPrefix(line, "VmHWM:") {
			_, _ = fmt.Sscanf(strings.TrimPrefix(line, "VmHWM:"), "%d", &kb)
			hwm = kb << 10
		}
	}
	return cpu, rss, hwm, nil
}

func TestLoad10k(t *testing.T) {
	bin, labBin := env(t, "CERTPULSE_BIN"), env(t, "CERTPULSE_LAB_BIN")
	targets := 10000
	if s := os.Getenv("CERTPULSE_LOAD_TARGETS"); s != "" {
		targets, _ = strconv.Atoi(s)
	}
	duration := 150 * time.Second
	if s := os.Getenv("CERTPULSE_LOAD_DURATION"); s != "" {
		duration, _ = time.ParseDuration(s)
	}
	dir := t.TempDir()
	lab, err := faultlab.StartProcess(labBin, filepath.Join(dir, "lab"))
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Stop()
	ep, _ := lab.Endpoint("healthy-wildcard")
	var tf strings.Builder
	tf.WriteString("targets:\n")
	for i := 0; i < targets; i++ {
		fmt.Fprintf(&tf, "  - endpoint: %s\n    server_name: t%d.wild.%s\n    service: load-%d\n    ca_file: %s\n", ep.Address, i, faultlab.Domain, i%100, lab.Files.Roots)
	}
	tfPath := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(tfPath, []byte(tf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	port := tb.FreePort(t)
	out := filepath.Join(dir, "out.jsonl")
	cfgPath := filepath.Join(dir, "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(fmt.Sprintf(cfgTmpl, port, tfPath, out)), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), duration+time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", cfgPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Signal(syscall.SIGTERM); _ = cmd.Wait() }()

	start := time.Now()
	cpu0, _, _, err := procStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	var maxRSS int64
	for time.Since(start) < duration {
		time.Sleep(time.Second)
		_, rss, _, err := procStat(cmd.Process.Pid)
		if err != nil {
			t.Fatalf("collector gone: %v\n%s", err, stderr.String())
		}
		maxRSS = max(maxRSS, rss)
	}
	cpu1, _, hwm, _ := procStat(cmd.Process.Pid)
	elapsed := time.Since(start)
	probes := countRecords(t, out)
	cores := (cpu1 - cpu0).Seconds() / elapsed.Seconds()
	perMin := float64(probes) / elapsed.Minutes()
	t.Logf("targets=%d interval=60s run=%s probes=%d (%.0f/min) cpu=%.3f cores (%.2f ms/probe) rss_max=%.1f MiB hwm=%.1f MiB",
		targets, elapsed.Round(time.Second), probes, perMin, cores, (cpu1-cpu0).Seconds()*1000/float64(max(probes, 1)), float64(maxRSS)/(1<<20), float64(hwm)/(1<<20))
	wantPerMin := float64(targets) * 0.95
	if perMin < wantPerMin {
		t.Errorf("only %.0f probes/min, want >= %.0f", perMin, wantPerMin)
	}
	if cores > 1 {
		t.Errorf("CPU %.2f cores, goal < 1", cores)
	}
	if hwm > 256<<20 {
		t.Errorf("peak RSS %.0f MiB, goal < 256 MiB", float64(hwm)/(1<<20))
	}
}

// countRecords counts probe log records in the file exporter output.
func countRecords(t *testing.T, path string) int {
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	n := 0
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 0, 1<<20), 256<<20)
	for sc.Scan() {
		if bytes.HasPrefix(sc.Bytes(), []byte(`{"resourceLogs"`)) {
			n += bytes.Count(sc.Bytes(), []byte(`"eventName":"certpulse.probe.result"`))
		}
	}
	return n
}
