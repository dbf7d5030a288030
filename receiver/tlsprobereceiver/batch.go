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
// read, delete): at 100,000 targets that was about a quarter of the
// agent's allocations and an eighth of its CPU (docs/performance.md).
//
// add and take only move pdata under the lock; the hand-off itself
// (ConsumeLogs, which may block on a full queue) runs outside it.
type outBatch struct {
	maxRecords int

	mu      sync.Mutex
	cur     pending
	records int // log records in cur.logs
}

func newOutBatch(maxRecords int) *outBatch {
	b := &outBatch{maxRecords: maxRecords}
	b.reset()
	return b
}

// pending is one probe's results, or a batch of them taken for its
// hand-off.
type pending struct {
	logs    plog.Logs
	metrics pmetric.Metrics
	probes  int
	// hasLogs, hasMetrics: which signals it holds (a pipeline absent is
	// never called; the other field is then the zero value).
	hasLogs, hasMetrics bool
}

// add moves p's contents into the batch. It returns the batch when it
// reached maxRecords (probes or log records), for the caller to hand off.
func (b *outBatch) add(p *pending) (full *pending) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if p.hasLogs {
		b.records += p.logs.LogRecordCount()
		p.logs.ResourceLogs().MoveAndAppendTo(b.cur.logs.ResourceLogs())
		b.cur.hasLogs = true
	}
	if p.hasMetrics {
		p.metrics.ResourceMetrics().MoveAndAppendTo(b.cur.metrics.ResourceMetrics())
		b.cur.hasMetrics = true
	}
	b.cur.probes += p.probes
	if b.records >= b.maxRecords || b.cur.probes >= b.maxRecords {
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
	if b.cur.probes == 0 {
		return nil
	}
	p := b.cur
	b.reset()
	return &p
}

func (b *outBatch) reset() {
	b.cur, b.records = pending{logs: plog.NewLogs(), metrics: pmetric.NewMetrics()}, 0
}
