package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"container/heap"
	"context"
	"hash/fnv"
	"slices"
	"sync"
	"time"
)

// job is one scheduled target.
type job struct {
	key      string
	interval time.Duration
	next     time.Time
	index    int // position in the heap, -1 when not queued
	running  bool
	// ranRegular says the run in progress was the regular one.
	ranRegular bool
	removed    bool
	target     *probeTarget
	// regular is the next run of the interval schedule; extra are runs
	// asked for in between (a lifecycle trigger, a confirmation), sorted.
	// next is the earlier of the two.
	regular time.Time
	extra   []time.Time
}

// maxExtraRuns bounds the runs waiting in one job's extra list.
const maxExtraRuns = 16

// addExtra inserts a run at t (runs within 100ms of each other
// merge); it reports whether one was added.
func (j *job) addExtra(t time.Time) bool {
	for _, e := range j.extra {
		if d := e.Sub(t); d > -100*time.Millisecond && d < 100*time.Millisecond {
			return false
		}
	}
	if len(j.extra) >= maxExtraRuns {
		return false
	}
	j.extra = append(j.extra, t)
	slices.SortFunc(j.extra, func(a, b time.Time) int { return a.Compare(b) })
	return true
}

// nextRun is the earlier of the regular and the first extra run.
func (j *job) nextRun() time.Time {
	if len(j.extra) > 0 && j.extra[0].Before(j.regular) {
		return j.extra[0]
	}
	return j.regular
}

type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].next.Before(h[j].next) }
func (h jobHeap) Swap(i, j int)      { h[i], h[j] = h[j], h[i]; h[i].index = i; h[j].index = j }
func (h *jobHeap) Push(x any)        { j := x.(*job); j.index = len(*h); *h = append(*h, j) }
func (h *jobHeap) Pop() any {
	old := *h
	j := old[len(old)-1]
	old[len(old)-1] = nil
	*h = old[:len(old)-1]
	j.index = -1
	return j
}

// scheduler runs each job every interval, the first run offset by a hash of
// its key so that probes spread over the interval, with at most `workers`
// jobs running at once. A job never overlaps itself; one that overruns its
// interval runs again as soon as a worker is free.
type scheduler struct {
	workers int
	// run probes one job with the target it had when it was dispatched: a
	// snapshot taken under the lock, never changed afterwards (set replaces
	// j.target with a new value, it does not modify the old one).
	run func(context.Context, *job, *probeTarget)
	now func() time.Time
	// late, when set, hears how late each regular run started against its
	// slot (on the worker, after waiting for one to be free).
	late func(time.Duration)

	mu   sync.Mutex
	jobs map[string]*job
	h    jobHeap
	wake chan struct{}
}

func newScheduler(workers int, run func(context.Context, *job, *probeTarget)) *scheduler {
	return &scheduler{workers: workers, run: run, now: time.Now, jobs: map[string]*job{}, wake: make(chan struct{}, 1)}
}

// offset spreads first runs deterministically over the interval.
func offset(key string, interval time.Duration) time.Duration {
	h := fnv.New64a()
	_, _ = h.Write([]byte(key))
	return time.Duration(h.Sum64() % uint64(interval))
}

// set replaces the job set. Jobs whose key stays keep their schedule and
// counters; new ones start at their offset; removed ones stop.
func (s *scheduler) set(targets []*probeTarget) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	keep := make(map[string]*job, len(targets))
	for _, t := range targets {
		k := t.meta.key
		if j, ok := s.jobs[k]; ok {
			j.target = t
			if j.interval != t.interval {
				j.interval = t.interval
				j.regular = now.Add(offset(k, t.interval))
				if j.index >= 0 {
					j.next = j.nextRun()
					heap.Fix(&s.h, j.index)
				}
			}
			keep[k] = j
			continue
		}
		first := now.Add(offset(k, t.interval))
		j := &job{key: k, interval: t.interval, next: first, regular: first, index: -1, target: t}
		heap.Push(&s.h, j)
		keep[k] = j
	}
	for k, j := range s.jobs {
		if _, ok := keep[k]; !ok {
			j.removed = true
			if j.index >= 0 {
				heap.Remove(&s.h, j.index)
			}
		}
	}
	s.jobs = keep
	s.signal()
}

func (s *scheduler) signal() {
	select {
	case s.wake <- struct{}{}:
	default:
	}
}

func (s *scheduler) size() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.jobs)
}

// start runs the dispatcher and the workers until ctx is done; the returned
// function waits for all of them.
func (s *scheduler) start(ctx context.Context) (wait func()) {
	work := make(chan dispatched)
	var wg sync.WaitGroup
	for i := 0; i < s.workers; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for d := range work {
				if s.late != nil && !d.slot.IsZero() {
					s.late(max(s.now().Sub(d.slot), 0))
				}
				s.run(ctx, d.job, d.target)
				s.done(d.job)
			}
		}()
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		defer close(work)
		s.dispatch(ctx, work)
	}()
	return wg.Wait
}

// dispatched is a due job with the snapshot of its target.
type dispatched struct {
	job    *job
	target *probeTarget
	slot   time.Time // a regular run's scheduled start; zero for extra runs
}

func (s *scheduler) dispatch(ctx context.Context, work chan<- dispatched) {
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	for {
		s.mu.Lock()
		var due dispatched
		wait := time.Hour
		if len(s.h) > 0 {
			if now := s.now(); !s.h[0].next.After(now) {
				due.job = heap.Pop(&s.h).(*job)
				due.job.running = true
				due.target = due.job.target
				due.job.ranRegular = !due.job.regular.After(now)
				if due.job.ranRegular {
					due.slot = due.job.regular
				}
				// Extra runs due now are served by this run.
				for len(due.job.extra) > 0 && !due.job.extra[0].After(now) {
					due.job.extra = due.job.extra[1:]
				}
			} else {
				wait = s.h[0].next.Sub(now)
			}
		}
		s.mu.Unlock()
		if due.job != nil {
			select {
			case work <- due:
			case <-ctx.Done():
				return
			}
			continue
		}
		timer.Reset(wait)
		select {
		case <-timer.C:
		case <-s.wake:
			if !timer.Stop() {
				select {
				case <-timer.C:
				default:
				}
			}
		case <-ctx.Done():
			return
		}
	}
}

func (s *scheduler) done(j *job) {
	s.mu.Lock()
	defer s.mu.Unlock()
	j.running = false
	if j.removed {
		return
	}
	now := s.now()
	if j.ranRegular {
		j.regular = j.regular.Add(j.interval)
		if j.regular.Before(now) {
			j.regular = now
		}
	}
	j.next = j.nextRun()
	heap.Push(&s.h, j)
	s.signal()
}

// runSoon adds extra runs of the jobs whose target match accepts, at each
// delay from now; allow is asked once per run added (the probe budget).
// It returns how many runs were added and how many the budget refused.
func (s *scheduler) runSoon(match func(*probeTarget) bool, delays []time.Duration, allow func() bool) (added, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.now()
	for _, j := range s.jobs {
		if !match(j.target) {
			continue
		}
		for _, d := range delays {
			if !allow() {
				refused++
				continue
			}
			if j.addExtra(now.Add(d)) {
				added++
			}
		}
		if j.index >= 0 { // queued, not running: move it up
			j.next = j.nextRun()
			heap.Fix(&s.h, j.index)
		}
	}
	if added > 0 {
		s.signal()
	}
	return added, refused
}
