package tlsinspect

import (
	"sync"
	"time"
)

// ttlCache is a small bounded cache with per-entry expiry. When full, expired
// entries are dropped first, then the entry closest to expiry.
type ttlCache[V any] struct {
	mu      sync.Mutex
	max     int
	entries map[string]ttlEntry[V]
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[V any](maxEntries int) *ttlCache[V] {
	return &ttlCache[V]{max: maxEntries, entries: make(map[string]ttlEntry[V])}
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
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[key]; !ok && len(c.entries) >= c.max {
		var victim string
		var soonest time.Time
		for k, e := range c.entries {
			if !now.Before(e.expires) {
				delete(c.entries, k)
				continue
			}
			if victim == "" || e.expires.Before(soonest) {
				victim, soonest = k, e.expires
			}
		}
		if len(c.entries) >= c.max && victim != "" {
			delete(c.entries, victim)
		}
	}
	c.entries[key] = ttlEntry[V]{v: v, expires: expires}
}

func (c *ttlCache[V]) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.entries)
}
