package nelreceiver // import "github.com/certpulse/certpulse/receiver/nelreceiver"

import (
	"sync"
	"time"
)

// repeats remembers the reports accepted within a window (by a hash of the
// client's address, the url, type and phase), bounded: the oldest are
// forgotten first.
type repeats struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	seen   map[uint64]time.Time
	order  []repeat // insertion order, for expiry and the bound
}

type repeat struct {
	key uint64
	at  time.Time
}

func newRepeats(window time.Duration, max int) *repeats {
	return &repeats{window: window, max: max, seen: map[uint64]time.Time{}}
}

// check reports whether key was accepted within the window before now,
// and remembers it as accepted at now when it was not.
func (r *repeats) check(key uint64, now time.Time) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.expire(now)
	if at, ok := r.seen[key]; ok && now.Sub(at) < r.window {
		return true
	}
	r.seen[key] = now
	r.order = append(r.order, repeat{key, now})
	for len(r.seen) > r.max {
		r.drop()
	}
	return false
}

// forget removes key (its report was refused by the pipeline: a retry is
// no repeat).
func (r *repeats) forget(key uint64) {
	r.mu.Lock()
	delete(r.seen, key)
	r.mu.Unlock()
}

func (r *repeats) expire(now time.Time) {
	for len(r.order) > 0 && now.Sub(r.order[0].at) >= r.window {
		r.drop()
	}
	if cap(r.order) > 1024 && len(r.order) < cap(r.order)/4 {
		r.order = append([]repeat(nil), r.order...)
	}
}

// drop forgets the oldest entry (unless the key was seen again since).
func (r *repeats) drop() {
	e := r.order[0]
	r.order = r.order[1:]
	if at, ok := r.seen[e.key]; ok && at.Equal(e.at) {
		delete(r.seen, e.key)
	}
}

// rateLimiter is a token bucket per client address, bounded: a full
// bucket (an idle client) is forgotten when room is needed; when every
// tracked client is busy, a new one is refused.
type rateLimiter struct {
	mu      sync.Mutex
	rate    float64 // tokens per second
	burst   float64
	max     int
	buckets map[string]*bucket
}

type bucket struct {
	tokens float64
	at     time.Time
}

func newRateLimiter(rate float64, burst, max int) *rateLimiter {
	return &rateLimiter{rate: rate, burst: float64(burst), max: max, buckets: map[string]*bucket{}}
}

// allow takes a token of client's bucket at now.
func (l *rateLimiter) allow(client string, now time.Time) bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	b, ok := l.buckets[client]
	if !ok {
		if len(l.buckets) >= l.max && !l.prune(now) {
			return false
		}
		b = &bucket{tokens: l.burst, at: now}
		l.buckets[client] = b
	}
	b.tokens = min(l.burst, b.tokens+now.Sub(b.at).Seconds()*l.rate)
	b.at = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

// prune forgets the clients whose bucket is full again; it reports
// whether there is room.
func (l *rateLimiter) prune(now time.Time) bool {
	for k, b := range l.buckets {
		if b.tokens+now.Sub(b.at).Seconds()*l.rate >= l.burst {
			delete(l.buckets, k)
		}
	}
	return len(l.buckets) < l.max
}
