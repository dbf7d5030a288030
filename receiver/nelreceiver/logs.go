package nelreceiver // import "github.com/certpulse/certpulse/receiver/nelreceiver"

import (
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/receiver/nelreceiver/internal/metadata"
)

// buildLogs makes one record per accepted report (outcome ""), grouped by
// service (one resource each); it returns how many.
func buildLogs(reports []report, outcomes []outcome, services []*ServiceConfig, client string, withClient bool, now time.Time) (plog.Logs, int) {
	ld := plog.NewLogs()
	bySvc := map[*ServiceConfig]plog.LogRecordSlice{}
	n := 0
	for i := range reports {
		if outcomes[i] != "" {
			continue
		}
		svc := services[i]
		recs, ok := bySvc[svc]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			ra := rl.Resource().Attributes()
			ra.PutStr(attrs.ServiceName, svc.Name)
			putNonEmpty(ra, attrs.DeploymentEnv, svc.Environment)
			putNonEmpty(ra, attrs.Owner, svc.Owner)
			putNonEmpty(ra, attrs.Criticality, svc.Criticality)
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(metadata.ScopeName)
			recs = sl.LogRecords()
			bySvc[svc] = recs
		}
		putRecord(recs.AppendEmpty(), &reports[i], client, withClient, now)
		n++
	}
	return ld, n
}

func putRecord(lr plog.LogRecord, r *report, client string, withClient bool, now time.Time) {
	lr.SetEventName(attrs.EventNELReport)
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(now))
	lr.SetTimestamp(pcommon.NewTimestampFromTime(now.Add(-r.Age)))
	reason := reasonOf(r.Type)
	switch reason {
	case attrs.ReasonOK:
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
	default:
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
		lr.SetSeverityText("WARN")
	}
	body := "network-error " + r.Type + " on " + r.Scheme + "://" + r.Host
	if c := r.Client.String(); c != "" {
		body += " (" + c + ")"
	}
	if reason != "" && reason != attrs.ReasonOK {
		body += ": " + string(reason)
	}
	lr.Body().SetStr(body)
	a := lr.Attributes()
	a.PutStr(attrs.ServerAddress, r.Host)
	a.PutInt(attrs.ServerPort, r.Port)
	a.PutStr(attrs.URLScheme, r.Scheme)
	a.PutStr(attrs.NELType, r.Type)
	putNonEmpty(a, attrs.NELPhase, r.Phase)
	if reason != "" {
		a.PutStr(attrs.ReasonKey, string(reason))
		if info, ok := attrs.Info(reason); ok && reason != attrs.ReasonOK {
			a.PutStr(attrs.ReasonSideKey, string(info.Side))
		}
	}
	putNonEmpty(a, attrs.NetworkPeerAddress, r.ServerIP)
	putNonEmpty(a, attrs.NELProtocol, r.Protocol)
	putNonEmpty(a, attrs.HTTPMethod, r.Method)
	if r.Status > 0 {
		a.PutInt(attrs.HTTPStatusCode, r.Status)
	}
	a.PutInt(attrs.NELElapsed, r.Elapsed)
	a.PutInt(attrs.NELAge, r.Age.Milliseconds())
	if r.Sampling > 0 {
		a.PutDouble(attrs.NELSamplingFraction, r.Sampling)
	}
	putNonEmpty(a, attrs.UserAgentName, r.Client.Family)
	putNonEmpty(a, attrs.UserAgentVersion, r.Client.Major)
	if reason != attrs.ReasonOK && r.Client.Family != "" {
		a.PutStr(attrs.ClientsFailing, r.Client.Family)
	}
	if withClient {
		a.PutStr(attrs.ClientAddress, client)
	}
}

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}
