package tlsprobereceiver

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func oneResult(i int) (plog.Logs, pmetric.Metrics) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("server.address", fmt.Sprintf("h%d", i))
	rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("probe")
	md := pmetric.NewMetrics()
	md.ResourceMetrics().AppendEmpty().ScopeMetrics().AppendEmpty().Metrics().AppendEmpty().SetEmptyGauge().DataPoints().AppendEmpty().SetIntValue(int64(i))
	return ld, md
}

// TestOutBatch: results gather until max_size, in order, each signal only
// when connected; take empties the batch.
func TestOutBatch(t *testing.T) {
	for _, tc := range []struct {
		name              string
		max, adds         int
		logs, metrics     bool
		wantFull          []int // after which adds (1-based) a full batch comes back
		wantLeft          int   // probes left for take
		wantRecordsPerOut int
	}{
		{name: "under max", max: 4, adds: 3, logs: true, metrics: true, wantLeft: 3},
		{name: "full at max", max: 3, adds: 7, logs: true, metrics: true, wantFull: []int{3, 6}, wantLeft: 1, wantRecordsPerOut: 3},
		{name: "metrics only", max: 2, adds: 2, metrics: true, wantFull: []int{2}},
		{name: "logs only", max: 2, adds: 3, logs: true, wantFull: []int{2}, wantLeft: 1, wantRecordsPerOut: 2},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := newOutBatch(tc.max)
			var full []int
			for i := 1; i <= tc.adds; i++ {
				ld, md := oneResult(i)
				in := &pending{probes: 1, hasLogs: tc.logs, hasMetrics: tc.metrics}
				if tc.logs {
					in.logs = ld
				}
				if tc.metrics {
					in.metrics = md
				}
				if p := b.add(in); p != nil {
					full = append(full, i)
					assert.Equal(t, tc.max, p.probes)
					assert.Equal(t, tc.logs, p.hasLogs)
					assert.Equal(t, tc.metrics, p.hasMetrics)
					if tc.logs {
						require.Equal(t, tc.wantRecordsPerOut, p.logs.LogRecordCount())
						// In the order the probes ended.
						first, _ := p.logs.ResourceLogs().At(0).Resource().Attributes().Get("server.address")
						assert.Equal(t, fmt.Sprintf("h%d", i-tc.max+1), first.Str())
					}
					if tc.metrics {
						assert.Equal(t, tc.max, p.metrics.DataPointCount())
					}
				}
			}
			assert.Equal(t, tc.wantFull, full)
			p := b.take()
			if tc.wantLeft == 0 {
				assert.Nil(t, p)
			} else {
				require.NotNil(t, p)
				assert.Equal(t, tc.wantLeft, p.probes)
			}
			assert.Nil(t, b.take(), "take empties the batch")
		})
	}
}

// TestBatchHeldUntilTimeoutOrShutdown: with a batch.timeout longer than a
// round, the first round's results stay in the batch, and Shutdown hands
// them off in one call: none lost.
func TestBatchHeldUntilTimeoutOrShutdown(t *testing.T) {
	f := startLab(t)
	cfg := labConfig(f)
	cfg.CollectionInterval = 3 * time.Second // the first round spreads over it
	cfg.Batch = BatchConfig{Timeout: 10 * time.Second, MaxSize: 10000}
	var r *tlsProbeReceiver
	logs, metrics, stop := startReceiverWith(t, cfg, func(rr *tlsProbeReceiver) { r = rr })
	targets := r.sched.size()
	require.Greater(t, targets, 5)
	time.Sleep(5 * time.Second) // the first round ends (timeout 1.5 s)
	assert.Zero(t, logs.LogRecordCount(), "results handed off before batch.timeout")
	assert.Zero(t, metrics.DataPointCount())
	stop()
	require.Len(t, logs.AllLogs(), 1, "one hand-off at shutdown")
	assert.GreaterOrEqual(t, logs.LogRecordCount(), targets, "every target's result handed off")
	assert.Len(t, metrics.AllMetrics(), 1)
}

// TestBatchFullHandedOffAtOnce: a batch at max_size goes at once, not at
// the next tick.
func TestBatchFullHandedOffAtOnce(t *testing.T) {
	f := startLab(t)
	cfg := labConfig(f)
	cfg.CollectionInterval = 3 * time.Second
	cfg.Batch = BatchConfig{Timeout: 10 * time.Second, MaxSize: 2}
	logs, _, stop := startReceiver(t, cfg)
	defer stop()
	require.Eventually(t, func() bool { return len(logs.AllLogs()) >= 2 }, 5*time.Second, 20*time.Millisecond)
	for _, ld := range logs.AllLogs() {
		assert.Equal(t, 2, ld.ResourceLogs().Len(), "a hand-off holds max_size probes' results")
	}
}
