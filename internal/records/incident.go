// Package records is the one contract between certpulse's components for
// the records one of them writes and another reads: the incident transition
// (written by the tlscorrelator processor, read by the remediation exporter)
// and the remediation audit event (written by the remediation exporter as a
// certlifecycle event, read back by the exporter's audit trail and by the
// correlator's remediation hold). docs/schema.md lists the attributes.
package records // import "github.com/certpulse/certpulse/internal/records"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// Incident is one incident transition record; it is also the data of the
// remediation exporter's webhook body templates ({{.Incident.Service}}),
// and what it persists of the latest transition (JSON).
type Incident struct {
	ID          string              `json:"id"`
	State       attrs.State         `json:"state"`
	PrevState   attrs.State         `json:"prev_state,omitempty"`
	Severity    attrs.SeverityLevel `json:"severity"`
	Reason      attrs.Reason        `json:"reason"`
	ReasonSide  attrs.Side          `json:"reason_side,omitempty"`
	ProbeReason attrs.Reason        `json:"probe_reason,omitempty"`
	// Routing keys (resource attributes).
	Service     string `json:"service"`
	Environment string `json:"environment,omitempty"`
	Owner       string `json:"owner,omitempty"`
	Criticality string `json:"criticality,omitempty"`
	// Region is set when every affected vantage is in one region.
	Region string  `json:"region,omitempty"`
	Impact float64 `json:"impact"`
	// Endpoints are the affected host:port; Targets are
	// server.address@dialed host:port.
	Endpoints []string `json:"endpoints,omitempty"`
	Targets   []string `json:"targets,omitempty"`
	Vantages  []string `json:"vantages,omitempty"`
	Profiles  []string `json:"profiles,omitempty"`
	// Summary is the record's body: one line that says it all.
	Summary      string `json:"summary"`
	Recurring    bool   `json:"recurring,omitempty"`
	Flaps        int    `json:"flaps,omitempty"`
	Corroborated bool   `json:"corroborated,omitempty"`
	SuppressedBy string `json:"suppressed_by,omitempty"`
	Failures     int    `json:"failures,omitempty"`
	// JobID, Artifact: the deploy a post-deploy regression began after.
	JobID    string    `json:"job_id,omitempty"`
	Artifact string    `json:"artifact_version,omitempty"`
	Time     time.Time `json:"time"`
	// Observed is when the correlator emitted the record.
	Observed time.Time `json:"observed,omitzero"`
	// OpenedAt: when this episode of the incident opened (ids repeat
	// across episodes; idempotency keys and the attempt cap do not). The
	// record carries it to the second.
	OpenedAt time.Time `json:"opened_at,omitzero"`
	// Resolution: healthy or expired, on resolved transitions.
	Resolution string `json:"resolution,omitempty"`
	// The timeline: the first failure, the first action sent, every
	// affected endpoint healthy again (the correlator's verdict after an
	// action), the resolution.
	FaultAt    time.Time `json:"fault_at,omitzero"`
	ActedAt    time.Time `json:"acted_at,omitzero"`
	FixedAt    time.Time `json:"fixed_at,omitzero"`
	ResolvedAt time.Time `json:"resolved_at,omitzero"`
	// LastGoodChain, LastGoodSPKI: what the first affected endpoint served
	// when last healthy (what a rollback restores).
	LastGoodChain string `json:"last_good_chain,omitempty"`
	LastGoodSPKI  string `json:"last_good_spki,omitempty"`
	// Chain, LeafHash, SPKI: the certificate identity the incident is
	// about (what the endpoints serve now), where it has one.
	Chain    string    `json:"chain,omitempty"`
	LeafHash string    `json:"leaf_hash,omitempty"`
	SPKI     string    `json:"spki,omitempty"`
	NotAfter time.Time `json:"not_after,omitzero"`
	// What real clients saw at the edge, when the edge corroborates it.
	EdgeShare      float64  `json:"edge_failure_share,omitempty"`
	EdgeHandshakes int64    `json:"edge_handshakes,omitempty"`
	EdgeNodes      []string `json:"edge_nodes,omitempty"`
	// What real browsers reported (Network Error Logging): the reports in
	// the last nel.window, and the client families failing.
	UserReports    int64  `json:"user_reports,omitempty"`
	ClientsFailing string `json:"clients_failing,omitempty"`
}

