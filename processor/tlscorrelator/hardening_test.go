package tlscorrelator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// TestFutureTimestampDoesNotBlind: one record from an agent whose clock runs
// an hour ahead must not make every later record "late". It is dropped (and
// counted as future); records on time keep working.
func TestFutureTimestampDoesNotBlind(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	expired := func(at time.Duration, v string) probe {
		return probe{at: at, service: "api", server: "a.example.com", vantage: v, reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA}
	}
	// An hour ahead of the wall clock, whatever t0 is.
	ahead := time.Now().Add(time.Hour).Sub(t0)
	ld := plog.NewLogs()
	expired(ahead, "skewed").appendTo(ld)
	require.NoError(t, h.proc.ConsumeLogs(context.Background(), ld))
	assert.Equal(t, 0, ld.LogRecordCount(), "a record from the future is dropped, not passed on as if processed")
	h.feed(expired(0, "eu"))
	incs := h.incidents()
	require.NotEmpty(t, incs, "records on time are processed after a record from the future")
	assert.Equal(t, "opened", incs[0].state)
}
