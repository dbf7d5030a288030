package tlsprobereceiver

import (
	"container/heap"
	"context"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
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
			out = append(out, &probeTarget{meta: newTargetMeta(c), targetSpec: &targetSpec{interval: time.Millisecond}})
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
		targets = append(targets, &probeTarget{meta: newTargetMeta(TargetConfig{Endpoint: ep}), targetSpec: &targetSpec{interval: time.Hour}})
	}
	s.set(targets)
	s.mu.Lock()
	now := s.at(time.Now())
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

func TestAddExtra(t *testing.T) {
	ms := int64(time.Millisecond)
	full := make([]int64, maxExtraRuns)
	for i := range full {
		full[i] = int64(i) * 1000 * ms
	}
	for _, tc := range []struct {
		name  string
		extra []int64
		at    int64
		want  []int64
		added bool
	}{
		{"first", nil, 5 * ms, []int64{5 * ms}, true},
		{"sorted before", []int64{500 * ms}, 100 * ms, []int64{100 * ms, 500 * ms}, true},
		{"sorted between", []int64{0, 1000 * ms}, 500 * ms, []int64{0, 500 * ms, 1000 * ms}, true},
		{"merged within 100ms", []int64{500 * ms}, 450 * ms, []int64{500 * ms}, false},
		{"100ms apart is two runs", []int64{500 * ms}, 600 * ms, []int64{500 * ms, 600 * ms}, true},
		{"bounded", full, 100_000 * ms, full, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, added := addExtra(slices.Clone(tc.extra), tc.at)
			if added != tc.added || !slices.Equal(got, tc.want) {
				t.Errorf("addExtra(%v, %d) = %v, %v; want %v, %v", tc.extra, tc.at, got, added, tc.want, tc.added)
			}
		})
	}
}

// TestExtraRunsServedAndForgotten: two extra runs asked for a job whose
// regular run is an hour away both run, and the scheduler then holds no
// extra runs for it (the map of extra runs does not grow with triggers).
func TestExtraRunsServedAndForgotten(t *testing.T) {
	var runs atomic.Int32
	s := newScheduler(1, func(context.Context, *job, *probeTarget) { runs.Add(1) })
	target := &probeTarget{meta: newTargetMeta(TargetConfig{Endpoint: "127.0.0.1:1"}), targetSpec: &targetSpec{interval: time.Hour}}
	s.set([]*probeTarget{target})
	s.mu.Lock()
	for _, j := range s.jobs { // the regular run an hour away, whatever the offset
		j.regular = s.at(time.Now().Add(time.Hour))
		j.next = j.regular
	}
	heap.Init(&s.h)
	s.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	wait := s.start(ctx)
	defer func() { cancel(); wait() }()
	added, _ := s.runSoon(func(*probeTarget) bool { return true }, []time.Duration{0, 300 * time.Millisecond}, func() bool { return true })
	if added != 2 {
		t.Fatalf("runSoon added %d runs, want 2", added)
	}
	for end := time.Now().Add(10 * time.Second); runs.Load() < 2 && time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
	}
	if n := runs.Load(); n != 2 {
		t.Fatalf("%d runs, want the 2 extra runs", n)
	}
	queued := func() bool { // done has put the job back
		s.mu.Lock()
		defer s.mu.Unlock()
		return len(s.h) == 1
	}
	for end := time.Now().Add(10 * time.Second); !queued() && time.Now().Before(end); time.Sleep(10 * time.Millisecond) {
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, j := range s.jobs {
		if j.extra || len(s.extra) != 0 {
			t.Errorf("after its extra runs the job still has extra runs: %v %v", j.extra, s.extra)
		}
		if j.next != j.regular {
			t.Errorf("next run %d, want the regular run %d", j.next, j.regular)
		}
	}
}
