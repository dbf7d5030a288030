package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"context"

	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// isRelevant: the records the exporter decides on, incidents and the
// remediation audit trail; probe results, edge windows and other lifecycle
// events pass through the same pipeline to Loki and are not its concern.
func isRelevant(lr plog.LogRecord) bool {
	switch lr.EventName() {
	case attrs.EventIncident, attrs.EventLifecyclePrefix + attrs.LifecycleRemediation:
		return true
	}
	return false
}

// relevant returns the records of ld the exporter decides on, under their
// resource and scope, and false when there are none. ld is not changed: it
// is returned as it is when every record is relevant, copied otherwise.
func relevant(ld plog.Logs) (plog.Logs, bool) {
	n, total := 0, 0
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				total++
				if isRelevant(lrs.At(k)) {
					n++
				}
			}
		}
	}
	switch {
	case n == 0:
		return plog.Logs{}, false
	case n == total:
		return ld, true
	}
	out := plog.NewLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		var orl plog.ResourceLogs
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sl := sls.At(j)
			var osl plog.ScopeLogs
			lrs := sl.LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if !isRelevant(lrs.At(k)) {
					continue
				}
				if orl == (plog.ResourceLogs{}) {
					orl = out.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(orl.Resource())
					orl.SetSchemaUrl(rl.SchemaUrl())
				}
				if osl == (plog.ScopeLogs{}) {
					osl = orl.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(osl.Scope())
					osl.SetSchemaUrl(sl.SchemaUrl())
				}
				lrs.At(k).CopyTo(osl.LogRecords().AppendEmpty())
			}
		}
	}
	return out, true
}

// relevantOnly hands the exporter (and its queue, persistent or not) only
// the records it decides on: in a gateway every probe result would
// otherwise cost a write, a read and a delete in the queue's storage.
type relevantOnly struct {
	exporter.Logs
}

func (r relevantOnly) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	out, ok := relevant(ld)
	if !ok {
		return nil
	}
	return r.Logs.ConsumeLogs(ctx, out)
}
