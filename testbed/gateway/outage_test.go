package gateway

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// outage returns how long the log backend stays down: 20s, or
// CERTPULSE_OUTAGE (make testbed: 2m).
func outage(t *testing.T) time.Duration {
	if s := os.Getenv("CERTPULSE_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return 20 * time.Second
}

// switchable serves h on addr and can be stopped and started again on the
// same address (connection refused while stopped).
type switchable struct {
	addr string
	h    http.Handler
	mu   sync.Mutex
	srv  *http.Server
}

func (s *switchable) start(t *testing.T) {
	t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 50; i++ {
		if ln, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: s.h, ReadHeaderTimeout: 5 * time.Second}
	s.mu.Lock()
	s.srv = srv
	s.mu.Unlock()
	go func() {
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			t.Errorf("sink: %v", err)
		}
	}()
}

func (s *switchable) stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.srv != nil {
		_ = s.srv.Close()
		s.srv = nil
	}
}

// TestLogBackendOutageLosesNothing: the single-tier collector (shipped
// single-tier.yaml) probes the lab and takes lifecycle events while its log
// backend (Loki's stand-in, an OTLP/HTTP receiver) is down, then comes
// back: the persistent queue drains, every accepted event and every probe
// result arrives.
func TestLogBackendOutageLosesNothing(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	down := outage(t)
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	files, err := lab.WriteFiles(filepath.Join(dir, "lab"))
	if err != nil {
		t.Fatal(err)
	}
	loki := tb.NewLogSink()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	backend := &switchable{addr: addr, h: loki}
	backend.start(t)
	defer backend.stop()

	const ip = "127.0.0.41"
	interval := 3 * time.Second
	override := write(t, dir, "override.yaml", fmt.Sprintf(`receivers:
  tlsprobe:
    collection_interval: %s
    timeout: 2s
    ocsp:
      timeout: 1s
    allow_private_fetch_networks: [127.0.0.0/8]
    targets_file: %s
    client_profiles:
      %s:
        cert_file: %s
        key_file: %s
processors:
  tlscorrelator:
    healthy_results: all          # every probe result passes, so each can be accounted for
service:
  telemetry:
    metrics:
      level: none
`, interval, files.TargetsFile, faultlab.MTLSProfile, files.ClientCert, files.ClientKey))
	shipped, _ := filepath.Abs(filepath.Join("..", "..", "distributions", "otelcol-certpulse", "single-tier.yaml"))
	env := []string{"POD_IP=" + ip, "NODE_NAME=outage", "CERTPULSE_STATE_DIR=" + filepath.Join(dir, "state"), "CERTPULSE_WEBHOOK_TOKEN=" + token,
		"CERTPULSE_WEBHOOK_HMAC=" + hmacSecret, "MIMIR_URL=http://" + addr + "/mimir", "MIMIR_TENANT=certpulse", "LOKI_URL=http://" + addr + "/loki", "LOKI_TENANT=certpulse"}
	col := start(t, bin, "single-tier", env, shipped, override)
	healthy(t, "http://"+ip+":13133/")

	var mu sync.Mutex
	accepted := map[string]bool{}
	posted, refused := 0, map[int]int{}
	stopPosting, done := make(chan struct{}), make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 2 * time.Second}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopPosting:
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("out-%05d", i)
			st := postEvent(client, "http://"+ip+":4380/v1/lifecycle", id, "svc-outage")
			mu.Lock()
			posted++
			if st/100 == 2 {
				accepted["event:gateway-test/"+id] = true
			} else {
				refused[st]++
			}
			mu.Unlock()
		}
	}()
	time.Sleep(10 * time.Second)
	backend.stop()
	downAt := time.Now()
	time.Sleep(down)
	backend.start(t)
	upAt := time.Now()
	t.Logf("log backend down for %s", upAt.Sub(downAt).Round(time.Second))
	time.Sleep(10 * time.Second)
	close(stopPosting)
	<-done

	// Every accepted event arrives; the drain time is measured.
	var missing []string
	var drained time.Duration
	for deadline := time.Now().Add(3 * time.Minute); ; time.Sleep(time.Second) {
		got := map[string]bool{}
		for _, recs := range loki.ByName() {
			for _, r := range recs {
				got[recordID(r)] = true
			}
		}
		missing = missing[:0]
		mu.Lock()
		for id := range accepted {
			if !got[id] {
				missing = append(missing, id)
			}
		}
		mu.Unlock()
		if len(missing) == 0 {
			drained = time.Since(upAt)
			break
		}
		if time.Now().After(deadline) {
			break
		}
	}
	select {
	case err := <-col.exited:
		t.Fatalf("collector exited: %v", err)
	default:
	}
	_ = col.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-col.exited:
	case <-time.After(30 * time.Second):
		t.Error("the collector did not stop within 30s of SIGTERM")
	}
	sort.Strings(missing)

	// Probe results: each target's series has no hole across the outage.
	series := map[string][]time.Time{}
	for _, recs := range loki.ByName() {
		for _, r := range recs {
			if r.EventName() != attrs.EventProbeResult {
				continue
			}
			k := r.Attr(attrs.ServerAddress) + "|" + r.Attr(attrs.ClientProfile) + "|" + r.Attr(attrs.EdgeNode)
			series[k] = append(series[k], r.Timestamp().AsTime())
		}
	}
	holes, probes := 0, 0
	for k, ts := range series {
		sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
		probes += len(ts)
		for i := 1; i < len(ts); i++ {
			if ts[i].Sub(ts[i-1]) > 3*interval && ts[i].After(downAt.Add(-interval)) && ts[i-1].Before(upAt.Add(interval)) {
				holes++
				t.Errorf("%s: no probe result between %s and %s", k, ts[i-1].Format("15:04:05"), ts[i].Format("15:04:05"))
			}
		}
	}
	mu.Lock()
	t.Logf("lifecycle events: %d posted, %d accepted, refused by status %v; missing after the drain: %d; drained %s after the backend returned; probe results: %d in %d series, holes: %d",
		posted, len(accepted), refused, len(missing), drained.Round(time.Second), probes, len(series), holes)
	mu.Unlock()
	if len(missing) > 0 {
		t.Errorf("%d accepted events never reached the log backend, e.g. %v", len(missing), missing[:min(10, len(missing))])
	}
}
