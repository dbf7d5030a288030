package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"sync"
	"time"
)

// budget is a token bucket for the probes that triggers and confirmations
// add to the schedule: a flood of lifecycle events cannot turn the agent
// into a load generator.
type budget struct {
	mu     sync.Mutex
	rate   float64 // tokens per second
	burst  float64
	tokens float64
	last   time.Time
	now    func() time.Time
}

func newBudget(perSecond float64, burst int, now func() time.Time) *budget {
	return &budget{rate: perSecond, burst: float64(burst), tokens: float64(burst), last: now(), now: now}
}

// allow takes a token if one is left.
func (b *budget) allow() bool {
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
