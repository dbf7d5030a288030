package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"cmp"
	"fmt"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/processor/tlscorrelator/internal/metadata"
)

// enrich adds catalog and context attributes to a probe record.
func enrich(res pcommon.Map, lr plog.LogRecord, en enrichment) {
	putIfMissing(res, attrs.Owner, en.owner)
	putIfMissing(res, attrs.Criticality, en.crit)
	putIfMissing(res, attrs.DeploymentEnv, en.env)
	a := lr.Attributes()
	a.PutDouble(attrs.EnrichTrafficWeight, en.trafficWeight)
	if en.lastGoodChain != "" {
		a.PutStr(attrs.EnrichLastGoodChain, en.lastGoodChain)
	}
	if en.lastGoodSPKI != "" {
		a.PutStr(attrs.EnrichLastGoodSPKI, en.lastGoodSPKI)
	}
	if d := en.deploy; d != nil {
		if d.JobID != "" {
			a.PutStr(attrs.EnrichLastDeployJob, d.JobID)
		}
		if d.Artifact != "" {
			a.PutStr(attrs.EnrichLastDeployVersion, d.Artifact)
		}
		a.PutStr(attrs.EnrichLastDeployTime, d.Time.UTC().Format(time.RFC3339))
	}
	if r := en.renewal; r != nil && r.JobID != "" {
		a.PutStr(attrs.EnrichLastRenewalJob, r.JobID)
	}
}

func putIfMissing(m pcommon.Map, k, v string) {
	if v == "" {
		return
	}
	if _, ok := m.Get(k); !ok {
		m.PutStr(k, v)
	}
}

