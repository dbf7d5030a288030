package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/vantage"
)

// mine decides whether this agent probes t now (certpulse_vantages): it
// is one of t's vantages, or was within the last interval plus timeout. A
// target changing hands (an agent joined, or came back) is probed by the
// old vantage once more while the new one starts: k+1 vantages for at
// most an interval, never none. It returns the target's memory when this
// agent keeps one: a target this agent is not a vantage of has none (an agent of N
// keeps about k/N of the memories), and a handed-over target's is let go once its grace has passed.
func (r *tlsProbeReceiver) mine(key string, t *probeTarget, now time.Time) (*targetMemory, bool) {
	if r.vantages == nil {
		return r.memory.of(key), true
	}
	d := r.vantages.Decide(key)
	if d.Probe {
		mem := r.memory.of(key)
		mem.vantage, mem.chosenAt = d, now.UnixNano()
		return mem, true
	}
	mem := r.memory.peek(key)
	if mem == nil {
		return nil, false
	}
	grace := t.interval + r.cfg.Timeout
	if mem.chosenAt != 0 && time.Duration(now.UnixNano()-mem.chosenAt) <= grace {
		mem.vantage = d
		mem.vantage.Rank = len(d.Vantages) // handing over: after the chosen ones
		return mem, true
	}
	r.memory.forget(key)
	return nil, false
}

// withVantages puts the target's vantage set and this agent's rank on
// every record: who else probes it, and whether this agent is its owner
// (rank 0).
func withVantages(ld plog.Logs, d vantage.Decision) plog.Logs {
	if d.Vantages == nil {
		return ld
	}
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				a := lrs.At(k).Attributes()
				a.PutInt(attrs.VantageRank, int64(d.Rank))
				s := a.PutEmptySlice(attrs.Vantages)
				for _, v := range d.Vantages {
					s.AppendEmpty().SetStr(v)
				}
			}
		}
	}
	return ld
}
