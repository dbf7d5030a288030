// Package e2e runs the built otelcol-certpulse distribution against the
// fault lab. It needs CERTPULSE_BIN (set by `make e2e` / `make test`).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
)

func binary(t *testing.T) string {
	bin := os.Getenv("CERTPULSE_BIN")
	if bin == "" {
		t.Skip("CERTPULSE_BIN not set: run `make e2e` (builds bin/otelcol-certpulse)")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("CERTPULSE_BIN=%s: %v", bin, err)
	}
	return bin
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

const configTmpl = `
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
  bearertokenauth:
    token: e2e-token
receivers:
  certlifecycle:
    endpoint: 127.0.0.1:%d
    auth:
      authenticator: bearertokenauth
    hmac:
      secret: e2e-hmac-secret-0123456789
  tlsprobe:
    collection_interval: 5s
    timeout: 2s
    vantage: e2e
    ocsp:
      timeout: 500ms
    client_profiles:
      lab-mtls:
        cert_file: %s
        key_file: %s
    targets_file: %s
processors:
  tlscorrelator:
    corroboration:
      vantages: 1
exporters:
  file/logs:
    path: %s
  file/metrics:
    path: %s
service:
  extensions: [health_check, bearertokenauth]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [tlsprobe, certlifecycle]
      processors: [tlscorrelator]
      exporters: [file/logs]
    metrics:
      receivers: [tlsprobe]
      exporters: [file/metrics]
`

// readRecords parses the file exporter's JSON lines and returns the latest
// probe result per server.address.
func readRecords(t *testing.T, path string) map[string]plog.LogRecord {
	out := map[string]plog.LogRecord{}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	var u plog.JSONUnmarshaler
	for sc.Scan() {
		ld, err := u.UnmarshalLogs(sc.Bytes())
		if err != nil {
			continue // a line being written
		}
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					if lrs.At(k).EventName() != attrs.EventProbeResult {
						continue
					}
					a, _ := lrs.At(k).Attributes().Get(attrs.ServerAddress)
					out[a.Str()] = lrs.At(k)
				}
			}
		}
	}
	return out
}

// TestDistributionAgainstLab runs bin/otelcol-certpulse against every lab
// endpoint and checks the reason code of each, and that healthy endpoints
// carry no reason at all.
func TestDistributionAgainstLab(t *testing.T) {
	bin := binary(t)
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
	logsPath, metricsPath := filepath.Join(dir, "logs.jsonl"), filepath.Join(dir, "metrics.jsonl")
	cfgPath := filepath.Join(dir, "config.yaml")
	lcPort := freePort(t)
	cfg := fmt.Sprintf(configTmpl, freePort(t), lcPort, files.ClientCert, files.ClientKey, files.TargetsFile, logsPath, metricsPath)
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", cfgPath)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	defer func() {
		if cmd.ProcessState == nil {
			_ = cmd.Process.Kill()
			<-exited
		}
	}()

	deadline := time.Now().Add(60 * time.Second)
	var recs map[string]plog.LogRecord
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("collector exited early: %v\n%s", err, stderr.String())
		case <-time.After(500 * time.Millisecond):
		}
		recs = readRecords(t, logsPath)
		if len(recs) >= len(lab.Endpoints) {
			break
		}
	}
	if len(recs) < len(lab.Endpoints) {
		t.Fatalf("only %d of %d endpoints reported within 60s\n%s", len(recs), len(lab.Endpoints), stderr.String())
	}
	var table strings.Builder
	for _, ep := range lab.Endpoints {
		lr, ok := recs[ep.ServerName]
		if !ok {
			t.Errorf("%s: no probe result", ep.Name)
			continue
		}
		got, _ := lr.Attributes().Get(attrs.ReasonKey)
		fmt.Fprintf(&table, "%-22s want %-22s got %-22s %s\n", ep.Name, ep.Want, got.Str(), lr.Body().Str())
		if got.Str() != string(ep.Want) {
			t.Errorf("%s: certpulse.reason=%q, want %q (%s)", ep.Name, got.Str(), ep.Want, lr.Body().Str())
		}
		if ep.Want == attrs.ReasonOK {
			rs, _ := lr.Attributes().Get(attrs.ReasonsKey)
			if rs.Slice().Len() != 0 {
				t.Errorf("%s: false reasons %v", ep.Name, rs.AsRaw())
			}
		}
	}
	t.Logf("reason per endpoint:\n%s", table.String())

	// A lifecycle event through the ready-made sender (bearer token + HMAC).
	send := exec.Command("sh", "-c", `printf '%s' '{"type":"deployed","id":"e2e-1","service":"lab-healthy","endpoints":["healthy.lab.certpulse.test:443"],"job_id":"deploy-7"}' | ../../distributions/otelcol-certpulse/hooks/certpulse-send`)
	send.Env = append(os.Environ(), fmt.Sprintf("CERTPULSE_URL=http://127.0.0.1:%d/v1/lifecycle", lcPort), "CERTPULSE_TOKEN=e2e-token", "CERTPULSE_HMAC_SECRET=e2e-hmac-secret-0123456789")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("certpulse-send: %v: %s", err, out)
	}
	unauth := exec.Command("curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", "-H", "Content-Type: application/json", "--data", `{"type":"deployed","service":"x"}`, fmt.Sprintf("http://127.0.0.1:%d/v1/lifecycle", lcPort))
	if out, _ := unauth.Output(); string(out) != "401" {
		t.Errorf("unauthenticated lifecycle POST: HTTP %s, want 401", out)
	}
	var lifecycle plog.LogRecord
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		if lr, ok := findEvent(logsPath, "certpulse.lifecycle.deployed"); ok {
			lifecycle = lr
			break
		}
	}
	if id, _ := lifecycle.Attributes().Get(attrs.LifecycleJobID); id.Str() != "deploy-7" {
		t.Errorf("lifecycle event not found in the output (job id %q)", id.Str())
	}

	// The correlator turned probe results and lifecycle events into incidents.
	send = exec.Command("sh", "-c", `printf '%s' '{"type":"renewal_failed","id":"e2e-2","service":"lab-expiring-soon","job_id":"acme-e2e","message":"ACME order failed"}' | ../../distributions/otelcol-certpulse/hooks/certpulse-send`)
	send.Env = append(os.Environ(), fmt.Sprintf("CERTPULSE_URL=http://127.0.0.1:%d/v1/lifecycle", lcPort), "CERTPULSE_TOKEN=e2e-token", "CERTPULSE_HMAC_SECRET=e2e-hmac-secret-0123456789")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("certpulse-send: %v: %s", err, out)
	}
	want := map[string]string{"lab-expired-leaf": "expired_leaf", "lab-hostname-mismatch": "hostname_mismatch", "lab-expiring-soon": "renewal_failed", "lab-revoked": "revoked"}
	var got map[string][]string
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end); time.Sleep(300 * time.Millisecond) {
		got = incidentsByService(logsPath)
		if hasAll(got, want) {
			break
		}
	}
	for svc, reason := range want {
		if !contains(got[svc], reason+"/opened") {
			t.Errorf("no opened %s incident for %s; got %v", reason, svc, got[svc])
		}
	}
	for _, svc := range []string{"lab-healthy", "lab-healthy-rsa-stapled", "lab-healthy-smtp", "lab-healthy-mtls"} {
		if len(got[svc]) > 0 {
			t.Errorf("incidents for healthy %s: %v", svc, got[svc])
		}
	}

	// Metrics arrive too, with time left for the expired leaf.
	data, err := os.ReadFile(metricsPath)
	if err != nil {
		t.Fatal(err)
	}
	var mu pmetric.JSONUnmarshaler
	found := false
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() && !found {
		md, err := mu.UnmarshalMetrics(sc.Bytes())
		if err != nil {
			continue
		}
		for i := 0; i < md.ResourceMetrics().Len() && !found; i++ {
			rm := md.ResourceMetrics().At(i)
			if a, _ := rm.Resource().Attributes().Get(attrs.ServerAddress); a.Str() != "expired-leaf."+faultlab.Domain {
				continue
			}
			ms := rm.ScopeMetrics().At(0).Metrics()
			for m := 0; m < ms.Len(); m++ {
				if ms.At(m).Name() == "tlsprobe.cert.time_left" && ms.At(m).Gauge().DataPoints().At(0).DoubleValue() < 0 {
					found = true
				}
			}
		}
	}
	if !found {
		t.Error("no negative tlsprobe.cert.time_left for the expired leaf")
	}

	// Graceful shutdown.
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("collector exit: %v\n%s", err, stderr.String())
		}
	case <-time.After(30 * time.Second):
		t.Error("collector did not stop within 30s of SIGTERM")
	}
}

