// Package e2e runs the built otelcol-certpulse distribution against the
// fault lab. It needs CERTPULSE_BIN (set by `make e2e` / `make test`).
package e2e

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/certpulse/certpulse/exporter/remediationexporter"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/signature"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

func binary(t *testing.T) string {
	bin := tb.Env(t, "e2e", "CERTPULSE_BIN")[0]
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("CERTPULSE_BIN=%s: %v", bin, err)
	}
	return bin
}

const configTmpl = `
extensions:
  health_check:
    endpoint: 127.0.0.1:%d
  bearertokenauth:
    token: e2e-token
  certpulse_trigger:
receivers:
  certlifecycle:
    endpoint: 127.0.0.1:%d
    auth:
      authenticator: bearertokenauth
    hmac:
      secret: e2e-hmac-secret-0123456789
    trigger: certpulse_trigger
  # Probes only when a lifecycle event says so (its interval is a day).
  tlsprobe/triggered:
    collection_interval: 24h
    vantage: e2e-triggered
    allow_private_fetch_networks: [127.0.0.0/8]
    trigger: certpulse_trigger
    on_change:
      backoff: [1s]
    targets:
      - endpoint: TRIGGERED_ENDPOINT
        server_name: TRIGGERED_NAME
        service: lab-healthy
        ca_file: REMEDIATION_ROOTS
  tlsprobe:
    collection_interval: 5s
    timeout: 2s
    vantage: e2e
    allow_private_fetch_networks: [127.0.0.0/8]   # the lab's OCSP, CRL and AIA server
    ocsp:
      timeout: 500ms
    client_profiles:
      lab-mtls:
        cert_file: %s
        key_file: %s
    targets_file: %s
    files:
      - path: NODE_PKI
        service: lab-node-pki
processors:
  tlscorrelator:
    corroboration:
      vantages: 1
exporters:
  file/logs:
    path: %s
  file/metrics:
    path: %s
  remediation:
    verify:
      allow_private_fetch_networks: [127.0.0.0/8]
      tls:
        ca_file: REMEDIATION_ROOTS
    policies:
      - name: reload-expired
        reasons: [expired_leaf]
        actions:
          - name: reload
            type: webhook
            operation: reload
            url: REMEDIATION_HOOK
            hmac_secret: e2e-webhook-secret-0123456789
    audit:
      endpoint: http://127.0.0.1:REMEDIATION_AUDIT_PORT/v1/lifecycle
      headers:
        Authorization: Bearer e2e-token
      hmac_secret: e2e-hmac-secret-0123456789
service:
  extensions: [health_check, bearertokenauth, certpulse_trigger]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [tlsprobe, tlsprobe/triggered, certlifecycle]
      processors: [tlscorrelator]
      exporters: [file/logs, remediation]
    metrics:
      receivers: [tlsprobe]
      exporters: [file/metrics]
`

