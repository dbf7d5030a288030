package tlsinspect

import (
	"sync"
	"time"
)

// ttlCache is a bounded cache with per-entry expiry. Each entry has a cost
// (1 by default; CRLs cost their size in bytes) and the total stays within
// the budget: expired entries are dropped first, then the entries closest
// to expiry. An entry that alone exceeds the budget is not cached.
type ttlCache[V any] struct {
	mu      sync.Mutex
	budget  int64
	used    int64
	cost    func(V) int64
	entries map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	cost    int64
	expires time.Time
}

// newTTLCache bounds the cache by entry count.
func newTTLCache[V any](maxEntries int) *ttlCache[V] {
	return newCostCache[V](int64(maxEntries), func(V) int64 { return 1 })
}

// newCostCache bounds the cache by the sum of cost over its entries.
func newCostCache[V any](budget int64, cost func(V) int64) *ttlCache[V] {
	return &ttlCache[V]{budget: budget, cost: cost, entries: make(map[string]ttlEntry[V])}
}

func (c *ttlCache[V]) get(key string, now time.Time) (V, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.entries[key]
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

func (c *ttlCache[V]) put(key string, v V, expires time.Time, now time.Time) {
	if !now.Before(expires) {
		return
	}
	cost := max(c.cost(v), 1)
	if cost > c.budget {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.remove(key)
	if c.used+cost > c.budget {
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				c.remove(k)
			}
		}
	}
	for c.used+cost > c.budget {
		var victim string
		var soonest time.Time
		for k, e := range c.entries {
			if victim == "" || e.expires.Before(soonest) {
				victim, soonest = k, e.expires
			}
		}
		c.remove(victim)
	}
	c.entries[key] = ttlEntry[V]{v: v, cost: cost, expires: expires}
	c.used += cost
}

// remove drops key; the caller holds c.mu.
func (c *ttlCache[V]) remove(key string) {
	if e, ok := c.entries[key]; ok {
		c.used -= e.cost
		delete(c.entries, key)
	}
}

func (c *ttlCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