// endpointNames returns the sorted distinct host:port of an incident.
func endpointNames(inc *incident) []string {
	seen := map[string]struct{}{}
	for k := range inc.Endpoints {
		parts := strings.SplitN(k, "|", 4)
		if len(parts) >= 2 {
			seen[parts[1]] = struct{}{}
		}
	}
	out := make([]string, 0, len(seen))
	for k := range seen {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// incidentTargets lists "server.address@dialed host:port" of every affected
// endpoint, sorted and distinct, for verifiers that re-probe.
func incidentTargets(inc *incident) []string {
	seen := map[string]struct{}{}
	for _, e := range inc.Endpoints {
		if e.Target != "" {
			seen[e.Target] = struct{}{}
		}
	}
	return sortedKeys(seen)
}

func sortedKeys(m map[string]struct{}) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// appendIncident adds one incident transition record to ld, on a resource
// that carries the routing keys.
func appendIncident(ld plog.Logs, tr transition, observed time.Time) {
	inc := &tr.inc
	rl := ld.ResourceLogs().AppendEmpty()
	ra := rl.Resource().Attributes()
	ra.PutStr(attrs.ServiceName, inc.Service)
	putIfMissing(ra, attrs.DeploymentEnv, inc.Env)
	putIfMissing(ra, attrs.Owner, inc.Owner)
	putIfMissing(ra, attrs.Criticality, inc.Crit)
	ra.PutStr(attrs.Severity, string(inc.Severity))
	if len(inc.Regions) == 1 {
		for r := range inc.Regions {
			ra.PutStr(attrs.CloudRegion, r)
		}
	}
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(pcommon.NewTimestampFromTime(tr.at))
	lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(observed))
	lr.SetEventName(attrs.EventIncident)
	switch {
	case tr.state == attrs.StateResolved:
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
	case inc.Severity == attrs.SeverityPage:
		lr.SetSeverityNumber(plog.SeverityNumberFatal)
	case inc.Severity == attrs.SeverityAlert:
		lr.SetSeverityNumber(plog.SeverityNumberError)
	default:
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
	}
	lr.SetSeverityText(lr.SeverityNumber().String())
	names := endpointNames(inc)
	lr.Body().SetStr(incidentSummary(tr, names))
	a := lr.Attributes()
	a.PutStr(attrs.IncidentID, inc.ID)
	a.PutStr(attrs.IncidentState, string(tr.state))
	if tr.prev != "" {
		a.PutStr(attrs.IncidentPrevState, string(tr.prev))
	}
	a.PutStr(attrs.Severity, string(inc.Severity))
	a.PutDouble(attrs.Impact, inc.Impact)
	a.PutStr(attrs.ReasonKey, string(inc.Reason))
	side := sideOf(inc)
	if side != "" {
		a.PutStr(attrs.ReasonSideKey, side)
	}
	if inc.ProbeReason != "" {
		a.PutStr(attrs.IncidentProbeReason, string(inc.ProbeReason))
	}
	putSlice(a, attrs.IncidentEndpoints, names)
	putSlice(a, attrs.IncidentTargets, incidentTargets(inc))
	a.PutInt(attrs.IncidentEndpointCount, int64(len(names)))
	putSlice(a, attrs.IncidentVantages, sortedKeys(inc.Vantages))
	putSlice(a, attrs.IncidentProfiles, sortedKeys(inc.Profiles))
	if !inc.OpenedAt.IsZero() {
		a.PutStr(attrs.IncidentOpenedAt, inc.OpenedAt.UTC().Format(time.RFC3339))
	}
	a.PutBool(attrs.IncidentRecurring, inc.Recurring)
	if inc.Flaps > 0 {
		a.PutInt(attrs.IncidentFlaps, int64(inc.Flaps))
	}
	a.PutBool(attrs.IncidentCorroborated, inc.Corroborated)
	if inc.Suppressed != "" && tr.state == attrs.StateSuppressed {
		a.PutStr(attrs.IncidentSuppressedBy, inc.Suppressed)
	}
	if tr.state == attrs.StateResolved && inc.Resolution != "" {
		a.PutStr(attrs.IncidentResolution, inc.Resolution)
	}
	a.PutInt(attrs.IncidentFailures, int64(len(inc.Failures)))
	putTimeline(a, tr)
	if inc.LastGoodChain != "" {
		a.PutStr(attrs.EnrichLastGoodChain, inc.LastGoodChain)
	}
	if inc.LastGoodSPKI != "" {
		a.PutStr(attrs.EnrichLastGoodSPKI, inc.LastGoodSPKI)
	}
	if d := inc.Deploy; d != nil {
		if d.JobID != "" {
			a.PutStr(attrs.LifecycleJobID, d.JobID)
		}
		if d.Artifact != "" {
			a.PutStr(attrs.LifecycleArtifactVersion, d.Artifact)
		}
	}
	if inc.EdgeShare > 0 {
		a.PutDouble(attrs.IncidentEdgeFailureShare, inc.EdgeShare)
		a.PutInt(attrs.IncidentEdgeHandshakes, inc.EdgeHandshakes)
		putSlice(a, attrs.IncidentEdgeNodes, inc.EdgeNodes)
	}
	if inc.Identity != "" && !inc.Edge {
		switch {
		case len(inc.Identity) == 64 && strings.ToLower(inc.Identity) == inc.Identity:
			a.PutStr(attrs.ChainSHA256, inc.Identity)
		case len(inc.Identity) == 64:
			a.PutStr(attrs.TLSServerHash, inc.Identity)
		default:
			a.PutStr(attrs.SPKISHA256, inc.Identity)
		}
	}
	if _, ok := a.Get(attrs.SPKISHA256); !ok && inc.SPKI != "" && !inc.Edge {
		a.PutStr(attrs.SPKISHA256, inc.SPKI)
	}
	if !inc.NotAfter.IsZero() {
		a.PutStr(attrs.TLSServerNotAfter, inc.NotAfter.UTC().Format(time.RFC3339))
	}
}

// putTimeline writes the incident's timeline and, on its resolution, the
// durations the incident metrics are made of.
func putTimeline(a pcommon.Map, tr transition) {
	inc := &tr.inc
	for k, t := range map[string]time.Time{attrs.IncidentFaultAt: inc.FaultAt, attrs.IncidentActedAt: inc.ActedAt, attrs.IncidentFixedAt: inc.FixedAt} {
		if !t.IsZero() {
			a.PutStr(k, t.UTC().Format(time.RFC3339Nano))
		}
	}
	a.PutBool(attrs.IncidentAutomated, !inc.ActedAt.IsZero())
	if tr.state != attrs.StateResolved {
		return
	}
	a.PutStr(attrs.IncidentResolvedAt, inc.ResolvedAt.UTC().Format(time.RFC3339Nano))
	if inc.FaultAt.IsZero() || inc.OpenedAt.IsZero() {
		return
	}
	secs := func(d time.Duration) float64 { return max(d, 0).Seconds() }
	a.PutDouble(attrs.IncidentTimeToDetect, secs(inc.OpenedAt.Sub(inc.FaultAt)))
	if !inc.ActedAt.IsZero() {
		a.PutDouble(attrs.IncidentTimeToAct, secs(inc.ActedAt.Sub(inc.OpenedAt)))
	}
	if inc.Resolution == "healthy" {
		fixed := inc.FixedAt
		if fixed.IsZero() {
			fixed = inc.ResolvedAt // resolved by a lifecycle event
		}
		a.PutDouble(attrs.IncidentTimeToFix, secs(fixed.Sub(inc.FaultAt)))
	}
}

func sideOf(inc *incident) string {
	r := inc.Reason
	if inc.ProbeReason != "" {
		r = inc.ProbeReason
	}
	if info, ok := attrs.Info(r); ok {
		return string(info.Side)
	}
	switch inc.Reason {
	case attrs.ReasonPostDeployRegression, attrs.ReasonPropagationLag, attrs.ReasonRenewalFailed, attrs.ReasonRenewalOverdue, attrs.ReasonUnexpectedCertChange, attrs.ReasonResumptionDegraded:
		return string(attrs.SideServer)
	}
	return ""
}

func putSlice(a pcommon.Map, k string, vs []string) {
	s := a.PutEmptySlice(k)
	s.EnsureCapacity(len(vs))
	for _, v := range vs {
		s.AppendEmpty().SetStr(v)
	}
}

func incidentSummary(tr transition, names []string) string {
	inc := &tr.inc
	var b strings.Builder
	fmt.Fprintf(&b, "[%s] %s %s on %s", inc.Severity, tr.state, inc.Reason, inc.Service)
	if inc.Env != "" {
		fmt.Fprintf(&b, " (%s)", inc.Env)
	}
	if len(names) > 0 {
		fmt.Fprintf(&b, ": %d endpoint(s) from %d vantage(s)", len(names), len(inc.Vantages))
	}
	if d := inc.Deploy; d != nil && inc.Reason == attrs.ReasonPostDeployRegression {
		fmt.Fprintf(&b, ", beginning after %s %s", d.Type, cmp.Or(d.JobID, "(no job id)"))
		if d.Artifact != "" {
			fmt.Fprintf(&b, " (%s)", d.Artifact)
		}
	}
	if inc.Recurring {
		fmt.Fprintf(&b, ", recurring (%d flaps)", inc.Flaps)
	}
	if inc.Suppressed != "" && tr.state == attrs.StateSuppressed {
		fmt.Fprintf(&b, ", suppressed by %s", inc.Suppressed)
	}
	if inc.Detail != "" && tr.state != attrs.StateResolved {
		fmt.Fprintf(&b, ": %s", inc.Detail)
	}
	return b.String()
}
