package tlsinspect

import (
	"strconv"
	"testing"
	"time"
)

// TestCacheCostBudget: the cache stays within its byte budget, evicting the
// entries closest to expiry; an entry larger than the budget is not kept.
func TestCacheCostBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	c := newCostCache(1000, func(n int) int64 { return int64(n) })
	for i := 0; i < 10; i++ {
		c.put("k"+strconv.Itoa(i), 300, now.Add(time.Duration(i+1)*time.Minute), now)
	}
	if c.used > 1000 || c.len() != 3 {
		t.Fatalf("used %d bytes in %d entries, want at most 1000 in 3", c.used, c.len())
	}
	if _, ok := c.get("k9", now); !ok {
		t.Fatalf("the entry expiring last was evicted")
	}
	if _, ok := c.get("k0", now); ok {
		t.Fatalf("the entry expiring first was kept")
	}
	c.put("huge", 5000, now.Add(time.Hour), now)
	if _, ok := c.get("huge", now); ok || c.used > 1000 {
		t.Fatalf("an entry over the budget was cached (used %d)", c.used)
	}
	c.put("k9", 100, now.Add(time.Hour), now) // replacing frees the old cost
	if c.used != 700 {
		t.Fatalf("used %d after replacing a 300-byte entry by a 100-byte one, want 700", c.used)
	}
	// CRL entries cost their listed serials.
	big := crlEntry{revoked: map[string]time.Time{}}
	for i := 0; i < 1000; i++ {
		big.revoked[strconv.Itoa(i)] = now
	}
	if s := big.size(); s < 50_000 {
		t.Fatalf("a CRL of 1000 serials costs %d bytes", s)
	}
}
