package gateway

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// hostileDuration: 10s, or CERTPULSE_HOSTILE_DURATION (make
// testbed: 60s).
func hostileDuration(t *testing.T) time.Duration {
	if s := os.Getenv("CERTPULSE_HOSTILE_DURATION"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	return 10 * time.Second
}

// vmKiB reads a /proc/<pid>/status field (VmRSS, VmHWM) in KiB.
func vmKiB(pid int, field string) int {
	data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	for _, l := range strings.Split(string(data), "\n") {
		if strings.HasPrefix(l, field+":") {
			n, _ := strconv.Atoi(strings.Fields(l)[1])
			return n
		}
	}
	return 0
}

// TestHostileLifecycleLoad: 1,000 lifecycle requests/s to an agent (the
// shipped agent.yaml, into Kafka), 10% with an invalid signature and 10%
// larger than max_request_body_size. Valid events are accepted (2xx, then
// found in Kafka) or refused with 503 and Retry-After, never lost; invalid
// ones get 401 and 413; the agent's RSS stays bounded.
func TestHostileLifecycleLoad(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	dur := hostileDuration(t)
	kport := tb.FreePort(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kport), kfake.SeedTopics(partitions, topic, auditTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := fmt.Sprintf("127.0.0.1:%d", kport)
	targets := write(t, dir, "targets.yaml", "targets: []\n")
	override := write(t, dir, "override.yaml", fmt.Sprintf("receivers:\n  tlsprobe:\n    targets_file: %s\nservice:\n  telemetry:\n    metrics:\n      level: none\n", targets))
	const ip = "127.0.0.51"
	env := []string{"POD_IP=" + ip, "NODE_NAME=hostile", "CERTPULSE_STATE_DIR=" + filepath.Join(dir, "state"), "KAFKA_BROKERS=" + broker,
		"CERTPULSE_WEBHOOK_TOKEN=" + token, "CERTPULSE_WEBHOOK_HMAC=" + hmacSecret, "MIMIR_URL=http://127.0.0.1:1", "MIMIR_TENANT=certpulse"}
	shipped, _ := filepath.Abs(filepath.Join("..", "..", "distributions", "otelcol-certpulse", "agent.yaml"))
	agent := start(t, bin, "agent", env, shipped, override)
	healthy(t, "http://"+ip+":13133/")
	pid := agent.cmd.Process.Pid
	baseRSS := vmKiB(pid, "VmRSS")

	url := "http://" + ip + ":4380/v1/lifecycle"
	oversized := bytes.Repeat([]byte("x"), 1<<20+1024)
	type result struct {
		kind   string // valid, badsig, oversized
		id     string
		status int
		retry  bool
	}
	var (
		mu       sync.Mutex
		accepted = map[string]bool{}
		counts   = map[string]map[int]int{}
		noRetry  int
	)
	record := func(r result) {
		mu.Lock()
		defer mu.Unlock()
		if counts[r.kind] == nil {
			counts[r.kind] = map[int]int{}
		}
		counts[r.kind][r.status]++
		if r.kind == "valid" && r.status/100 == 2 {
			accepted["event:gateway-test/"+r.id] = true
		}
		if r.status == http.StatusServiceUnavailable && !r.retry {
			noRetry++
		}
	}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	send := func(i int) result {
		kind := "valid"
		switch i % 10 {
		case 3:
			kind = "badsig"
		case 7:
			kind = "oversized"
		}
		id := fmt.Sprintf("h-%06d", i)
		body, _ := json.Marshal(map[string]any{"type": "validated", "id": id, "service": fmt.Sprintf("svc-%d", i%13), "environment": "lab", "source": "gateway-test"})
		secret := hmacSecret
		if kind == "badsig" {
			secret = "not-the-secret-0123456789"
		}
		if kind == "oversized" {
			body = oversized
		}
		req, _ := tb.LifecycleRequest(url, token, secret, body)
		resp, err := client.Do(req)
		if err != nil {
			return result{kind: kind, id: id}
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return result{kind: kind, id: id, status: resp.StatusCode, retry: resp.Header.Get("Retry-After") != ""}
	}

	// 1,000 requests/s from 64 workers.
	jobs := make(chan int, 1000)
	var wg sync.WaitGroup
	for w := 0; w < 64; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range jobs {
				record(send(i))
			}
		}()
	}
	var peakRSS atomic.Int64
	stopSampling := make(chan struct{})
	go func() {
		for {
			select {
			case <-stopSampling:
				return
			case <-time.After(200 * time.Millisecond):
				if v := int64(vmKiB(pid, "VmRSS")); v > peakRSS.Load() {
					peakRSS.Store(v)
				}
			}
		}
	}()
	began := time.Now()
	sent := 0
	tick := time.NewTicker(10 * time.Millisecond)
	for time.Since(began) < dur {
		<-tick.C
		for k := 0; k < 10; k++ { // 10 per 10ms
			select {
			case jobs <- sent:
				sent++
			default: // the workers are behind: the rate is what they manage
			}
		}
	}
	tick.Stop()
	close(jobs)
	wg.Wait()
	elapsed := time.Since(began)
	close(stopSampling)
	hwm := vmKiB(pid, "VmHWM")

	time.Sleep(5 * time.Second) // the queue drains to Kafka
	_ = agent.cmd.Process.Signal(syscall.SIGTERM)
	<-agent.exited
	got := published(t, broker)
	lost := 0
	for id := range accepted {
		if !got[id] {
			lost++
		}
	}
	t.Logf("%d requests in %s (%.0f/s); by kind and status: %v; 503 without Retry-After: %d; valid accepted: %d, lost: %d; agent RSS: %d MiB before, peak %d MiB (VmHWM %d MiB)",
		sent, elapsed.Round(time.Second), float64(sent)/elapsed.Seconds(), counts, noRetry, len(accepted), lost, baseRSS>>10, peakRSS.Load()>>10, hwm>>10)
	for status := range counts["badsig"] {
		if status != http.StatusUnauthorized {
			t.Errorf("invalid signature answered %d, want 401", status)
		}
	}
	for status := range counts["oversized"] {
		if status != http.StatusRequestEntityTooLarge {
			t.Errorf("oversized body answered %d, want 413", status)
		}
	}
	for status := range counts["valid"] {
		if status/100 != 2 && status != http.StatusServiceUnavailable {
			t.Errorf("valid event answered %d, want 2xx or 503", status)
		}
	}
	if noRetry > 0 {
		t.Errorf("%d 503 answers without Retry-After", noRetry)
	}
	if lost > 0 {
		t.Errorf("%d valid events answered 2xx are not in Kafka", lost)
	}
	if hwm > 512<<10 {
		t.Errorf("agent peak RSS %d MiB, want under 512 MiB", hwm>>10)
	}
}
