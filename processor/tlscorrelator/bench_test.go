package tlscorrelator

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"runtime"
	"strconv"
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
// copy of the fingerprints, as results from tlsprobe do. With distinct,
// every host has its own leaf (and key) under one of 50 intermediates, as
// a fleet of customer domains does; else every host has the same chain.
func benchBatch(size, endpoints, offset int, distinct bool) plog.Logs {
	ld := plog.NewLogs()
	for i := 0; i < size; i++ {
		k := (offset + i) % endpoints
		p := probe{service: fmt.Sprintf("svc-%d", k%500), server: fmt.Sprintf("h%d.example.com", k/2), vantage: []string{"eu", "us"}[k%2],
			chain: strings.Clone(chainA), leaf: strings.Clone(leafA), spki: strings.Clone(spkiA)}
		if distinct {
			leaf := benchFP("leaf", k/2)
			p.chain, p.leaf = leaf+","+benchFP("intermediate", k%50), strings.ToUpper(leaf)
			key := sha256.Sum256([]byte(leaf))
			p.spki = base64.StdEncoding.EncodeToString(key[:])
		}
		if k%20 == 0 {
			p.reason, p.chain = attrs.ReasonExpiredLeaf, chainB
		}
		p.appendTo(ld)
	}
	return ld
}

// benchFP is a SHA-256 fingerprint in lower-case hex, as in chains.
func benchFP(kind string, n int) string {
	h := sha256.Sum256([]byte(kind + strconv.Itoa(n)))
	return hex.EncodeToString(h[:])
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
		batches[i] = benchBatch(batch, endpoints, i*batch, false)
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
// endpoint with 100k endpoints, and the bytes per endpoint of a full
// checkpoint: as JSON, and as written (compressed). chain=shared: every
// endpoint on the same chain (the figures before 7 Dec 2026, and the
// scale testbed's wildcard endpoint); chain=distinct: a leaf per host.
func BenchmarkStatePerEndpoint(b *testing.B) {
	for _, distinct := range []bool{false, true} {
		b.Run(map[bool]string{false: "chain=shared", true: "chain=distinct"}[distinct], func(b *testing.B) {
			for i := 0; i < b.N; i++ {
				benchState(b, distinct)
			}
		})
	}
}

func benchState(b *testing.B, distinct bool) {
	const n = 100000
	runtime.GC()
	var before, after runtime.MemStats
	runtime.ReadMemStats(&before)
	c, _ := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
	ctx := context.Background()
	for off := 0; off < n; off += 1000 {
		ld := benchBatch(1000, n, off, distinct)
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
	w, err := c.eng.prepare(true, true)
	if err != nil {
		b.Fatal(err)
	}
	raw := 0
	for _, op := range w.ops {
		raw += len(op.Value)
	}
	mem := &memClient{m: map[string][]byte{}}
	err = w.write(ctx, mem)
	c.eng.commit(w, err)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportMetric(float64(raw)/n, "json-B/endpoint")
	b.ReportMetric(float64(c.eng.storedBytes)/n, "persisted-B/endpoint")
	runtime.KeepAlive(c)
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
