package tlsprobereceiver

import (
	"container/heap"
	"context"
	"strings"
	"sync"
	"testing"
	"time"
)

// TestReloadWhileProbing reloads the target set 500 times while probes run
// (the race detector watches the shared state): afterwards only the last
// set is probed, every target of it, and nothing of an earlier set.
func TestReloadWhileProbing(t *testing.T) {
	mk := func(service string) []*probeTarget {
		var out []*probeTarget
		for _, ep := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} {
			c := TargetConfig{Endpoint: ep, Service: service}
			out = append(out, &probeTarget{meta: newTargetMeta(c), interval: time.Millisecond})
		}
		return out
	}
	var mu sync.Mutex
	var seen []string // service/endpoint of each probe, in order
	s := newScheduler(4, func(_ context.Context, _ *job, t *probeTarget) {
		mu.Lock()
		seen = append(seen, t.meta.service+"/"+t.meta.endpoint)
		mu.Unlock()
	})
	s.set(mk("a"))
	ctx, cancel := context.WithCancel(context.Background())
	wait := s.start(ctx)
	for i := 0; i < 500; i++ {
		s.set(mk(string(rune('a' + i%26))))
	}
	s.set(mk("final"))
	mu.Lock()
	mark := len(seen)
	mu.Unlock()
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(seen) }
	for end := time.Now().Add(10 * time.Second); count() < mark+200 && time.Now().Before(end); time.Sleep(time.Millisecond) {
	}
	cancel()
	wait()
	mu.Lock()
	defer mu.Unlock()
	if len(seen) < mark+200 {
		t.Fatalf("only %d probes after the last reload", len(seen)-mark)
	}
	// Probes dispatched before the last reload may finish after it: judge
	// the last hundred.
	last := map[string]int{}
	for _, p := range seen[len(seen)-100:] {
		last[p]++
	}
	for p := range last {
		if !strings.HasPrefix(p, "final/") {
			t.Errorf("a target of an earlier set probed after the last reload: %s", p)
		}
	}
	for _, ep := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} {
		if last["final/"+ep] == 0 {
			t.Errorf("target %s of the last set not probed: %v", ep, last)
		}
	}
}

// TestLateness: with one worker and three targets due at once, each run
// taking 50 ms, the scheduler reports each regular run's wait for a
// worker: the last cannot start before two runs ended (>= 100 ms late).
func TestLateness(t *testing.T) {
	var mu sync.Mutex
	var late []time.Duration
	s := newScheduler(1, func(context.Context, *job, *probeTarget) { time.Sleep(50 * time.Millisecond) })
	s.late = func(d time.Duration) { mu.Lock(); late = append(late, d); mu.Unlock() }
	var targets []*probeTarget
	for _, ep := range []string{"127.0.0.1:1", "127.0.0.1:2", "127.0.0.1:3"} {
		targets = append(targets, &probeTarget{meta: newTargetMeta(TargetConfig{Endpoint: ep}), interval: time.Hour})
	}
	s.set(targets)
	s.mu.Lock()
	now := time.Now()
	for _, j := range s.jobs { // all due now, not at their spread offsets
		j.regular, j.next = now, now
	}
	heap.Init(&s.h)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	wait := s.start(ctx)
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
		mu.Lock()
		n := len(late)
		mu.Unlock()
		if n == 3 {
			break
		}
	}
	cancel()
	wait()
	mu.Lock()
	defer mu.Unlock()
	if len(late) != 3 {
		t.Fatalf("lateness reported %d times, want 3 (one per regular run)", len(late))
	}
	if late[2] < 100*time.Millisecond {
		t.Errorf("the third run %v late, want >= 100ms (two 50 ms runs before it on one worker)", late[2])
	}
}
