package tlsprobereceiver

import (
	"context"
	"sync/atomic"
	"testing"
	"time"
)

// TestReloadWhileProbing swaps the target set (as a targets_file reload does)
// while probes of the same targets run: each probe must see one immutable
// snapshot of its target (the race detector fails the test otherwise).
func TestReloadWhileProbing(t *testing.T) {
	mk := func(service string) []*probeTarget {
		var out []*probeTarget
		for _, ep := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} {
			c := TargetConfig{Endpoint: ep, Service: service}
			out = append(out, &probeTarget{meta: newTargetMeta(c), interval: time.Millisecond})
		}
		return out
	}
	var probes atomic.Int64
	s := newScheduler(4, func(_ context.Context, _ *job, t *probeTarget) {
		for i := 0; i < 100; i++ {
			_ = t.meta.service + t.meta.cfg.Endpoint
		}
		probes.Add(1)
	})
	s.set(mk("a"))
	ctx, cancel := context.WithCancel(context.Background())
	wait := s.start(ctx)
	for i := 0; i < 500; i++ {
		s.set(mk(string(rune('a' + i%26))))
	}
	for probes.Load() < 50 {
		time.Sleep(time.Millisecond)
	}
	cancel()
	wait()
}
