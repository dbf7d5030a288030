package trigger // import "github.com/certpulse/certpulse/internal/trigger"

// Claim is one receiver's claim on a key (a target as configured): among
// the receivers of one collector that claim the same key, the first still
// holding it owns it and probes; the others stand by and take over in
// order when it releases. receiver_creator starts one receiver per
// discovered endpoint, and an Ingress with several paths on one host is
// several endpoints with the same target: without claims it is probed once
// per path.
type Claim struct {
	h   *Hub
	key string
	id  int
}

// Claim registers a claim on key.
func (h *Hub) Claim(key string) *Claim {
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.claims == nil {
		h.claims = map[string][]int{}
	}
	h.next++
	c := &Claim{h: h, key: key, id: h.next}
	h.claims[key] = append(h.claims[key], c.id)
	return c
}

// Owner reports whether c is the key's current owner.
func (c *Claim) Owner() bool {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	q := c.h.claims[c.key]
	return len(q) > 0 && q[0] == c.id
}

// Release withdraws c; the next claimant, if any, becomes the owner.
// Releasing twice is harmless.
func (c *Claim) Release() {
	c.h.mu.Lock()
	defer c.h.mu.Unlock()
	q := c.h.claims[c.key]
	for i, id := range q {
		if id == c.id {
			q = append(q[:i:i], q[i+1:]...)
			break
		}
	}
	if len(q) == 0 {
		delete(c.h.claims, c.key)
		return
	}
	c.h.claims[c.key] = q
}
