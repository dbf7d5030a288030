package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"container/heap"
	"context"
	"hash/fnv"
	"slices"
	"sync"
	"time"
)

// job is one scheduled target: 32 bytes, since an agent holds one for
// each of its targets (100,000 and more). Times are nanoseconds on the
// scheduler's monotonic clock (scheduler.at); the key and the interval
// are the target's.
type job struct {
	target *probeTarget
	// next is the earlier of regular and the first extra run; regular is
	// the next run of the interval schedule.
	next, regular int64
	index         int32 // position in the heap, -1 when not queued
	running       bool
	// ranRegular says the run in progress was the regular one.
	ranRegular bool
	removed    bool
	// extra says the scheduler's extra map holds runs asked for in
	// between (a lifecycle trigger, a confirmation) for this job.
	extra bool
}

// maxExtraRuns bounds the runs waiting in one job's extra list.
const maxExtraRuns = 16

// addExtra inserts a run at t into a job's sorted extra runs (runs within
// 100ms of each other merge); it reports whether one was added.
func addExtra(extra []int64, t int64) ([]int64, bool) {
	for _, e := range extra {
		if d := time.Duration(e - t); d > -100*time.Millisecond && d < 100*time.Millisecond {
			return extra, false
		}
	}
	if len(extra) >= maxExtraRuns {
		return extra, false
	}
	i, _ := slices.BinarySearch(extra, t)
	return slices.Insert(extra, i, t), true
}

type jobHeap []*job

func (h jobHeap) Len() int           { return len(h) }
func (h jobHeap) Less(i, j int) bool { return h[i].next < h[j].next }
func (h jobHeap) Swap(i, j int) {
	h[i], h[j] = h[j], h[i]
	h[i].index = int32(i)
	h[j].index = int32(j)
}
func (h *jobHeap) Push(x any) { j := x.(*job); j.index = int32(len(*h)); *h = append(*h, j) }
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
	// extra holds the jobs' extra runs, sorted; few jobs have any.
	extra map[*job][]int64
	// epoch is the origin of the jobs' times, taken from now at the first
	// use (it carries time.Now's monotonic reading: a step of the wall
	// clock moves no job).
	epoch time.Time
	wake  chan struct{}
}

// at is t on the scheduler's clock. Callers hold mu.
func (s *scheduler) at(t time.Time) int64 {
	if s.epoch.IsZero() {
		s.epoch = t
	}
	return int64(t.Sub(s.epoch))
}

// nextRun is the earlier of j's regular and first extra run. Callers hold mu.
func (s *scheduler) nextRun(j *job) int64 {
	if j.extra {
		if e := s.extra[j]; len(e) > 0 && e[0] < j.regular {
			return e[0]
		}
	}
	return j.regular
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
	now := s.at(s.now())
	keep := make(map[string]*job, len(targets))
	for _, t := range targets {
		k := t.meta.key
		if j, ok := s.jobs[k]; ok {
			old := j.target
			j.target = t
			if old.interval != t.interval {
				j.regular = now + int64(offset(k, t.interval))
				if j.index >= 0 {
					j.next = s.nextRun(j)
					heap.Fix(&s.h, int(j.index))
				}
			}
			keep[k] = j
			continue
		}
		first := now + int64(offset(k, t.interval))
		j := &job{next: first, regular: first, index: -1, target: t}
		heap.Push(&s.h, j)
		keep[k] = j
	}
	for k, j := range s.jobs {
		if _, ok := keep[k]; !ok {
			j.removed = true
			if j.extra {
				delete(s.extra, j)
				j.extra = false
			}
			if j.index >= 0 {
				heap.Remove(&s.h, int(j.index))
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
			if now := s.at(s.now()); s.h[0].next <= now {
				j := heap.Pop(&s.h).(*job)
				j.running = true
				due.job, due.target = j, j.target
				j.ranRegular = j.regular <= now
				if j.ranRegular {
					due.slot = s.epoch.Add(time.Duration(j.regular))
				}
				if j.extra { // extra runs due now are served by this run
					e := s.extra[j]
					i := 0
					for i < len(e) && e[i] <= now {
						i++
					}
					if i == len(e) {
						delete(s.extra, j)
						j.extra = false
					} else {
						s.extra[j] = e[i:]
					}
				}
			} else {
				wait = time.Duration(s.h[0].next - now)
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
	now := s.at(s.now())
	if j.ranRegular {
		j.regular += int64(j.target.interval)
		j.regular = max(j.regular, now)
	}
	j.next = s.nextRun(j)
	heap.Push(&s.h, j)
	s.signal()
}

// runSoon adds extra runs of the jobs whose target match accepts, at each
// delay from now; allow is asked once per run added (the probe budget).
// It returns how many runs were added and how many the budget refused.
func (s *scheduler) runSoon(match func(*probeTarget) bool, delays []time.Duration, allow func() bool) (added, refused int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.at(s.now())
	for _, j := range s.jobs {
		if !match(j.target) {
			continue
		}
		extra := s.extra[j]
		for _, d := range delays {
			if !allow() {
				refused++
				continue
			}
			var ok bool
			if extra, ok = addExtra(extra, now+int64(d)); ok {
				added++
			}
		}
		if len(extra) > 0 {
			if s.extra == nil {
				s.extra = map[*job][]int64{}
			}
			s.extra[j], j.extra = extra, true
		}
		if j.index >= 0 { // queued, not running: move it up
			j.next = s.nextRun(j)
			heap.Fix(&s.h, int(j.index))
		}
	}
	if added > 0 {
		s.signal()
	}
	return added, refused
}