// findEvent returns the first record with the given event name.
func findEvent(path, name string) (plog.LogRecord, bool) {
	data, err := os.ReadFile(path)
	if err != nil {
		return plog.LogRecord{}, false
	}
	var u plog.JSONUnmarshaler
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		ld, err := u.UnmarshalLogs(sc.Bytes())
		if err != nil {
			continue
		}
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					if lrs.At(k).EventName() == name {
						return lrs.At(k), true
					}
				}
			}
		}
	}
	return plog.LogRecord{}, false
}

// incidentsByService returns "reason/state" of every incident record, by service.
func incidentsByService(path string) map[string][]string {
	out := map[string][]string{}
	data, err := os.ReadFile(path)
	if err != nil {
		return out
	}
	var u plog.JSONUnmarshaler
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		ld, err := u.UnmarshalLogs(sc.Bytes())
		if err != nil {
			continue
		}
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			rl := ld.ResourceLogs().At(i)
			svc, _ := rl.Resource().Attributes().Get(attrs.ServiceName)
			sls := rl.ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					if lr.EventName() != attrs.EventIncident {
						continue
					}
					r, _ := lr.Attributes().Get(attrs.ReasonKey)
					st, _ := lr.Attributes().Get(attrs.IncidentState)
					out[svc.Str()] = append(out[svc.Str()], r.Str()+"/"+st.Str())
				}
			}
		}
	}
	return out
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func hasAll(got map[string][]string, want map[string]string) bool {
	for svc, reason := range want {
		if !contains(got[svc], reason+"/opened") {
			return false
		}
	}
	return true
}

// TestDistributionConfigsValidate checks the shipped agent, gateway and demo
// configs against the built distribution.
func TestDistributionConfigsValidate(t *testing.T) {
	bin := binary(t)
	for _, f := range []string{"agent.yaml", "gateway.yaml", "demo.yaml"} {
		cmd := exec.Command(bin, "validate", "--config", filepath.Join("../../distributions/otelcol-certpulse", f))
		cmd.Env = append(os.Environ(), "POD_IP=127.0.0.1", "NODE_NAME=node-1", "KAFKA_BROKERS=127.0.0.1:9092", "MIMIR_URL=http://127.0.0.1:9009",
			"LOKI_URL=http://127.0.0.1:3100", "CERTPULSE_WEBHOOK_TOKEN=t", "CERTPULSE_WEBHOOK_HMAC=0123456789abcdef0123",
			"CERTPULSE_LAB_DIR=/tmp", "CERTPULSE_DEMO_OUT=/tmp", "CERTPULSE_DEMO_TOKEN=t", "CERTPULSE_DEMO_HMAC_SECRET=0123456789abcdef0123")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not validate: %v\n%s", f, err, out)
		}
	}
}