// readRecords returns the latest probe result per server.address in the
// file exporter's output.
func readRecords(t *testing.T, path string) map[string]plog.LogRecord {
	out := map[string]plog.LogRecord{}
	for _, r := range logtest.Named(logtest.ReadFile(path), attrs.EventProbeResult) {
		if r.Attr(attrs.EdgeNode) != "" {
			continue // the lab's node groups: checkNodeGroups
		}
		out[r.Attr(attrs.ServerAddress)] = r.LogRecord
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
	lcPort := tb.FreePort(t)
	cfg := fmt.Sprintf(configTmpl, tb.FreePort(t), lcPort, files.ClientCert, files.ClientKey, files.TargetsFile, logsPath, metricsPath)
	hook := newWebhook(t)
	node, err := faultlab.WriteNodeFiles(filepath.Join(dir, "node"))
	if err != nil {
		t.Fatal(err)
	}
	healthyEP, _ := lab.Endpoint("healthy")
	cfg = strings.NewReplacer("TRIGGERED_ENDPOINT", healthyEP.Address, "TRIGGERED_NAME", healthyEP.ServerName, "NODE_PKI", filepath.Join(node.Dir, "*"), "REMEDIATION_ROOTS", files.Roots, "REMEDIATION_HOOK", hook.URL, "REMEDIATION_AUDIT_PORT", fmt.Sprint(lcPort)).Replace(cfg)
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

	// The node groups: every node behind a name, as `make run` shows them.
	checkNodeGroups(t, lab, logsPath)

	// The records as Loki would index them.
	checkLokiContract(t, logsPath)

	// Certificate files on the node, judged without a handshake.
	fileReasons := map[string]string{}
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end) && len(fileReasons) < len(node.Files); time.Sleep(300 * time.Millisecond) {
		fileReasons = map[string]string{}
		for _, lr := range findEvents(logsPath, attrs.EventFileResult) {
			p, _ := lr.Attributes().Get(attrs.FilePath)
			r, _ := lr.Attributes().Get(attrs.ReasonKey)
			name := filepath.Base(p.Str())
			if prev, ok := fileReasons[name]; !ok || attrs.Rank(attrs.Reason(r.Str())) < attrs.Rank(attrs.Reason(prev)) {
				fileReasons[name] = r.Str()
			}
		}
	}
	for _, f := range node.Files {
		if fileReasons[f.Name] != string(f.Want) {
			t.Errorf("node file %s: certpulse.reason=%q, want %q", f.Name, fileReasons[f.Name], f.Want)
		}
	}

	// A lifecycle event through the ready-made sender (bearer token + HMAC).
	send := exec.Command("sh", "-c", `printf '%s' '{"type":"deployed","id":"e2e-1","service":"lab-healthy","endpoints":["healthy.lab.certpulse.test:443"],"job_id":"deploy-7"}' | ../../distributions/otelcol-certpulse/hooks/certpulse-send`)
	send.Env = append(os.Environ(), fmt.Sprintf("CERTPULSE_URL=http://127.0.0.1:%d/v1/lifecycle", lcPort), "CERTPULSE_TOKEN=e2e-token", "CERTPULSE_HMAC_SECRET=e2e-hmac-secret-0123456789")
	deploySent := time.Now()
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("certpulse-send: %v: %s", err, out)
	}
	// The deploy event makes tlsprobe/triggered (interval a day) probe the
	// service at once: event-driven probing through certpulse_trigger.
	triggered := func() int {
		n := 0
		for _, r := range logtest.Named(logtest.ReadFile(logsPath), attrs.EventProbeResult) {
			if v, _ := r.Resource.Attributes().Get(attrs.Vantage); v.Str() == "e2e-triggered" {
				n++
			}
		}
		return n
	}
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end) && triggered() == 0; time.Sleep(50 * time.Millisecond) {
	}
	if triggered() == 0 {
		t.Errorf("no triggered probe after the deploy event")
	} else {
		t.Logf("deploy event to triggered probe result on disk: %s", time.Since(deploySent).Round(time.Millisecond))
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

	// The remediation exporter verified the expired leaf by re-probing it,
	// called the signed webhook once, and audited back into certlifecycle.
	var sent bool
	for end := time.Now().Add(15 * time.Second); time.Now().Before(end) && !sent; time.Sleep(300 * time.Millisecond) {
		for _, lr := range findEvents(logsPath, "certpulse.lifecycle.remediation") {
			stage, _ := lr.Attributes().Get(attrs.LifecyclePipelineStage)
			if stage.Str() == "sent" && strings.Contains(lr.Body().Str(), "reload") {
				sent = true
			}
		}
	}
	if !sent {
		t.Errorf("no `sent` remediation audit event in the output")
	}
	calls, badSig := hook.get()
	if len(calls) != 1 || !strings.HasSuffix(calls[0], ":reload:1") || badSig != 0 {
		t.Errorf("webhook calls %v (bad signatures %d), want one signed call with key <incident>:reload:1", calls, badSig)
	}
	var stages []string
	for _, lr := range findEvents(logsPath, "certpulse.lifecycle.remediation") {
		stage, _ := lr.Attributes().Get(attrs.LifecyclePipelineStage)
		stages = append(stages, stage.Str())
	}
	if !contains(stages, "verified") {
		t.Errorf("remediation did not verify first: %v", stages)
	}

	// The loop holds: after the webhook, the correlator announces the
	// incident suppressed, the exporter audits `skipped` for it, and the
	// hold lasts (remediation_hold 15m) through the next probe rounds: no
	// flapping back open, no second call.
	time.Sleep(12 * time.Second) // two more probe rounds at 5s
	var after []string
	suppressed := false
	for _, s := range incidentsByService(logsPath)["lab-expired-leaf"] {
		if suppressed {
			after = append(after, s)
		}
		if s == "expired_leaf/suppressed" {
			suppressed = true
		}
	}
	if !suppressed {
		t.Errorf("the incident was not suppressed while its remediation was in progress: %v", incidentsByService(logsPath)["lab-expired-leaf"])
	}
	for _, s := range after {
		if s != "expired_leaf/suppressed" {
			t.Errorf("the remediation hold did not last: %v after suppressed", after)
			break
		}
	}
	if calls, _ := hook.get(); len(calls) != 1 {
		t.Errorf("webhook called %d times during the hold, want 1: %v", len(calls), calls)
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
	if all := findEvents(path, name); len(all) > 0 {
		return all[0], true
	}
	return plog.LogRecord{}, false
}

// findEvents returns every record named name in the file exporter's output.
func findEvents(path, name string) []plog.LogRecord {
	var out []plog.LogRecord
	for _, r := range logtest.Named(logtest.ReadFile(path), name) {
		out = append(out, r.LogRecord)
	}
	return out
}

// incidentsByService returns "reason/state" of every incident record, by service.
func incidentsByService(path string) map[string][]string {
	out := map[string][]string{}
	for _, r := range logtest.Named(logtest.ReadFile(path), attrs.EventIncident) {
		svc, _ := r.Resource.Attributes().Get(attrs.ServiceName)
		out[svc.Str()] = append(out[svc.Str()], r.Attr(attrs.ReasonKey)+"/"+r.Attr(attrs.IncidentState))
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

// TestDistributionConfigsValidate checks the shipped agent, single-tier,
// gateway and demo configs against the built distribution.
func TestDistributionConfigsValidate(t *testing.T) {
	bin := binary(t)
	// Each tier with the edge overlays (distributions/edge): the tier's
	// and every proxy's.
	combos := [][]string{{"agent.yaml"}, {"single-tier.yaml"}, {"gateway.yaml"}, {"demo.yaml"},
		// Automated remediation with the runbooks (distributions/runbooks).
		{"single-tier.yaml", "../runbooks/remediation.yaml"},
		// Network Error Logging (distributions/nel).
		{"single-tier.yaml", "../nel/single-tier.yaml"}, {"agent.yaml", "../nel/agent.yaml"}, {"gateway.yaml", "../nel/gateway.yaml"}}
	for _, tier := range []string{"agent.yaml", "single-tier.yaml"} {
		combo := []string{tier, "../edge/" + tier}
		for _, overlay := range []string{"nginx/collector.yaml", "haproxy/collector.yaml", "caddy/collector.yaml", "envoy/collector.yaml", "envoy/stats.yaml"} {
			combo = append(combo, "../edge/"+overlay)
		}
		combos = append(combos, combo)
	}
	for _, files := range combos {
		f := strings.Join(files, " + ")
		var args []string
		for _, c := range files {
			args = append(args, "--config", filepath.Join("../../distributions/otelcol-certpulse", c))
		}
		cmd := exec.Command(bin, append([]string{"validate"}, args...)...)
		cmd.Env = append(os.Environ(), "POD_IP=127.0.0.1", "NODE_NAME=node-1", "KAFKA_BROKERS=127.0.0.1:9092", "MIMIR_URL=http://127.0.0.1:9009",
			"LOKI_URL=http://127.0.0.1:3100", "MIMIR_TENANT=t", "LOKI_TENANT=t", "CERTPULSE_STATE_DIR=/tmp", "CERTPULSE_WEBHOOK_TOKEN=t", "CERTPULSE_WEBHOOK_HMAC=0123456789abcdef0123",
			"CERTPULSE_LAB_DIR=/tmp", "CERTPULSE_DEMO_OUT=/tmp", "CERTPULSE_DEMO_TOKEN=t", "CERTPULSE_DEMO_HMAC_SECRET=0123456789abcdef0123",
			"CERTPULSE_APPROVERS_HTPASSWD=/dev/null", "CERTPULSE_VERIFY_CA_FILE=/etc/ssl/certs/ca-certificates.crt", "CERTPULSE_RELOAD_WEBHOOK=https://deploy.example.com/hooks/reload",
			"CERTPULSE_ACTION_HMAC=0123456789abcdef0123", "CERTPULSE_TRAIL_SECRET=0123456789abcdef-trail", "CERTPULSE_RUNBOOK_URL=http://127.0.0.1:9000/hooks", "CERTPULSE_RUNBOOK_HMAC=0123456789abcdef0123", "ALERTMANAGER_URL=http://127.0.0.1:9093", "CERTPULSE_LIFECYCLE_URL=http://127.0.0.1:4380/v1/lifecycle",
			"NGINX_TLS_LOG=/var/log/nginx/tls.json", "NGINX_ERROR_LOG=/var/log/nginx/error.log", "HAPROXY_LOG=/var/log/haproxy.json", "CADDY_ACCESS_LOG=/var/log/caddy/access.json", "ENVOY_TLS_LOG=/var/log/envoy/tls.json",
			"CERTPULSE_NEL_ENDPOINT=0.0.0.0:4390", "CERTPULSE_NEL_CERT_FILE=/tmp/nel.crt", "CERTPULSE_NEL_KEY_FILE=/tmp/nel.key")
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("%s does not validate: %v\n%s", f, err, out)
		}
	}
}

// webhook is a real HTTP receiver for the remediation exporter's actions.
type webhook struct {
	*httptest.Server
	mu     sync.Mutex
	keys   []string
	badSig int
}

func newWebhook(t *testing.T) *webhook {
	h := &webhook{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
		want := signature.Value([]byte("e2e-webhook-secret-0123456789"), r.Header.Get(signature.TimestampHeader), body)
		h.mu.Lock()
		defer h.mu.Unlock()
		if r.Header.Get(signature.SignatureHeader) != want {
			h.badSig++
		}
		h.keys = append(h.keys, r.Header.Get(remediationexporter.HeaderIdempotencyKey))
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *webhook) get() ([]string, int) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys...), h.badSig
}

// checkNodeGroups: each node of the lab's node groups reports its expected
// reason (resumption_failed for the node whose ticket keys differ) and the
// node on the previous certificate is lagging.
func checkNodeGroups(t *testing.T, lab *faultlab.Lab, logsPath string) {
	t.Helper()
	want := 0
	for _, g := range lab.NodeGroups {
		want += len(g.Nodes)
	}
	nodes := map[string]logtest.Record{}
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end) && len(nodes) < want; time.Sleep(300 * time.Millisecond) {
		for _, r := range logtest.Named(logtest.ReadFile(logsPath), attrs.EventProbeResult) {
			if n := r.Attr(attrs.EdgeNode); n != "" && r.Attr(attrs.ResumptionResult) != "not_checked" || r.Attr(attrs.NodesLagging) == "true" {
				nodes[r.Attr(attrs.EdgeNode)] = r
			}
		}
	}
	for _, g := range lab.NodeGroups {
		for i, n := range g.Nodes {
			r, ok := nodes[n]
			if !ok {
				t.Errorf("node group %s: no result for node %s", g.Name, n)
				continue
			}
			if got := r.Attr(attrs.ReasonKey); got != string(g.Want[i]) {
				t.Errorf("node group %s node %d: certpulse.reason=%q, want %q (%s)", g.Name, i+1, got, g.Want[i], r.Body().Str())
			}
			if lag := r.Attr(attrs.NodesLagging) == "true"; lag != g.Lagging[i] {
				t.Errorf("node group %s node %d: lagging %v, want %v (%s)", g.Name, i+1, lag, g.Lagging[i], r.Body().Str())
			}
		}
	}
}