// Automated reports whether a remediation action was sent for it.
func (i *Incident) Automated() bool { return !i.ActedAt.IsZero() }

// Durations are the incident metrics' inputs, on a resolved transition:
// time to detect (first failure to opened), to act (opened to the first
// action) and to fix (first failure to healthy; a resolution by a
// lifecycle event counts from its resolution). ok is false for the ones a
// record does not have.
func (i *Incident) Durations() (detect, act, fix time.Duration, okDetect, okAct, okFix bool) {
	if i.State != attrs.StateResolved || i.FaultAt.IsZero() || i.OpenedAt.IsZero() {
		return
	}
	detect, okDetect = max(i.OpenedAt.Sub(i.FaultAt), 0), true
	if i.Automated() {
		act, okAct = max(i.ActedAt.Sub(i.OpenedAt), 0), true
	}
	if i.Resolution == "healthy" {
		fixed := i.FixedAt
		if fixed.IsZero() {
			fixed = i.ResolvedAt
		}
		fix, okFix = max(fixed.Sub(i.FaultAt), 0), true
	}
	return
}

// severityNumber is the record's severity: info for a resolution, then by
// the incident's severity.
func (i *Incident) severityNumber() plog.SeverityNumber {
	switch {
	case i.State == attrs.StateResolved:
		return plog.SeverityNumberInfo
	case i.Severity == attrs.SeverityPage:
		return plog.SeverityNumberFatal
	case i.Severity == attrs.SeverityAlert:
		return plog.SeverityNumberError
	}
	return plog.SeverityNumberWarn
}

