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
	"github.com/certpulse/certpulse/internal/records"
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
		if _, name, _, ok := splitKey(k); ok {
			seen[name] = struct{}{}
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

// appendIncident adds one incident transition record to ld (the records
// package writes it; the remediation exporter reads it back with the same
// package).
func appendIncident(ld plog.Logs, tr transition, observed time.Time) {
	rec := incidentRecord(tr, observed)
	records.AppendIncident(ld, metadata.ScopeName, &rec)
}

// incidentRecord is the record of one transition: what the incident says,
// as of tr, for the record's readers.
func incidentRecord(tr transition, observed time.Time) records.Incident {
	inc := &tr.inc
	names := endpointNames(inc)
	rec := records.Incident{
		ID: inc.ID, State: tr.state, PrevState: tr.prev, Severity: inc.Severity,
		Reason: inc.Reason, ReasonSide: sideOf(inc), ProbeReason: inc.ProbeReason,
		Service: inc.Service, Environment: inc.Env, Owner: inc.Owner, Criticality: inc.Crit,
		Impact: inc.Impact, Endpoints: names, Targets: incidentTargets(inc),
		Vantages: sortedKeys(inc.Vantages), Profiles: sortedKeys(inc.Profiles),
		Summary: incidentSummary(tr, names), Recurring: inc.Recurring, Flaps: inc.Flaps, Corroborated: inc.Corroborated,
		Failures: len(inc.Failures), Time: tr.at, Observed: observed, OpenedAt: inc.OpenedAt.Truncate(time.Second),
		FaultAt: inc.FaultAt, ActedAt: inc.ActedAt, FixedAt: inc.FixedAt,
		LastGoodChain: inc.LastGoodChain, LastGoodSPKI: inc.LastGoodSPKI, NotAfter: inc.NotAfter.Truncate(time.Second),
	}
	if len(inc.Regions) == 1 {
		for r := range inc.Regions {
			rec.Region = r
		}
	}
	if inc.Suppressed != "" && tr.state == attrs.StateSuppressed {
		rec.SuppressedBy = inc.Suppressed
	}
	if tr.state == attrs.StateResolved {
		rec.Resolution, rec.ResolvedAt = inc.Resolution, inc.ResolvedAt
	}
	if d := inc.Deploy; d != nil {
		rec.JobID, rec.Artifact = d.JobID, d.Artifact
	}
	if inc.EdgeShare > 0 {
		rec.EdgeShare, rec.EdgeHandshakes, rec.EdgeNodes = inc.EdgeShare, inc.EdgeHandshakes, inc.EdgeNodes
	}
	rec.UserReports, rec.ClientsFailing = inc.UserReports, inc.ClientsFailing
	if !inc.Edge {
		// The identity is a chain hash (lower-case hex), a leaf hash
		// (upper-case hex, as tls.server.hash.sha256) or an SPKI hash.
		switch id := inc.Identity; {
		case id == "":
		case len(id) == 64 && strings.ToLower(id) == id:
			rec.Chain = id
		case len(id) == 64:
			rec.LeafHash = id
		default:
			rec.SPKI = id
		}
		if rec.SPKI == "" {
			rec.SPKI = inc.SPKI
		}
	}
	return rec
}

func sideOf(inc *incident) attrs.Side {
	r := inc.Reason
	if inc.ProbeReason != "" {
		r = inc.ProbeReason
	}
	if info, ok := attrs.Info(r); ok {
		return info.Side
	}
	switch inc.Reason {
	case attrs.ReasonPostDeployRegression, attrs.ReasonPropagationLag, attrs.ReasonRenewalFailed, attrs.ReasonRenewalOverdue, attrs.ReasonUnexpectedCertChange, attrs.ReasonResumptionDegraded:
		return attrs.SideServer
	}
	return ""
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
