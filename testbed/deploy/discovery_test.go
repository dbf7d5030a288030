package deploy

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// startLabProcess runs bin/certpulse-lab (a process of its own, so that
// host_observer sees its listening ports under its name) and returns its
// endpoints once it is ready.
func startLabProcess(t *testing.T, labBin string) (faultlab.Files, []faultlab.Endpoint) {
	t.Helper()
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, labBin, "-dir", dir, "-quiet")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	files := faultlab.Files{Dir: dir, Roots: filepath.Join(dir, "roots.pem"), TargetsFile: filepath.Join(dir, "targets.yaml"), Endpoints: filepath.Join(dir, "endpoints.json")}
	for end := time.Now().Add(30 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := os.Stat(files.TargetsFile); err == nil {
			break
		}
	}
	data, err := os.ReadFile(files.Endpoints)
	if err != nil {
		t.Fatalf("the lab did not start: %v", err)
	}
	var eps []faultlab.Endpoint
	if err := json.Unmarshal(data, &eps); err != nil {
		t.Fatal(err)
	}
	return files, eps
}

// TestReceiverCreatorHostObserver runs the discovery path for real:
// host_observer finds the lab's listening ports, receiver_creator starts one
// tlsprobe per port from a rule, with server_name templated from the port,
// and every lab endpoint reports its expected reason. (k8s_observer feeds the
// same templating in a cluster; none can run here.)
func TestReceiverCreatorHostObserver(t *testing.T) {
	bin := need(t, "CERTPULSE_BIN", "run `make deploy`")
	labBin := need(t, "CERTPULSE_LAB_BIN", "run `make deploy`")
	files, all := startLabProcess(t, labBin)
	// Every endpoint but the one where nothing listens (connection_refused)
	// is a listening port of the lab process.
	var eps []faultlab.Endpoint
	for _, ep := range all {
		if ep.Want != attrs.ReasonConnectionRefused {
			eps = append(eps, ep)
		}
	}

	// server_name from the port: one expression over the lab's ports.
	expr := `"unknown.lab.certpulse.test"`
	for _, ep := range eps {
		_, port, _ := strings.Cut(ep.Address, ":")
		expr = fmt.Sprintf(`port == %s ? %q : (%s)`, port, ep.ServerName, expr)
	}
	out := filepath.Join(t.TempDir(), "logs.jsonl")
	config := fmt.Sprintf(`
extensions:
  host_observer:
    refresh_interval: 1s
receivers:
  receiver_creator:
    watch_observers: [host_observer]
    receivers:
      tlsprobe:
        rule: type == "hostport" && process_name == "certpulse-lab"
        config:
          collection_interval: 2s
          timeout: 1500ms
          ocsp:
            timeout: 500ms
          vantage: discovery
          allow_private_fetch_networks: [127.0.0.0/8]
          endpoint: '%s'
          server_name: '%s'
          service: 'lab-port-%s'
          ca_file: %s
exporters:
  file/logs:
    path: %s
service:
  extensions: [host_observer]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [receiver_creator]
      exporters: [file/logs]
`, "`endpoint`", "`"+expr+"`", "`port`", files.Roots, out)
	cfgPath := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(cfgPath, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config", cfgPath)
	exited, stderr := tb.Start(t, cmd)

	// Endpoints that need more than a name (STARTTLS, the mTLS profile,
	// pins) are probed too but judged without those settings.
	plain := map[string]faultlab.Endpoint{}
	for _, ep := range eps {
		if ep.StartTLS == "" && ep.Profile == "" && len(ep.Pins) == 0 {
			plain[ep.ServerName] = ep
		}
	}
	var got map[string]plog.LogRecord
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); {
		select {
		case err := <-exited:
			t.Fatalf("collector exited: %v\n%s", err, stderr.String())
		case <-time.After(500 * time.Millisecond):
		}
		got = probeRecords(out)
		missing := 0
		for _, ep := range eps {
			if _, ok := got[ep.ServerName]; !ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
	}
	for _, ep := range eps {
		lr, ok := got[ep.ServerName]
		if !ok {
			t.Errorf("%s (%s): not discovered and probed", ep.Name, ep.Address)
			continue
		}
		port, _ := lr.Attributes().Get(attrs.ServerPort)
		if fmt.Sprint(port.Int()) != ep.Address[strings.LastIndex(ep.Address, ":")+1:] {
			t.Errorf("%s: probed port %d, lab address %s", ep.Name, port.Int(), ep.Address)
		}
		if _, ok := plain[ep.ServerName]; !ok {
			continue
		}
		if r, _ := lr.Attributes().Get(attrs.ReasonKey); r.Str() != string(ep.Want) {
			t.Errorf("%s: certpulse.reason=%s, want %s (%s)", ep.Name, r.Str(), ep.Want, lr.Body().Str())
		}
	}
	if t.Failed() {
		t.Logf("collector log:\n%s", stderr.String())
	}
}

// probeRecords reads the file exporter's output: the latest probe result
// per server.address.
func probeRecords(path string) map[string]plog.LogRecord {
	out := map[string]plog.LogRecord{}
	for _, r := range logtest.Named(logtest.ReadFile(path), attrs.EventProbeResult) {
		out[r.Attr(attrs.ServerAddress)] = r.LogRecord
	}
	return out
}
