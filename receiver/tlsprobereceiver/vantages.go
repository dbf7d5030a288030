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
// most an interval, never none.
func (r *tlsProbeReceiver) mine(mem *targetMemory, t *probeTarget, now time.Time) bool {
	if r.vantages == nil {
		return true
	}
	d := r.vantages.Decide(t.meta.key)
	mem.vantage = d
	if d.Probe {
		mem.chosenAt = now
		return true
	}
	grace := t.interval + r.cfg.Timeout
	if !mem.chosenAt.IsZero() && now.Sub(mem.chosenAt) <= grace {
		mem.vantage.Rank = len(d.Vantages) // handing over: after the chosen ones
		return true
	}
	return false
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