// AppendIncident adds inc to ld as one incident record on a resource of its
// own that carries the routing keys, in the scope named scope.
func AppendIncident(ld plog.Logs, scope string, inc *Incident) {
	rl := ld.ResourceLogs().AppendEmpty()
	ra := rl.Resource().Attributes()
	ra.PutStr(attrs.ServiceName, inc.Service)
	putNonEmpty(ra, attrs.DeploymentEnv, inc.Environment)
	putNonEmpty(ra, attrs.Owner, inc.Owner)
	putNonEmpty(ra, attrs.Criticality, inc.Criticality)
	ra.PutStr(attrs.Severity, string(inc.Severity))
	putNonEmpty(ra, attrs.CloudRegion, inc.Region)
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(scope)
	lr := sl.LogRecords().AppendEmpty()
	lr.SetTimestamp(timestamp(inc.Time))
	lr.SetObservedTimestamp(timestamp(inc.Observed))
	lr.SetEventName(attrs.EventIncident)
	lr.SetSeverityNumber(inc.severityNumber())
	lr.SetSeverityText(lr.SeverityNumber().String())
	lr.Body().SetStr(inc.Summary)

	a := lr.Attributes()
	a.PutStr(attrs.IncidentID, inc.ID)
	a.PutStr(attrs.IncidentState, string(inc.State))
	putNonEmpty(a, attrs.IncidentPrevState, string(inc.PrevState))
	a.PutStr(attrs.Severity, string(inc.Severity))
	a.PutDouble(attrs.Impact, inc.Impact)
	a.PutStr(attrs.ReasonKey, string(inc.Reason))
	putNonEmpty(a, attrs.ReasonSideKey, string(inc.ReasonSide))
	putNonEmpty(a, attrs.IncidentProbeReason, string(inc.ProbeReason))
	putSlice(a, attrs.IncidentEndpoints, inc.Endpoints)
	putSlice(a, attrs.IncidentTargets, inc.Targets)
	a.PutInt(attrs.IncidentEndpointCount, int64(len(inc.Endpoints)))
	putSlice(a, attrs.IncidentVantages, inc.Vantages)
	putSlice(a, attrs.IncidentProfiles, inc.Profiles)
	putTime(a, attrs.IncidentOpenedAt, inc.OpenedAt, time.RFC3339)
	a.PutBool(attrs.IncidentRecurring, inc.Recurring)
	if inc.Flaps > 0 {
		a.PutInt(attrs.IncidentFlaps, int64(inc.Flaps))
	}
	a.PutBool(attrs.IncidentCorroborated, inc.Corroborated)
	putNonEmpty(a, attrs.IncidentSuppressedBy, inc.SuppressedBy)
	putNonEmpty(a, attrs.IncidentResolution, inc.Resolution)
	a.PutInt(attrs.IncidentFailures, int64(inc.Failures))

	putTime(a, attrs.IncidentFaultAt, inc.FaultAt, time.RFC3339Nano)
	putTime(a, attrs.IncidentActedAt, inc.ActedAt, time.RFC3339Nano)
	putTime(a, attrs.IncidentFixedAt, inc.FixedAt, time.RFC3339Nano)
	a.PutBool(attrs.IncidentAutomated, inc.Automated())
	putTime(a, attrs.IncidentResolvedAt, inc.ResolvedAt, time.RFC3339Nano)
	detect, act, fix, okDetect, okAct, okFix := inc.Durations()
	for _, d := range []struct {
		key string
		v   time.Duration
		ok  bool
	}{{attrs.IncidentTimeToDetect, detect, okDetect}, {attrs.IncidentTimeToAct, act, okAct}, {attrs.IncidentTimeToFix, fix, okFix}} {
		if d.ok {
			a.PutDouble(d.key, d.v.Seconds())
		}
	}

	putNonEmpty(a, attrs.EnrichLastGoodChain, inc.LastGoodChain)
	putNonEmpty(a, attrs.EnrichLastGoodSPKI, inc.LastGoodSPKI)
	putNonEmpty(a, attrs.LifecycleJobID, inc.JobID)
	putNonEmpty(a, attrs.LifecycleArtifactVersion, inc.Artifact)
	if inc.EdgeShare > 0 {
		a.PutDouble(attrs.IncidentEdgeFailureShare, inc.EdgeShare)
		a.PutInt(attrs.IncidentEdgeHandshakes, inc.EdgeHandshakes)
		putSlice(a, attrs.IncidentEdgeNodes, inc.EdgeNodes)
	}
	if inc.UserReports > 0 {
		a.PutInt(attrs.IncidentUserReports, inc.UserReports)
	}
	putNonEmpty(a, attrs.ClientsFailing, inc.ClientsFailing)
	putNonEmpty(a, attrs.ChainSHA256, inc.Chain)
	putNonEmpty(a, attrs.TLSServerHash, inc.LeafHash)
	putNonEmpty(a, attrs.SPKISHA256, inc.SPKI)
	putTime(a, attrs.TLSServerNotAfter, inc.NotAfter, time.RFC3339)
}

// ErrNotIncident: the record is not an incident record (another event).
var ErrNotIncident = errors.New("not an incident record")

