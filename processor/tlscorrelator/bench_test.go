package tlscorrelator

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// benchBatch builds a batch of probe results over n endpoints (2 vantages),
// one in twenty failing with the same bad chain. Each result has its own
// copy of the fingerprints, as results from tlsprobe do.
func benchBatch(size, endpoints, offset int) plog.Logs {
	ld := plog.NewLogs()
	for i := 0; i < size; i++ {
		k := (offset + i) % endpoints
		p := probe{service: fmt.Sprintf("svc-%d", k%500), server: fmt.Sprintf("h%d.example.com", k/2), vantage: []string{"eu", "us"}[k%2],
			chain: strings.Clone(chainA), leaf: strings.Clone(leafA), spki: strings.Clone(spkiA)}
		if k%20 == 0 {
			p.reason, p.chain = attrs.ReasonExpiredLeaf, chainB
		}
		p.appendTo(ld)
	}
	return ld
}

// BenchmarkProcess measures records per second through the correlator on
// one goroutine (run with -cpu 1): extraction, enrichment, rules, incidents.
func BenchmarkProcess(b *testing.B) {
	c, err := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	const batch = 1000
	const endpoints = 10000
	batches := make([]plog.Logs, endpoints/batch)
	for i := range batches {
		batches[i] = benchBatch(batch, endpoints, i*batch)
	}
	ctx := context.Background()
	b.ResetTimer()
	start := time.Now()
	records := 0
	for i := 0; i < b.N; i++ {
		ld := batches[i%len(batches)]
		ts := pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * time.Second))
		rls := ld.ResourceLogs()
		for j := 0; j < rls.Len(); j++ {
			rls.At(j).ScopeLogs().At(0).LogRecords().At(0).SetTimestamp(ts)
		}
		if err := c.consumeLogs(ctx, ld); err != nil {
			b.Fatal(err)
		}
		// drop appended incident records so the batch stays the same size
		ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
			return rl.ScopeLogs().At(0).LogRecords().At(0).EventName() == attrs.EventIncident
		})
		records += batch
	}
	b.ReportMetric(float64(records)/time.Since(start).Seconds(), "records/s")
}

// BenchmarkStatePerEndpoint measures heap bytes of state per tracked
// endpoint with 100k endpoints, and persisted bytes per endpoint.
func BenchmarkStatePerEndpoint(b *testing.B) {
	for i := 0; i < b.N; i++ {
		const n = 100000
		runtime.GC()
		var before, after runtime.MemStats
		runtime.ReadMemStats(&before)
		c, _ := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
		ctx := context.Background()
		for off := 0; off < n; off += 1000 {
			ld := benchBatch(1000, n, off)
			if err := c.consumeLogs(ctx, ld); err != nil {
				b.Fatal(err)
			}
		}
		runtime.GC()
		runtime.ReadMemStats(&after)
		if len(c.eng.endpoints) != n {
			b.Fatalf("%d endpoints tracked", len(c.eng.endpoints))
		}
		b.ReportMetric(float64(after.HeapAlloc-before.HeapAlloc)/n, "heap-B/endpoint")
		mem := &memClient{m: map[string][]byte{}}
		sz, err := c.eng.checkpoint(ctx, mem, true, true)
		if err != nil {
			b.Fatal(err)
		}
		b.ReportMetric(float64(sz)/n, "persisted-B/endpoint")
		runtime.KeepAlive(c)
	}
}

// BenchmarkEdgeWindow measures one tlsedge window record through the
// correlator (both judgements, the step detector included): 100 services
// x 3 nodes, a batch per 2 s tick, as the connector sends them.
func BenchmarkEdgeWindow(b *testing.B) {
	c, err := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
	if err != nil {
		b.Fatal(err)
	}
	ctx := context.Background()
	const services, nodes = 100, 3
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		ld := plog.NewLogs()
		for s := 0; s < services; s++ {
			for n := 0; n < nodes; n++ {
				edgeWin{at: time.Duration(i) * 2 * time.Second, service: fmt.Sprintf("svc-%d", s), node: fmt.Sprintf("n%d", n), hs: 20, failed: 1, reasons: map[string]int64{"protocol_mismatch": 1}}.appendTo(ld)
			}
		}
		if err := c.consumeLogs(ctx, ld); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N*services*nodes), "ns/window")
}
