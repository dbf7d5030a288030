package gateway

import (
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// TestRemediationKilledMidAction: a collector probes the lab's expired-leaf
// endpoint, correlates and remediates with file_storage. Policy: a reload
// webhook, then a pins push (high risk: held for approval). The webhook
// receiver holds the reload request; while it is in flight (the attempt
// persisted, the call made) the collector is killed with SIGKILL and
// started again on the same state. Nothing is called twice, and the held
// approval is still there after the restart.
func TestRemediationKilledMidAction(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	files, err := lab.WriteFiles(filepath.Join(dir, "lab"))
	if err != nil {
		t.Fatal(err)
	}
	ep, _ := lab.Endpoint("expired-leaf")

	var mu sync.Mutex
	byKey := map[string]int{}
	arrived := make(chan struct{}, 16)
	release := make(chan struct{})
	hook := &http.Server{ReadHeaderTimeout: 5 * time.Second, Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		byKey[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		arrived <- struct{}{}
		select { // held: the collector dies while this call is in flight
		case <-release:
		case <-r.Context().Done():
		}
		w.WriteHeader(http.StatusNoContent)
	})}
	hookAddr := fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))
	hs := &switchable{addr: hookAddr, h: hook.Handler}
	hs.start(t)
	defer hs.stop()

	approval := fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))
	cfg := write(t, dir, "config.yaml", fmt.Sprintf(`extensions:
  file_storage:
    directory: %[1]s
    create_directory: true
  basicauth/approval:
    htpasswd:
      inline: operator:test-operator
receivers:
  tlsprobe:
    collection_interval: 2s
    timeout: 1500ms
    ocsp: {timeout: 500ms}
    allow_private_fetch_networks: [127.0.0.0/8]
    targets:
      - endpoint: %[2]s
        server_name: %[3]s
        service: payments
        environment: prod
        ca_file: %[4]s
processors:
  tlscorrelator:
    storage: file_storage
    corroboration: {vantages: 1}
exporters:
  remediation:
    dry_run: false
    storage: file_storage
    sending_queue:
      storage: file_storage
    verify:
      allow_private_fetch_networks: [127.0.0.0/8]
      tls: {ca_file: %[4]s}
    action_retry: {max_elapsed_time: 5s}
    policies:
      - name: fix-expired
        reasons: [expired_leaf]
        actions:
          - {name: reload, type: webhook, operation: reload, url: "http://%[5]s/reload", hmac_secret: %[6]s, timeout: 2m}
          - {name: push-pins, type: webhook, operation: pins, url: "http://%[5]s/pins", hmac_secret: %[6]s}
    approval:
      endpoint: %[7]s
      auth:
        authenticator: basicauth/approval
      ttl: 1h
service:
  extensions: [file_storage, basicauth/approval]
  telemetry:
    metrics:
      level: none
  pipelines:
    logs:
      receivers: [tlsprobe]
      processors: [tlscorrelator]
      exporters: [remediation]
`, filepath.Join(dir, "state"), ep.Address, ep.ServerName, files.Roots, hookAddr, actionHMAC, approval))

	col := start(t, bin, "remediation", nil, cfg)
	select {
	case <-arrived:
	case err := <-col.exited:
		t.Fatalf("collector exited: %v\n%s", err, tb.Tail(col.stderr.String(), 3000))
	case <-time.After(60 * time.Second):
		t.Fatalf("no webhook call within 60s\n%s", tb.Tail(col.stderr.String(), 3000))
	}
	// The reload call is in flight: kill.
	_ = col.cmd.Process.Signal(syscall.SIGKILL)
	<-col.exited
	col = start(t, bin, "remediation", nil, cfg)
	time.Sleep(15 * time.Second) // probes, correlation and decisions after the restart
	select {
	case err := <-col.exited:
		t.Fatalf("collector exited after the restart: %v\n%s", err, tb.Tail(col.stderr.String(), 3000))
	default:
	}
	mu.Lock()
	calls := map[string]int{}
	for k, n := range byKey {
		calls[k] = n
	}
	mu.Unlock()
	t.Logf("webhook calls by idempotency key after SIGKILL mid-call and restart: %v", calls)
	for k, n := range calls {
		if n > 1 {
			t.Errorf("key %s called %d times", k, n)
		}
	}
	if len(calls) != 1 {
		t.Errorf("want exactly the one reload call, got %v", calls)
	}
	_ = col.cmd.Process.Signal(syscall.SIGTERM)
	<-col.exited

	// Phase 2, on the same state: the reload answers at once, so the
	// policy goes on to the pins push, held for approval. Kill while it is
	// held; after the restart it is still held, and nothing ran again.
	close(release)
	release = make(chan struct{})
	hs.stop()
	mu.Lock()
	clear(byKey)
	mu.Unlock()
	hs.h = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		byKey[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})
	hs.start(t)
	_ = os.RemoveAll(filepath.Join(dir, "state"))
	col = start(t, bin, "remediation", nil, cfg)
	pending := func() []string {
		req, _ := http.NewRequest(http.MethodGet, "http://"+approval+"/api/v1/pending", nil)
		req.SetBasicAuth("operator", "test-operator")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil
		}
		defer resp.Body.Close()
		var body struct {
			Pending []struct {
				ID     string `json:"id"`
				Action string `json:"action"`
			} `json:"pending"`
		}
		_ = json.NewDecoder(resp.Body).Decode(&body)
		var out []string
		for _, p := range body.Pending {
			out = append(out, p.ID+"/"+p.Action)
		}
		return out
	}
	var held []string
	for deadline := time.Now().Add(60 * time.Second); len(held) == 0; time.Sleep(200 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no approval held within 60s\n%s", tb.Tail(col.stderr.String(), 3000))
		}
		held = pending()
	}
	_ = col.cmd.Process.Signal(syscall.SIGKILL)
	<-col.exited
	col = start(t, bin, "remediation", nil, cfg)
	var after []string
	for deadline := time.Now().Add(30 * time.Second); len(after) == 0 && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		after = pending()
	}
	time.Sleep(5 * time.Second)
	mu.Lock()
	t.Logf("approval held before SIGKILL %v, after the restart %v; webhook calls %v", held, after, byKey)
	if len(byKey) != 1 {
		t.Errorf("want the one reload call (the pins push waits for approval), got %v", byKey)
	}
	for k, n := range byKey {
		if n > 1 {
			t.Errorf("key %s called %d times", k, n)
		}
	}
	mu.Unlock()
	if fmt.Sprint(after) != fmt.Sprint(held) {
		t.Errorf("held approvals after the restart %v, want %v", after, held)
	}
	_ = col.cmd.Process.Signal(syscall.SIGTERM)
	<-col.exited
}
