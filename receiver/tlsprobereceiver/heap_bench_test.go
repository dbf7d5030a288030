package tlsprobereceiver

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"runtime"
	"runtime/metrics"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// BenchmarkTargetsHeap: the heap a targets file of 100,000 entries costs
// an agent, at its peak while the file is decoded and retained once the
// targets are scheduled (`go test -run x -bench TargetsHeap -benchtime 1x
// ./receiver/tlsprobereceiver/`; docs/performance.md).
func BenchmarkTargetsHeap(b *testing.B) {
	const n = 100_000
	dir := b.TempDir()
	ca := filepath.Join(dir, "ca.pem")
	if err := os.WriteFile(ca, nil, 0o600); err != nil {
		b.Fatal(err)
	}
	for _, format := range []string{"yaml", "json"} {
		var sb strings.Builder
		if format == "yaml" {
			sb.WriteString("targets:\n")
			for i := range n {
				fmt.Fprintf(&sb, "  - {endpoint: \"127.0.0.1:8443\", server_name: t%06d.scale.test, service: svc%03d, criticality: high}\n", i, i%500)
			}
		} else {
			sb.WriteString("{\"targets\": [\n")
			for i := range n {
				if i > 0 {
					sb.WriteString(",\n")
				}
				fmt.Fprintf(&sb, "  {\"endpoint\": \"127.0.0.1:8443\", \"server_name\": \"t%06d.scale.test\", \"service\": \"svc%03d\", \"criticality\": \"high\"}", i, i%500)
			}
			sb.WriteString("\n]}\n")
		}
		path := filepath.Join(dir, "targets."+format)
		if err := os.WriteFile(path, []byte(sb.String()), 0o600); err != nil {
			b.Fatal(err)
		}
		b.Run(format, func(b *testing.B) {
			for range b.N {
				cfg := createDefaultConfig()
				cfg.TargetsFile = path
				r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type))
				if err != nil {
					b.Fatal(err)
				}
				if r.profiles, err = loadProfiles(context.Background(), cfg); err != nil {
					b.Fatal(err)
				}
				base := heapLive()
				stop, peak := heapPeak()
				ts, err := r.loadFile(true)
				if err != nil {
					b.Fatal(err)
				}
				r.sched = newScheduler(cfg.MaxConcurrency, r.probe)
				r.setTargets(ts)
				stop()
				retained := heapLive() - base
				b.ReportMetric(float64(peak()-base)/n, "peak-B/target")
				b.ReportMetric(float64(retained)/n, "retained-B/target")
				runtime.KeepAlive(r)
			}
		})
	}
}

// heapLive is the heap's object bytes after a GC.
func heapLive() uint64 {
	runtime.GC()
	return heapObjects()
}

func heapObjects() uint64 {
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}}
	metrics.Read(s)
	return s[0].Value.Uint64()
}

// heapPeak samples the heap's object bytes every millisecond until stop.
func heapPeak() (stop func(), peak func() uint64) {
	var max atomic.Uint64
	done := make(chan struct{})
	exited := make(chan struct{})
	go func() {
		defer close(exited)
		t := time.NewTicker(time.Millisecond)
		defer t.Stop()
		for {
			if v := heapObjects(); v > max.Load() {
				max.Store(v)
			}
			select {
			case <-done:
				return
			case <-t.C:
			}
		}
	}()
	return func() { close(done); <-exited }, max.Load
}
