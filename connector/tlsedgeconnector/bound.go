package tlsedgeconnector

import (
	"encoding/binary"
	"hash/maphash"
	"sort"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// other is the label of everything beyond a bound.
const other = "other"

// topNames keeps the max busiest server names as labels. A name is
// admitted while there is room; afterwards it counts as "other" and as a
// candidate, and every interval (rotate) a candidate busier in that
// interval than the quietest kept name takes its place. Candidates are
// bounded too (4 x max, the quietest forgotten).
type topNames struct {
	max        int
	kept       map[string]int64 // name -> handshakes this interval
	candidates map[string]int64
}

func newTopNames(max int) *topNames {
	return &topNames{max: max, kept: map[string]int64{}, candidates: map[string]int64{}}
}

// label returns the label for name and counts it.
func (t *topNames) label(name string) string {
	if name == "" {
		return ""
	}
	if _, ok := t.kept[name]; ok {
		t.kept[name]++
		return name
	}
	if len(t.kept) < t.max {
		t.kept[name] = 1
		return name
	}
	if _, ok := t.candidates[name]; !ok && len(t.candidates) >= 4*t.max {
		t.dropQuietestCandidate()
	}
	t.candidates[name]++
	return other
}

// peek returns name's label without counting it.
func (t *topNames) peek(name string) string {
	if _, ok := t.kept[name]; ok || name == "" {
		return name
	}
	return other
}

func (t *topNames) dropQuietestCandidate() {
	var q string
	qn := int64(-1)
	for n, c := range t.candidates {
		if qn < 0 || c < qn || (c == qn && n > q) {
			q, qn = n, c
		}
	}
	delete(t.candidates, q)
}

// rotate swaps busier candidates in, quieter kept names out, and starts a
// new interval. It returns the names that lost their label.
func (t *topNames) rotate() (evicted []string) {
	type nc struct {
		n string
		c int64
	}
	var cands, kept []nc
	for n, c := range t.candidates {
		cands = append(cands, nc{n, c})
	}
	for n, c := range t.kept {
		kept = append(kept, nc{n, c})
	}
	sort.Slice(cands, func(i, j int) bool {
		return cands[i].c > cands[j].c || cands[i].c == cands[j].c && cands[i].n < cands[j].n
	})
	sort.Slice(kept, func(i, j int) bool { return kept[i].c < kept[j].c || kept[i].c == kept[j].c && kept[i].n > kept[j].n })
	for i := 0; i < len(cands) && i < len(kept) && cands[i].c > kept[i].c; i++ {
		delete(t.kept, kept[i].n)
		t.kept[cands[i].n] = 0
		evicted = append(evicted, kept[i].n)
	}
	for n := range t.kept {
		t.kept[n] = 0
	}
	clear(t.candidates)
	return evicted
}

// firstN keeps the first max distinct values as labels, "other" after.
type firstN struct {
	max  int
	seen map[string]struct{}
}

func newFirstN(max int) *firstN { return &firstN{max: max, seen: map[string]struct{}{}} }

func (f *firstN) label(v string) string {
	if _, ok := f.seen[v]; ok {
		return v
	}
	if len(f.seen) < f.max {
		f.seen[v] = struct{}{}
		return v
	}
	return other
}

// connTable remembers connections of proxies that log no request number,
// so that each is counted once. Bounded: when full, connections idle for
// longer than idle go first, then the oldest half.
type connTable struct {
	max  int
	idle time.Duration
	last map[string]time.Time
}

func newConnTable(max int, idle time.Duration) *connTable {
	return &connTable{max: max, idle: idle, last: map[string]time.Time{}}
}

// first says whether key is a connection not seen within idle, and
// remembers it.
func (c *connTable) first(key string, now time.Time) bool {
	t, ok := c.last[key]
	c.last[key] = now
	if ok && now.Sub(t) <= c.idle {
		return false
	}
	if len(c.last) > c.max {
		c.evict(now)
	}
	return true
}

func (c *connTable) evict(now time.Time) {
	for k, t := range c.last {
		if now.Sub(t) > c.idle {
			delete(c.last, k)
		}
	}
	if len(c.last) <= c.max {
		return
	}
	ts := make([]time.Time, 0, len(c.last))
	for _, t := range c.last {
		ts = append(ts, t)
	}
	sort.Slice(ts, func(i, j int) bool { return ts[i].Before(ts[j]) })
	cut := ts[len(ts)/2]
	for k, t := range c.last {
		if t.Before(cut) {
			delete(c.last, k)
		}
	}
}

// replayWindow is how long a record is remembered to recognize it when its
// batch comes again (10 to 20 minutes: two generations of 10).
const replayWindow = 10 * time.Minute

// recentSet remembers record keys and their kind for a while, bounded:
// two generations of at most max keys each; the older is dropped when the
// newer fills or gets older than span.
type recentSet struct {
	max       int
	span      time.Duration
	cur, prev map[uint64]kind
	since     time.Time
}

func newRecentSet(max int, span time.Duration) *recentSet {
	return &recentSet{max: max, span: span, cur: map[uint64]kind{}, prev: map[uint64]kind{}}
}

func (s *recentSet) get(k uint64) (kind, bool) {
	if v, ok := s.cur[k]; ok {
		return v, true
	}
	v, ok := s.prev[k]
	return v, ok
}

func (s *recentSet) put(k uint64, v kind, now time.Time) {
	if s.since.IsZero() {
		s.since = now
	}
	if len(s.cur) >= s.max || now.Sub(s.since) >= s.span {
		s.prev, s.cur, s.since = s.cur, make(map[uint64]kind, len(s.cur)), now
	}
	s.cur[k] = v
}

// recordKey identifies a record as its receiver made it: the time filelog
// read the line (distinct per line), the line's time, its attributes and
// body, and the resource. ok is false for records without a read time
// (nothing tells two identical lines apart): they are never deduplicated.
func (t *tracker) recordKey(res pcommon.Map, lr plog.LogRecord) (uint64, bool) {
	if lr.ObservedTimestamp() == 0 {
		return 0, false
	}
	var h maphash.Hash
	h.SetSeed(t.seed)
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(lr.ObservedTimestamp()))
	h.Write(b[:])
	binary.LittleEndian.PutUint64(b[:], uint64(lr.Timestamp()))
	h.Write(b[:])
	for _, m := range []pcommon.Map{res, lr.Attributes()} {
		m.Range(func(k string, v pcommon.Value) bool {
			h.WriteString(k)
			h.WriteByte(0)
			hashValue(&h, v)
			return true
		})
		h.WriteByte(1)
	}
	hashValue(&h, lr.Body())
	return h.Sum64(), true
}

// hashValue writes a value without formatting it: strings (nearly every
// value a log receiver makes) as they are, the rest as text.
func hashValue(h *maphash.Hash, v pcommon.Value) {
	if v.Type() == pcommon.ValueTypeStr {
		h.WriteString(v.Str())
	} else {
		h.WriteString(v.AsString())
	}
	h.WriteByte(0)
}
