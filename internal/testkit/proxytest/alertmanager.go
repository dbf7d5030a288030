package proxytest

import (
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// StartAlertmanager runs Debian's prometheus-alertmanager on 127.0.0.1
// (clustering off, every alert to a receiver that sends nothing) until the
// test ends, and returns its base URL once it is ready.
func StartAlertmanager(t testing.TB) string {
	t.Helper()
	bin := Need(t, "prometheus-alertmanager")
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	if err := os.WriteFile(conf, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	_ = ln.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+conf, "--storage.path="+dir,
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	base := "http://" + addr
	for end := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		if res, err := http.Get(base + "/-/ready"); err == nil {
			res.Body.Close()
			if res.StatusCode == http.StatusOK {
				return base
			}
		}
		if time.Now().After(end) {
			t.Fatalf("alertmanager did not become ready on %s", addr)
		}
	}
}

// Alert is an alert as Alertmanager's API v2 lists it.
type Alert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
	EndsAt time.Time `json:"endsAt"`
}

// Alerts lists the alerts Alertmanager at base holds.
func Alerts(t testing.TB, base string) []Alert {
	t.Helper()
	res, err := http.Get(base + "/api/v2/alerts")
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out []Alert
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(fmt.Errorf("alertmanager alerts: %w", err))
	}
	return out
}
