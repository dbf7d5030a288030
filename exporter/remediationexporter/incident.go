package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/signature"
)

// Incident is an incident transition as the correlator emits it; it is also
// the data of webhook body templates ({{.Incident.Service}} ...).
type Incident struct {
	ID          string              `json:"id"`
	State       attrs.State         `json:"state"`
	Severity    attrs.SeverityLevel `json:"severity"`
	Reason      string              `json:"reason"`
	ProbeReason string              `json:"probe_reason,omitempty"`
	Service     string              `json:"service"`
	Environment string              `json:"environment,omitempty"`
	Owner       string              `json:"owner,omitempty"`
	Criticality string              `json:"criticality,omitempty"`
	Region      string              `json:"region,omitempty"`
	Impact      float64             `json:"impact"`
	Endpoints   []string            `json:"endpoints,omitempty"`
	Targets     []string            `json:"targets,omitempty"` // server.address@dialed host:port
	Summary     string              `json:"summary"`
	Recurring   bool                `json:"recurring,omitempty"`
	JobID       string              `json:"job_id,omitempty"`
	Artifact    string              `json:"artifact_version,omitempty"`
	Time        time.Time           `json:"time"`
	// OpenedAt: when this episode of the incident opened (ids repeat
	// across episodes; idempotency keys and the attempt cap do not).
	OpenedAt time.Time `json:"opened_at,omitzero"`
	// Resolution: healthy or expired, on resolved transitions.
	Resolution string `json:"resolution,omitempty"`
	// FixedAt: every affected endpoint healthy again (the correlator's
	// verdict after an action).
	FixedAt time.Time `json:"fixed_at,omitzero"`
	// LastGoodChain, LastGoodSPKI: what the first affected endpoint served
	// when last healthy (what a rollback restores).
	LastGoodChain string `json:"last_good_chain,omitempty"`
	LastGoodSPKI  string `json:"last_good_spki,omitempty"`
	// Chain, SPKI: the certificate identity the incident is about (what
	// the endpoints serve now), where it has one.
	Chain string `json:"chain,omitempty"`
	SPKI  string `json:"spki,omitempty"`
}

func get(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func slice(m pcommon.Map, k string) []string {
	v, ok := m.Get(k)
	if !ok || v.Type() != pcommon.ValueTypeSlice {
		return nil
	}
	out := make([]string, 0, v.Slice().Len())
	for i := 0; i < v.Slice().Len(); i++ {
		out = append(out, v.Slice().At(i).AsString())
	}
	return out
}

// incidents extracts the incident records of ld; everything else is skipped.
func incidents(ld plog.Logs) []Incident {
	var out []Incident
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		res := rls.At(i).Resource().Attributes()
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				if lr.EventName() != attrs.EventIncident {
					continue
				}
				a := lr.Attributes()
				inc := Incident{
					ID: get(a, attrs.IncidentID), State: attrs.State(get(a, attrs.IncidentState)), Severity: attrs.SeverityLevel(get(a, attrs.Severity)),
					Reason: get(a, attrs.ReasonKey), ProbeReason: get(a, attrs.IncidentProbeReason),
					Service: get(res, attrs.ServiceName), Environment: get(res, attrs.DeploymentEnv), Owner: get(res, attrs.Owner),
					Criticality: get(res, attrs.Criticality), Region: get(res, attrs.CloudRegion),
					Endpoints: slice(a, attrs.IncidentEndpoints), Targets: slice(a, attrs.IncidentTargets),
					Summary: lr.Body().AsString(), JobID: get(a, attrs.LifecycleJobID), Artifact: get(a, attrs.LifecycleArtifactVersion),
					Time: lr.Timestamp().AsTime(),
				}
				if v, ok := a.Get(attrs.Impact); ok {
					inc.Impact = v.Double()
				}
				if v, ok := a.Get(attrs.IncidentRecurring); ok {
					inc.Recurring = v.Bool()
				}
				inc.Resolution = get(a, attrs.IncidentResolution)
				inc.LastGoodChain, inc.LastGoodSPKI = get(a, attrs.EnrichLastGoodChain), get(a, attrs.EnrichLastGoodSPKI)
				inc.Chain, inc.SPKI = get(a, attrs.ChainSHA256), get(a, attrs.SPKISHA256)
				if t, err := time.Parse(time.RFC3339Nano, get(a, attrs.IncidentFixedAt)); err == nil {
					inc.FixedAt = t
				}
				if t, err := time.Parse(time.RFC3339Nano, get(a, attrs.IncidentOpenedAt)); err == nil {
					inc.OpenedAt = t
				}
				if inc.ID != "" && inc.State != "" {
					out = append(out, inc)
				}
			}
		}
	}
	return out
}

// actedOn is an attempt another instance (or this one) made on an incident,
// read back from the audit trail: a `remediation` lifecycle event whose
// job_id is the idempotency key (incident:action:attempt).
type actedOn struct {
	incidentID string
	attempt    int
	at         time.Time
}

// actedOutcomes are the audit outcomes that mean an attempt was spent.
var actedOutcomes = map[attrs.Outcome]bool{attrs.OutcomeSent: true, attrs.OutcomeFailed: true, attrs.OutcomeAwaitingApproval: true, attrs.OutcomeDryRun: true, attrs.OutcomeApproved: true}

// auditTrail extracts the spent attempts from the remediation audit events
// in ld.
//
// Only events attested under secret count (signature.Attest); rejected
// counts those that claimed to be remediation history and were not
// attested.
func auditTrail(ld plog.Logs, secret []byte) (out []actedOn, rejected int) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				lr := lrs.At(k)
				if lr.EventName() != attrs.EventLifecyclePrefix+attrs.LifecycleRemediation {
					continue
				}
				a := lr.Attributes()
				if !actedOutcomes[attrs.Outcome(get(a, attrs.LifecyclePipelineStage))] {
					continue
				}
				id, key := get(a, attrs.LifecycleIncidentID), get(a, attrs.LifecycleJobID)
				at := strings.LastIndexByte(key, ':')
				if id == "" || at < 0 || !strings.HasPrefix(key, id+":") {
					continue
				}
				n, err := strconv.Atoi(key[at+1:])
				if err != nil || n < 1 || n > 1000 {
					continue
				}
				when := lr.Timestamp().AsTime()
				if !signature.VerifyAttestation(secret, get(a, attrs.LifecycleAttestation), id, key, get(a, attrs.LifecyclePipelineStage), when) {
					rejected++
					continue
				}
				out = append(out, actedOn{incidentID: id, attempt: n, at: when})
			}
		}
	}
	return out, rejected
}

// key is the idempotency key of action at attempt in this episode.
func (i *Incident) key(action string, attempt int) string {
	return IdempotencyKey(i.ID, i.OpenedAt, action, attempt)
}
