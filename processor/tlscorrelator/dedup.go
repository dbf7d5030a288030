package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"encoding/binary"
	"hash/maphash"
	"math"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// applied remembers the records the engine has applied, so that a batch
// redelivered after a refusal (state not persisted, the next consumer
// refusing) changes nothing the second time: edge windows are not merged
// again, failures not appended again (corroboration would be met sooner
// than real), counters not advanced twice. Bounded: the oldest keys are
// forgotten first (a redelivery comes soon after the refusal).
type applied struct {
	pass  map[uint64]bool // key -> the record was passed on (probes)
	ring  []uint64
	next  int
	limit int
}

const maxApplied = 1 << 16

// newApplied remembers up to n keys; it grows with use (an idle
// collector does not hold n keys' worth of memory).
func newApplied(n int) *applied {
	return &applied{pass: map[uint64]bool{}, limit: n}
}

// seen reports whether key was applied, and whether it was passed on.
func (a *applied) seen(key uint64) (pass, ok bool) {
	pass, ok = a.pass[key]
	return pass, ok
}

// add remembers key.
func (a *applied) add(key uint64, pass bool) {
	if _, ok := a.pass[key]; ok {
		a.pass[key] = pass
		return
	}
	if len(a.ring) < a.limit {
		a.ring = append(a.ring, key)
	} else {
		delete(a.pass, a.ring[a.next])
		a.ring[a.next] = key
		a.next = (a.next + 1) % len(a.ring)
	}
	a.pass[key] = pass
}

// recordKey identifies a record by its content: timestamp, event name and
// every attribute of it and its resource, in order (a redelivery carries
// the same bytes). h is reused (the caller holds the lock).
func recordKey(h *maphash.Hash, res pcommon.Map, lr plog.LogRecord) uint64 {
	h.Reset()
	var b [8]byte
	put := func(u uint64) {
		binary.LittleEndian.PutUint64(b[:], u)
		_, _ = h.Write(b[:])
	}
	put(uint64(lr.Timestamp()))
	_, _ = h.WriteString(lr.EventName())
	for _, m := range []pcommon.Map{res, lr.Attributes()} {
		_ = h.WriteByte(0)
		m.Range(func(k string, v pcommon.Value) bool {
			_, _ = h.WriteString(k)
			_ = h.WriteByte(byte(v.Type()))
			switch v.Type() {
			case pcommon.ValueTypeStr:
				_, _ = h.WriteString(v.Str())
			case pcommon.ValueTypeInt:
				put(uint64(v.Int()))
			case pcommon.ValueTypeDouble:
				put(math.Float64bits(v.Double()))
			case pcommon.ValueTypeBool:
				if v.Bool() {
					_ = h.WriteByte(1)
				}
			default:
				_, _ = h.WriteString(v.AsString())
			}
			return true
		})
	}
	return h.Sum64()
}
