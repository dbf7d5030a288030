package records // import "github.com/certpulse/certpulse/internal/records"

import (
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// AuditSource is the lifecycle source of the remediation exporter's audit
// events.
const AuditSource = "certpulse-remediation"

// maxAuditMessage bounds an audit event's message (bytes).
const maxAuditMessage = 2000

// Audit is one remediation decision as its audit event carries it: a
// `remediation` lifecycle event, posted to the certlifecycle receiver, whose
// pipeline_stage is the outcome and whose job_id is the idempotency key
// (incident:action:attempt) when the decision is about an attempt.
type Audit struct {
	Time    time.Time
	Outcome attrs.Outcome
	// Service is the incident's service, or AuditSource for decisions
	// that concern no incident (the brake).
	Service     string
	Environment string
	IncidentID  string
	// Key is the idempotency key; Attestation proves the event came from
	// a remediation exporter that holds the trail secret
	// (signature.Attest over the incident id, key, outcome and time).
	Key         string
	Attestation string
	// ID is the lifecycle event id (deduplication at the receiver).
	ID      string
	Message string
}

// auditEvent is the certlifecycle receiver's JSON event, as much of it as
// an audit event uses.
type auditEvent struct {
	Time        string `json:"time"`
	Type        string `json:"type"`
	Source      string `json:"source"`
	ID          string `json:"id"`
	Stage       string `json:"pipeline_stage"`
	Message     string `json:"message"`
	JobID       string `json:"job_id,omitempty"`
	Service     string `json:"service"`
	IncidentID  string `json:"incident_id,omitempty"`
	Attestation string `json:"attestation,omitempty"`
	Environment string `json:"environment,omitempty"`
}

// Event is a's lifecycle event body (JSON) for the certlifecycle receiver.
// The message is cut to 2,000 bytes.
func (a *Audit) Event() ([]byte, error) {
	if !a.Outcome.Valid() {
		return nil, fmt.Errorf("audit event: unknown outcome %q", a.Outcome)
	}
	if a.Time.IsZero() || a.Service == "" || a.ID == "" {
		return nil, errors.New("audit event: time, service and id are required")
	}
	msg := a.Message
	if len(msg) > maxAuditMessage {
		msg = msg[:maxAuditMessage]
	}
	return json.Marshal(auditEvent{
		Time: a.Time.UTC().Format(time.RFC3339Nano), Type: attrs.LifecycleRemediation, Source: AuditSource,
		ID: a.ID, Stage: string(a.Outcome), Message: msg, JobID: a.Key, Service: a.Service,
		IncidentID: a.IncidentID, Attestation: a.Attestation, Environment: a.Environment,
	})
}

// ErrNotAudit: the record is not a remediation audit event.
var ErrNotAudit = errors.New("not a remediation audit event")

// DecodeAudit reads a remediation audit event as the certlifecycle receiver
// recorded it (service on the resource, whose attributes are res, or on the
// record). Another record gives ErrNotAudit; an audit event with an unknown
// outcome an error that says so.
func DecodeAudit(res pcommon.Map, lr plog.LogRecord) (Audit, error) {
	if lr.EventName() != attrs.EventLifecyclePrefix+attrs.LifecycleRemediation {
		return Audit{}, ErrNotAudit
	}
	a := lr.Attributes()
	d := decoder{m: a}
	au := Audit{
		Time:        lr.Timestamp().AsTime(),
		Outcome:     attrs.Outcome(d.str(attrs.LifecyclePipelineStage)),
		Service:     resOrRec(res, a, attrs.ServiceName),
		Environment: resOrRec(res, a, attrs.DeploymentEnv),
		IncidentID:  d.str(attrs.LifecycleIncidentID),
		Key:         d.str(attrs.LifecycleJobID),
		Attestation: d.str(attrs.LifecycleAttestation),
		ID:          d.str(attrs.LifecycleEventID),
		Message:     d.str(attrs.LifecycleMessage),
	}
	if !au.Outcome.Valid() {
		return Audit{}, fmt.Errorf("remediation audit event %q: %s: unknown outcome %q", au.ID, attrs.LifecyclePipelineStage, au.Outcome)
	}
	return au, nil
}
