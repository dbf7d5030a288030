// Package trigger is how a lifecycle event reaches the probes: the
// certlifecycle receiver fires, tlsprobe receivers subscribe. The
// certpulse_trigger extension holds the Hub, so that neither component
// reaches into the other.
package trigger // import "github.com/certpulse/certpulse/internal/trigger"

import (
	"fmt"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// EdgeFailures is the Event type the correlator fires when real clients of
// a service begin failing (its edge step detector, or a burst of browsers'
// Network Error Logging reports).
const EdgeFailures = "edge_failures"

// Event asks for immediate probes of a service's targets.
type Event struct {
	// Type is the lifecycle event type that fired (deployed, renewed,
	// rotation_planned), or EdgeFailures.
	Type string
	// Service names the targets to probe (their `service`).
	Service string
	// Endpoints, when the event lists them (host:port), narrow the probe to
	// those targets; empty means every target of the service.
	Endpoints []string
}

// Hub fans events out to subscribers. It is safe for concurrent use;
// subscribers are called on the firing goroutine and must not block.
type Hub struct {
	mu      sync.Mutex
	next    int
	subs    map[int]func(Event)
	budgets map[budgetKey]*Budget
	claims  map[string][]int // key -> claimants in order (claims.go)
}

// NewHub returns an empty hub.
func NewHub() *Hub { return &Hub{subs: map[int]func(Event){}} }

// Subscribe registers fn and returns the function that unregisters it.
func (h *Hub) Subscribe(fn func(Event)) (unsubscribe func()) {
	h.mu.Lock()
	defer h.mu.Unlock()
	id := h.next
	h.next++
	h.subs[id] = fn
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		delete(h.subs, id)
	}
}

// Fire calls every subscriber with ev; it reports how many there were.
func (h *Hub) Fire(ev Event) int {
	h.mu.Lock()
	subs := make([]func(Event), 0, len(h.subs))
	for _, fn := range h.subs {
		subs = append(subs, fn)
	}
	h.mu.Unlock()
	for _, fn := range subs {
		fn(ev)
	}
	return len(subs)
}

// Provider is implemented by the certpulse_trigger extension.
type Provider interface {
	Hub() *Hub
}

// Find returns the hub of the extension id among the host's extensions.
func Find(exts map[component.ID]component.Component, id component.ID) (*Hub, error) {
	ext, ok := exts[id]
	if !ok {
		return nil, fmt.Errorf("trigger: extension %s is not configured (add it to service::extensions)", id)
	}
	p, ok := ext.(Provider)
	if !ok {
		return nil, fmt.Errorf("trigger: extension %s is not a certpulse_trigger extension", id)
	}
	return p.Hub(), nil
}
