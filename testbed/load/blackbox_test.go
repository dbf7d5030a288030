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
	base := fmt.Sprintf("http://127.0.0.1:%d", tb.FreePort(t))
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pid := tb.StartReady(t, ctx, "blackbox_exporter", base+"/-/healthy", nil, bin, "--config.file="+cfg, "--web.listen-address="+strings.TrimPrefix(base, "http://"), "--log.level=warn")
	probe := base + "/probe?module=tls&target=" + url.QueryEscape(addr)
	// probeOK is "" when a probe succeeded, else what went wrong.
	probeOK := func() string {
		resp, err := http.Get(probe)
		if err != nil {
			return err.Error()
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		if err != nil || !strings.Contains(string(b), "\nprobe_success 1") {
			return fmt.Sprint(err, tb.Tail(string(b), 500))
		}
		return ""
	}
	if bad := probeOK(); bad != "" {
		t.Fatalf("blackbox_exporter: the first probe failed: %s", bad)
	}
	cpu0, _, _, err := procStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	var (
		wg     sync.WaitGroup
		mu     sync.Mutex
		failed string
	)
	next := make(chan struct{})
	for range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range next {
				if bad := probeOK(); bad != "" {
					mu.Lock()
					failed = bad
					mu.Unlock()
				}
			}
		}()
	}
	for range n {
		next <- struct{}{}
	}
	close(next)
	wg.Wait()
	if failed != "" {
		t.Fatalf("blackbox_exporter probe failed: %s", failed)
	}
	cpu1, _, _, err := procStat(pid)
	if err != nil {
		t.Fatal(err)
	}
	return (cpu1 - cpu0) / time.Duration(n), true
}
