package trigger // import "github.com/certpulse/certpulse/internal/trigger"

import (
	"sync"
	"time"
)

// Budget is a token bucket for the probes that triggers and confirmations
// add to the schedule: a flood of lifecycle events cannot turn the agent
// into a load generator. Safe for concurrent use.
type Budget struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

// NewBudget returns a full bucket of burst tokens refilled at perSecond.
func NewBudget(perSecond float64, burst int, now func() time.Time) *Budget {
	return &Budget{rate: perSecond, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// Allow takes a token if one is left.
func (b *Budget) Allow() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.now()
	b.tokens = min(b.burst, b.tokens+now.Sub(b.last).Seconds()*b.rate)
	b.last = now
	if b.tokens < 1 {
		return false
	}
	b.tokens--
	return true
}

type budgetKey struct {
	perSecond float64
	burst     int
}

// Budget returns the collector's one budget for these settings: every
// tlsprobe receiver on this hub (one per discovered target under
// receiver_creator) draws from it, so the extra probes a collector adds
// do not grow with the number of receivers.
func (h *Hub) Budget(perSecond float64, burst int) *Budget {
	h.mu.Lock()
	defer h.mu.Unlock()
	k := budgetKey{perSecond, burst}
	if b := h.budgets[k]; b != nil {
		return b
	}
	if h.budgets == nil {
		h.budgets = map[budgetKey]*Budget{}
	}
	b := NewBudget(perSecond, burst, time.Now)
	h.budgets[k] = b
	return b
}
