package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"github.com/certpulse/certpulse/internal/vantage"
	"sync"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// targetMemory is what the prober remembers of one target across probes.
// The scheduler knows only when to run a target; the emitter reads the
// counters and never changes them. Only the worker running the target's
// job touches its memory (the scheduler runs a job on one worker at a
// time).
type targetMemory struct {
	// failures counts failing results by node, profile and reason
	// (tlsprobe.failures); nil until the first failure (most targets
	// never fail: 100,000 of them are 100,000 memories).
	failures map[[3]string]int64
	// health is the last outcome per node and profile: true ok, false
	// failing. A slice, not a map: nearly every target has one node and a
	// profile or two, and a map costs a few hundred bytes even then.
	health []lastOutcome
	// nodes is a `nodes` target's state across rounds.
	nodes *nodeState
	// vantage: this agent's decision for the target at its latest probe,
	// and when it was last among the target's vantages (vantages.go), in
	// Unix nanoseconds (a time.Time is 16 bytes more, 100,000 times).
	vantage  vantage.Decision
	chosenAt int64
	// leanHold: series `lean`, per "node|profile", until when a series
	// that failed is still recorded (series.go).
	leanHold map[string]int64
}

// lastOutcome: a node's (or the endpoint's, node "") last outcome under a
// profile.
type lastOutcome struct {
	node, profile string
	ok            bool
}

func newTargetMemory() *targetMemory { return &targetMemory{} }

// countFailures adds one round's failing results of node to the counters.
func (m *targetMemory) countFailures(node string, results []tlsinspect.Result) {
	for i := range results {
		if p := results[i].Primary(); p != attrs.ReasonOK {
			if m.failures == nil {
				m.failures = map[[3]string]int64{}
			}
			m.failures[[3]string{node, results[i].Profile, string(p)}]++
		}
	}
}

// outcome returns the last outcome of node under profile, and whether one
// is known, and records ok as the new one.
func (m *targetMemory) outcome(node, profile string, ok bool) (was, known bool) {
	for i := range m.health {
		if h := &m.health[i]; h.node == node && h.profile == profile {
			was, h.ok = h.ok, ok
			return was, true
		}
	}
	m.health = append(m.health, lastOutcome{node: node, profile: profile, ok: ok})
	return false, false
}

// unconfirmedFailures remembers each profile's (and node's) last outcome
// and returns the profiles that failed right after a healthy result (not
// confirmed yet).
func (m *targetMemory) unconfirmedFailures(node string, results []tlsinspect.Result) map[string]bool {
	var unconfirmed map[string]bool
	for i := range results {
		p, ok := results[i].Profile, results[i].Success()
		if wasOK, known := m.outcome(node, p, ok); known && wasOK && !ok {
			if unconfirmed == nil {
				unconfirmed = map[string]bool{}
			}
			unconfirmed[p] = true
		}
	}
	return unconfirmed
}

// memories holds every target's memory, by the scheduler's job key.
type memories struct {
	mu sync.Mutex
	m  map[string]*targetMemory
}

func newMemories() *memories { return &memories{m: map[string]*targetMemory{}} }

// of returns key's memory, created on first use.
func (ms *memories) of(key string) *targetMemory {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	m := ms.m[key]
	if m == nil {
		m = newTargetMemory()
		ms.m[key] = m
	}
	return m
}

// peek returns key's memory, nil when there is none.
func (ms *memories) peek(key string) *targetMemory {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	return ms.m[key]
}

// forget drops key's memory.
func (ms *memories) forget(key string) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	delete(ms.m, key)
}

// keep forgets the memory of every target not in keys (targets removed
// from the targets file).
func (ms *memories) keep(keys map[string]bool) {
	ms.mu.Lock()
	defer ms.mu.Unlock()
	for k := range ms.m {
		if !keys[k] {
			delete(ms.m, k)
		}
	}
}