// DecodeIncident reads the incident record lr on a resource whose
// attributes are res. A record that is not an incident record gives
// ErrNotIncident; an incident record without an id, with an unknown state
// or severity, or with a malformed value gives an error that says which.
// A gateway layout may have moved the routing keys from the resource to
// the record: they are read from either.
func DecodeIncident(res pcommon.Map, lr plog.LogRecord) (Incident, error) {
	if lr.EventName() != attrs.EventIncident {
		return Incident{}, ErrNotIncident
	}
	a := lr.Attributes()
	d := decoder{m: a}
	inc := Incident{
		ID:          d.str(attrs.IncidentID),
		State:       attrs.State(d.str(attrs.IncidentState)),
		PrevState:   attrs.State(d.str(attrs.IncidentPrevState)),
		Severity:    attrs.SeverityLevel(d.str(attrs.Severity)),
		Reason:      attrs.Reason(d.str(attrs.ReasonKey)),
		ReasonSide:  attrs.Side(d.str(attrs.ReasonSideKey)),
		ProbeReason: attrs.Reason(d.str(attrs.IncidentProbeReason)),
		Service:     resOrRec(res, a, attrs.ServiceName),
		Environment: resOrRec(res, a, attrs.DeploymentEnv),
		Owner:       resOrRec(res, a, attrs.Owner),
		Criticality: resOrRec(res, a, attrs.Criticality),
		Region:      resOrRec(res, a, attrs.CloudRegion),
		Impact:      d.float(attrs.Impact),
		Endpoints:   d.slice(attrs.IncidentEndpoints),
		Targets:     d.slice(attrs.IncidentTargets),
		Vantages:    d.slice(attrs.IncidentVantages),
		Profiles:    d.slice(attrs.IncidentProfiles),
		Summary:     lr.Body().AsString(),
		Recurring:   d.bool(attrs.IncidentRecurring),
		Flaps:       int(d.int(attrs.IncidentFlaps)),

		Corroborated:   d.bool(attrs.IncidentCorroborated),
		SuppressedBy:   d.str(attrs.IncidentSuppressedBy),
		Failures:       int(d.int(attrs.IncidentFailures)),
		JobID:          d.str(attrs.LifecycleJobID),
		Artifact:       d.str(attrs.LifecycleArtifactVersion),
		Time:           lr.Timestamp().AsTime(),
		Observed:       lr.ObservedTimestamp().AsTime(),
		OpenedAt:       d.time(attrs.IncidentOpenedAt),
		Resolution:     d.str(attrs.IncidentResolution),
		FaultAt:        d.time(attrs.IncidentFaultAt),
		ActedAt:        d.time(attrs.IncidentActedAt),
		FixedAt:        d.time(attrs.IncidentFixedAt),
		ResolvedAt:     d.time(attrs.IncidentResolvedAt),
		LastGoodChain:  d.str(attrs.EnrichLastGoodChain),
		LastGoodSPKI:   d.str(attrs.EnrichLastGoodSPKI),
		Chain:          d.str(attrs.ChainSHA256),
		LeafHash:       d.str(attrs.TLSServerHash),
		SPKI:           d.str(attrs.SPKISHA256),
		NotAfter:       d.time(attrs.TLSServerNotAfter),
		EdgeShare:      d.float(attrs.IncidentEdgeFailureShare),
		EdgeHandshakes: d.int(attrs.IncidentEdgeHandshakes),
		EdgeNodes:      d.slice(attrs.IncidentEdgeNodes),
		UserReports:    d.int(attrs.IncidentUserReports),
		ClientsFailing: d.str(attrs.ClientsFailing),
	}
	if lr.Timestamp() == 0 {
		inc.Time = time.Time{}
	}
	if lr.ObservedTimestamp() == 0 {
		inc.Observed = time.Time{}
	}
	switch {
	case inc.ID == "":
		d.fail(fmt.Errorf("%s missing", attrs.IncidentID))
	case !inc.State.Valid():
		d.fail(fmt.Errorf("%s: unknown state %q", attrs.IncidentState, inc.State))
	case inc.PrevState != "" && !inc.PrevState.Valid():
		d.fail(fmt.Errorf("%s: unknown state %q", attrs.IncidentPrevState, inc.PrevState))
	case inc.Severity != "":
		var sv attrs.SeverityLevel
		d.fail(sv.UnmarshalText([]byte(inc.Severity)))
	}
	if d.err != nil {
		return Incident{}, fmt.Errorf("incident record %q: %w", inc.ID, d.err)
	}
	return inc, nil
}

// DecodeIncidents reads every incident record of ld, in order; other
// records are skipped. bad holds one error per incident record that could
// not be read (the rest are still read).
func DecodeIncidents(ld plog.Logs) (out []Incident, bad []error) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		res := rls.At(i).Resource().Attributes()
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				inc, err := DecodeIncident(res, lrs.At(k))
				switch {
				case errors.Is(err, ErrNotIncident):
				case err != nil:
					bad = append(bad, err)
				default:
					out = append(out, inc)
				}
			}
		}
	}
	return out, bad
}
