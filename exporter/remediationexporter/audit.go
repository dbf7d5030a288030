package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/records"
	"github.com/certpulse/certpulse/internal/signature"
)

// decision is one audited decision.
type decision struct {
	Outcome  attrs.Outcome
	Incident *Incident
	Policy   string
	Action   string
	Attempt  int
	Key      string // idempotency key
	Why      string
	By       string
	Evidence []string
}

// audit logs a decision through the collector's logger, counts it, and
// posts it as a `remediation` lifecycle event when audit is configured.
func (r *remediator) audit(ctx context.Context, d decision) {
	fields := []zap.Field{zap.String("decision", string(d.Outcome))}
	if d.Incident != nil {
		fields = append(fields, zap.String("incident.id", d.Incident.ID), zap.String("service", d.Incident.Service),
			zap.String("reason", string(d.Incident.Reason)), zap.String("severity", string(d.Incident.Severity)), zap.String("state", string(d.Incident.State)))
	}
	for k, v := range map[string]string{"policy": d.Policy, "action": d.Action, "idempotency_key": d.Key, "why": d.Why, "by": d.By} {
		if v != "" {
			fields = append(fields, zap.String(k, v))
		}
	}
	if d.Attempt > 0 {
		fields = append(fields, zap.Int("attempt", d.Attempt))
	}
	if len(d.Evidence) > 0 {
		fields = append(fields, zap.Strings("evidence", d.Evidence))
	}
	r.logger.Info("remediation decision", fields...)
	r.telemetry.RemediationDecisions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", string(d.Outcome))))
	if r.auditQ == nil {
		return
	}
	// Never blocks a decision: a full queue drops the post (counted).
	r.auditMu.Lock()
	queued := false
	if !r.auditClosed {
		r.auditBusy.Add(1)
		select {
		case r.auditQ <- d:
			queued = true
		default:
			r.auditBusy.Done()
		}
	}
	closed := r.auditClosed
	r.auditMu.Unlock()
	if !queued && !closed {
		r.telemetry.RemediationAuditDropped.Add(ctx, 1)
		r.logger.Warn("audit queue full: event not posted to the certlifecycle endpoint (the decision is in this log)", zap.String("decision", string(d.Outcome)))
	}
}

// postAudits posts queued audit events in order until the queue closes.
func (r *remediator) postAudits() {
	defer r.auditWG.Done()
	for d := range r.auditQ {
		if err := r.postAudit(r.auditCtx(), d); err != nil {
			r.logger.Warn("audit event not delivered to the certlifecycle endpoint (the decision is in this log)", zap.String("decision", string(d.Outcome)), zap.Error(err))
		}
		r.auditBusy.Done()
	}
}

// auditCtx bounds posts; at shutdown, the remaining ones get until the
// shutdown deadline.
func (r *remediator) auditCtx() context.Context {
	r.auditMu.Lock()
	defer r.auditMu.Unlock()
	if r.auditStop != nil {
		return r.auditStop
	}
	return context.Background()
}

// closeAudit stops taking events and posts what is queued, within ctx.
func (r *remediator) closeAudit(ctx context.Context) {
	r.auditMu.Lock()
	if r.auditQ == nil || r.auditClosed {
		r.auditMu.Unlock()
		return
	}
	// The queue drains within the shutdown's deadline, and at most
	// auditDrain: a dead audit endpoint must not hold the collector up.
	dctx, cancel := context.WithTimeout(ctx, auditDrain)
	defer cancel()
	r.auditClosed = true
	r.auditStop = dctx
	close(r.auditQ)
	r.auditMu.Unlock()
	r.auditWG.Wait()
}

// auditDrain bounds how long shutdown posts queued audit events.
const auditDrain = 5 * time.Second

// auditOf is d's audit event at now, in the one audit record shape
// (records.Audit) the certlifecycle receiver and the audit trail read back.
func (r *remediator) auditOf(d decision, now time.Time) records.Audit {
	msg := string(d.Outcome)
	if d.Action != "" {
		msg += " " + d.Action
	}
	if d.Why != "" {
		msg += ": " + d.Why
	}
	if d.By != "" {
		msg += " (by " + d.By + ")"
	}
	if len(d.Evidence) > 0 {
		msg += "; evidence: " + strings.Join(d.Evidence, "; ")
	}
	a := records.Audit{
		Time:    now,
		Outcome: d.Outcome,
		Service: records.AuditSource,
		Key:     d.Key,
		ID:      fmt.Sprintf("%s/%s/%s/%d/%d", d.Outcome, d.Policy, d.Action, d.Attempt, now.UnixNano()),
		Message: msg,
	}
	if inc := d.Incident; inc != nil {
		a.Service, a.IncidentID, a.Environment = inc.Service, inc.ID, inc.Environment
		if r.cfg.TrailSecret != "" {
			a.Attestation = signature.Attest([]byte(r.cfg.TrailSecret), inc.ID, d.Key, string(d.Outcome), now)
		}
	}
	return a
}

func (r *remediator) postAudit(ctx context.Context, d decision) error {
	ac := r.cfg.Audit.Get()
	a := r.auditOf(d, time.Now().UTC())
	body, err := a.Event()
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, ac.Endpoint, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	if ac.HMACSecret != "" {
		signature.Set(req.Header, "", []byte(ac.HMACSecret), body)
	}
	resp, err := r.auditClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("HTTP %d: %s", resp.StatusCode, b)
	}
	return nil
}
