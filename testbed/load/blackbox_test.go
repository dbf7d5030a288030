package load

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// blackboxPerProbe is the CPU per TLS probe of the tool most teams run for
// this today: Debian's prometheus-blackbox-exporter (a tcp prober with TLS
// and verification against the lab root), driven through its /probe
// handler as Prometheus would, n probes 4 at a time, measured from /proc
// for its process alone. ok is false when it is not installed.
func blackboxPerProbe(t *testing.T, ctx context.Context, dir, addr, roots string, n int) (perProbe time.Duration, ok bool) {
	bin, err := exec.LookPath("prometheus-blackbox-exporter")
	if err != nil {
		return 0, false
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(dir, "blackbox.yml")
	if err := os.WriteFile(cfg, fmt.Appendf(nil, "modules:\n  tls:\n    prober: tcp\n    timeout: 5s\n    tcp:\n      tls: true\n      tls_config: {ca_file: %q, server_name: probe.wild.%s}\n", roots, faultlab.Domain), 0o600); err != nil {
		t.Fatal(err)
	}
	port := tb.FreePort(t)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "--config.file="+cfg, fmt.Sprintf("--web.listen-address=127.0.0.1:%d", port), "--log.level=warn")
	exited, stderr := tb.Start(t, cmd)
	probe := fmt.Sprintf("http://127.0.0.1:%d/probe?module=tls&target=%s", port, url.QueryEscape(addr))
	get := func() (string, error) {
		resp, err := http.Get(probe)
		if err != nil {
			return "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return string(b), err
	}
	for deadline := time.Now().Add(20 * time.Second); ; time.Sleep(100 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("blackbox_exporter exited: %v\n%s", err, tb.Tail(stderr.String(), 2000))
		default:
		}
		body, err := get()
		if err == nil && strings.Contains(body, "\nprobe_success 1") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("blackbox_exporter: no successful probe in 20s: %v\n%s", err, tb.Tail(body, 2000))
		}
	}
	cpu0, _, _, err := procStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var failed sync.Map
	next := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if body, err := get(); err != nil || !strings.Contains(body, "\nprobe_success 1") {
					failed.Store(true, fmt.Sprint(err, tb.Tail(body, 500)))
				}
			}
		}()
	}
	for range n {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	if v, bad := failed.Load(true); bad {
		t.Fatalf("blackbox_exporter probe failed: %v", v)
	}
	cpu1, _, _, err := procStat(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return (cpu1 - cpu0) / time.Duration(n), true
}
