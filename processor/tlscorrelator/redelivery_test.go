package tlscorrelator

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/processor/tlscorrelator/internal/metadata"
)

// TestRedeliveryChangesNothing: the next consumer refuses every batch
// once; the sender redelivers the same batch. Applied twice, the
// redelivered edge windows would double the handshake counts and the
// redelivered failures would corroborate a network failure seen from one
// vantage. Each record counts once, whatever the retries.
func TestRedeliveryChangesNothing(t *testing.T) {
	sink := new(consumertest.LogsSink)
	var refuse atomic.Bool
	next, err := consumer.NewLogs(func(ctx context.Context, ld plog.Logs) error {
		if refuse.Load() {
			return errors.New("downstream refuses")
		}
		return sink.ConsumeLogs(ctx, ld)
	})
	require.NoError(t, err)
	cfg := createDefaultConfig()
	cfg.Edge.MinHandshakes = 100
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	send := func(items ...appender) {
		ld := plog.NewLogs()
		for _, it := range items {
			it.appendTo(ld)
		}
		again := plog.NewLogs()
		ld.CopyTo(again)
		refuse.Store(true)
		_ = p.ConsumeLogs(context.Background(), ld)
		refuse.Store(false)
		require.NoError(t, p.ConsumeLogs(context.Background(), again))
	}
	// 60 handshakes, all failing: under min_handshakes (100) once, over it
	// if counted twice.
	send(edgeWin{at: time.Second, service: "shop", node: "n1", hs: 60, failed: 60, reasons: map[string]int64{"unknown_ca": 60}})
	// A connection failure from one vantage only, sent three times over:
	// corroboration needs a second vantage, not the same record again.
	for i := 0; i < 3; i++ {
		send(probe{at: time.Duration(2+i) * time.Second, service: "api", server: "a.example.com", vantage: "eu", reason: attrs.ReasonConnectionRefused})
	}
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			lrs := ld.ResourceLogs().At(i).ScopeLogs().At(0).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				assert.NotEqual(t, attrs.EventIncident, lrs.At(k).EventName(), "an incident from redelivered records")
			}
		}
	}
}
