package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"sort"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/processor/tlscorrelator/internal/metadata"
)

// Remediation states of an open incident (certpulse.incident.remediation).
const (
	remediationNone     = "none"
	remediationRunning  = "running"
	remediationAwaiting = string(attrs.OutcomeAwaitingApproval)
)

// openGroup is one row of the open-incidents snapshot.
type openGroup struct {
	service, env, owner, severity, reason, remediation string
}

// openSummary counts the announced, unresolved incidents by group at now.
func (e *engine) openSummary(now time.Time) map[openGroup]int {
	out := map[openGroup]int{}
	for _, inc := range e.incidents {
		if !inc.Announced || inc.State == "" || inc.State == attrs.StateResolved {
			continue
		}
		rem := remediationNone
		switch {
		case inc.Awaiting:
			rem = remediationAwaiting
		case now.Before(inc.RemediateTil):
			rem = remediationRunning
		}
		out[openGroup{inc.Service, inc.Env, inc.Owner, string(inc.Severity), string(inc.Reason), rem}]++
	}
	return out
}

// appendOpenSummary renders the snapshot as `certpulse.incidents.open`
// records, one per group, with a 0 for each group that was open at the
// previous snapshot and is not any more (so the gauge drops to 0 rather
// than going stale).
func appendOpenSummary(ld plog.Logs, cur, prev map[openGroup]int, now time.Time) {
	groups := make([]openGroup, 0, len(cur)+len(prev))
	for g := range cur {
		groups = append(groups, g)
	}
	for g := range prev {
		if _, ok := cur[g]; !ok {
			groups = append(groups, g)
		}
	}
	sort.Slice(groups, func(i, j int) bool { return groupKey(groups[i]) < groupKey(groups[j]) })
	for _, g := range groups {
		lr := snapshotRecord(ld, attrs.EventOpenIncidents, g.service, g.env, g.owner, now)
		a := lr.Attributes()
		a.PutStr(attrs.Severity, g.severity)
		a.PutStr(attrs.ReasonKey, g.reason)
		a.PutStr(attrs.IncidentRemediation, g.remediation)
		a.PutInt(attrs.OpenIncidents, int64(cur[g]))
		lr.Body().SetStr(g.service + ": " + strconv.Itoa(cur[g]) + " open " + g.severity + " " + g.reason + " incident(s), remediation " + g.remediation)
	}
}

// appendBrake renders the brake state (1 engaged, 0 released) as a
// `certpulse.remediation.brake` record.
func appendBrake(ld plog.Logs, brake attrs.Outcome, now time.Time) {
	lr := snapshotRecord(ld, attrs.EventRemediationBrake, "certpulse-remediation", "", "", now)
	v := int64(0)
	if brake == attrs.OutcomeBrakeEngaged {
		v = 1
	}
	lr.Attributes().PutInt(attrs.RemediationBrake, v)
	lr.Body().SetStr("remediation brake: " + string(brake))
}

// snapshotRecord appends an INFO record named event, stamped now, under a
// resource of its own with the routing keys given (env and owner when set).
func snapshotRecord(ld plog.Logs, event, service, env, owner string, now time.Time) plog.LogRecord {
	rl := ld.ResourceLogs().AppendEmpty()
	ra := rl.Resource().Attributes()
	ra.PutStr(attrs.ServiceName, service)
	if env != "" {
		ra.PutStr(attrs.DeploymentEnv, env)
	}
	if owner != "" {
		ra.PutStr(attrs.Owner, owner)
	}
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	lr := sl.LogRecords().AppendEmpty()
	ts := pcommon.NewTimestampFromTime(now)
	lr.SetTimestamp(ts)
	lr.SetObservedTimestamp(ts)
	lr.SetEventName(event)
	lr.SetSeverityNumber(plog.SeverityNumberInfo)
	lr.SetSeverityText("Info")
	return lr
}

func groupKey(g openGroup) string {
	return g.service + "\x00" + g.env + "\x00" + g.owner + "\x00" + g.severity + "\x00" + g.reason + "\x00" + g.remediation
}
