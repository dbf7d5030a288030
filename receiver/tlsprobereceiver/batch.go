package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"sync"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

// outBatch gathers the results of the probes that ended within one
// batch.timeout, to hand them to the pipelines in one call. One call per
// probe cost each probe a pass through every processor and, where an
// exporter has a persistent queue, three storage transactions (write,
// read, delete): at 100,000 targets that was a fifth of the agent's
// allocations and an eighth of its CPU (docs/performance.md).
//
// add and take only move pdata under the lock; the hand-off itself
// (ConsumeLogs, which may block on a full queue) runs outside it.
type outBatch struct {
	maxRecords int

	mu       sync.Mutex
	logs     plog.Logs
	metrics  pmetric.Metrics
	records  int // log records in logs
	probes   int // probe results (adds) in the batch
	hasLogs  bool
	hasMetrs bool
}

func newOutBatch(maxRecords int) *outBatch {
	return &outBatch{maxRecords: maxRecords, logs: plog.NewLogs(), metrics: pmetric.NewMetrics()}
}

// pending is a batch taken for its hand-off.
type pending struct {
	logs    plog.Logs
	metrics pmetric.Metrics
	probes  int
	// hasLogs, hasMetrics: which signals the batch holds (a pipeline
	// absent is never called).
	hasLogs, hasMetrics bool
}

// add moves ld's and md's contents into the batch (either may be zero
// value: that signal is not connected). It returns the batch when it
// reached maxRecords, for the caller to hand off.
func (b *outBatch) add(ld plog.Logs, md pmetric.Metrics, hasLogs, hasMetrics bool) (full *pending) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if hasLogs {
		b.records += ld.LogRecordCount()
		ld.ResourceLogs().MoveAndAppendTo(b.logs.ResourceLogs())
		b.hasLogs = true
	}
	if hasMetrics {
		md.ResourceMetrics().MoveAndAppendTo(b.metrics.ResourceMetrics())
		b.hasMetrs = true
	}
	b.probes++
	if b.records >= b.maxRecords || b.probes >= b.maxRecords {
		return b.takeLocked()
	}
	return nil
}

// take returns what the batch holds, nil when empty, and empties it.
func (b *outBatch) take() *pending {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.takeLocked()
}

func (b *outBatch) takeLocked() *pending {
	if b.probes == 0 {
		return nil
	}
	p := &pending{logs: b.logs, metrics: b.metrics, probes: b.probes, hasLogs: b.hasLogs, hasMetrics: b.hasMetrs}
	b.logs, b.metrics = plog.NewLogs(), pmetric.NewMetrics()
	b.records, b.probes, b.hasLogs, b.hasMetrs = 0, 0, false, false
	return p
}
