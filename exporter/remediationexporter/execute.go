package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"

	"github.com/certpulse/certpulse/internal/attrs"
)

// The executor: the calls a plan names (Alertmanager posts, re-probes,
// webhooks) run without the lock; what they change is committed under it
// afterwards. Audit events take no lock of r.mu's (audit.go).

// notify posts one planned Alertmanager notification and records whether
// the alert is firing.
func (r *remediator) notify(ctx context.Context, inc *Incident, n notification) {
	if n.Dry {
		r.audit(ctx, decision{Outcome: attrs.OutcomeDryRun, Incident: inc, Policy: n.Policy.Name, Action: n.Action.Name, Why: "dry-run: alert not posted"})
		return
	}
	start := time.Now()
	var err error
	if n.ResolveFirst != "" {
		old := *inc
		old.Severity = n.ResolveFirst
		err = r.postAlert(ctx, n.Action, &old, true)
	}
	if err == nil {
		err = r.postAlert(ctx, n.Action, inc, n.Resolve)
	}
	r.recordDuration(ctx, "alertmanager", start, err)
	if err != nil {
		r.audit(ctx, decision{Outcome: attrs.OutcomeFailed, Incident: inc, Policy: n.Policy.Name, Action: n.Action.Name, Why: err.Error()})
		return
	}
	r.mu.Lock()
	st := r.st.incident(inc.ID)
	st.Firing = !n.Resolve
	st.FiredSeverity = inc.Severity
	r.mu.Unlock()
	why := "alert firing"
	if n.Resolve {
		why = "alert resolved"
	}
	r.audit(ctx, decision{Outcome: attrs.OutcomeSent, Incident: inc, Policy: n.Policy.Name, Action: n.Action.Name, Why: why})
}

func (r *remediator) recordDuration(ctx context.Context, actionType string, start time.Time, err error) {
	outcome := attrs.OutcomeSent
	if err != nil {
		outcome = attrs.OutcomeFailed
	}
	r.telemetry.RemediationActionDuration.Record(ctx, time.Since(start).Seconds(),
		metric.WithAttributes(attribute.String("action_type", actionType), attribute.String("outcome", string(outcome))))
}

// runActions runs the policy's webhook actions from index from on, in
// order: a failure stops the sequence, a high-risk action is held for
// approval and the rest waits for it (decide continues from there).
func (r *remediator) runActions(ctx context.Context, pol *PolicyConfig, inc *Incident, attempt int, evidence []string, from int, dry bool) {
	for i := from; i < len(pol.Actions); i++ {
		a := &pol.Actions[i]
		key := attemptKey(inc, a.Name, attempt)
		switch planAction(pol, a, r.approval != nil, dry) {
		case stepNone:
		case stepNoApproval:
			r.audit(ctx, decision{Outcome: attrs.OutcomeSkipped, Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, Why: "high-risk action and no approval server is configured"})
			return
		case stepHold:
			r.hold(ctx, pol, a, inc, attempt, evidence)
			return // later actions wait for this one
		case stepDryRun:
			r.audit(ctx, decision{Outcome: attrs.OutcomeDryRun, Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, Why: "dry-run: nothing called"})
		case stepCall:
			if !r.call(ctx, pol, a, inc, attempt, evidence, "") {
				return
			}
		}
	}
}

// runStep runs step of a verify_after policy: its one action, whose effect
// is then awaited (a failed call goes on to the next step at once).
func (r *remediator) runStep(ctx context.Context, pol *PolicyConfig, inc *Incident, attempt int, evidence []string, step int, dry bool) {
	idx := steps(pol)
	if step < 0 || step >= len(idx) {
		return
	}
	a := &pol.Actions[idx[step]]
	key := attemptKey(inc, a.Name, attempt)
	switch planAction(pol, a, r.approval != nil, dry) {
	case stepNoApproval:
		r.audit(ctx, decision{Outcome: attrs.OutcomeSkipped, Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, Why: "high-risk action and no approval server is configured"})
	case stepHold:
		r.hold(ctx, pol, a, inc, attempt, evidence)
	case stepDryRun:
		r.audit(ctx, decision{Outcome: attrs.OutcomeDryRun, Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, Why: "dry-run: nothing called, nothing to verify"})
	case stepCall:
		r.callStep(ctx, pol, a, inc, attempt, evidence, "")
	}
}

// hold keeps a high-risk action for approval, persisted first: a hold only
// in memory would vanish with a restart.
func (r *remediator) hold(ctx context.Context, pol *PolicyConfig, a *ActionConfig, inc *Incident, attempt int, evidence []string) {
	key := attemptKey(inc, a.Name, attempt)
	r.mu.Lock()
	now := r.now()
	p := &Pending{ID: randomID(), IncidentID: inc.ID, Policy: pol.Name, Action: a.Name, Operation: a.Operation, Attempt: attempt,
		Evidence: evidence, Created: now, Expires: now.Add(r.cfg.Approval.Get().TTL), Incident: *inc}
	r.st.Pending[p.ID] = p
	err := r.saveLocked(ctx)
	if err != nil {
		delete(r.st.Pending, p.ID)
	}
	r.mu.Unlock()
	if err != nil {
		r.audit(ctx, decision{Outcome: attrs.OutcomeFailed, Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, Why: "state not persisted (" + err.Error() + "); not held for approval"})
		return
	}
	r.telemetry.RemediationPendingApprovals.Add(ctx, 1)
	r.audit(ctx, decision{Outcome: attrs.OutcomeAwaitingApproval, Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, Why: "high-risk (" + cmp.Or(a.Operation, "high") + ") action held for approval " + p.ID})
}

// call delivers one webhook action and audits the outcome; it reports
// success.
func (r *remediator) call(ctx context.Context, pol *PolicyConfig, a *ActionConfig, inc *Incident, attempt int, evidence []string, by string) bool {
	key := attemptKey(inc, a.Name, attempt)
	d := templateData{Incident: *inc, Action: a.Name, Operation: a.Operation, Attempt: attempt, IdempotencyKey: key, Evidence: evidence}
	select {
	case r.sem <- struct{}{}:
	case <-ctx.Done():
		r.audit(ctx, decision{Outcome: attrs.OutcomeFailed, Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, By: by, Why: fmt.Sprintf("gave up: %v", ctx.Err())})
		return false
	}
	start := time.Now()
	status, err := r.deliverWebhook(ctx, a, d)
	<-r.sem
	r.recordDuration(ctx, "webhook", start, err)
	if err != nil {
		r.audit(ctx, decision{Outcome: attrs.OutcomeFailed, Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, By: by, Why: fmt.Sprintf("gave up: %v", err)})
		return false
	}
	r.audit(ctx, decision{Outcome: attrs.OutcomeSent, Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, By: by, Why: fmt.Sprintf("HTTP %d", status)})
	return true
}

// spendLocked spends an attempt of inc's remediation, within the budget
// (one more than it engages the brake), and persists it before anything
// runs: a restart never runs this attempt twice. A failed write fails
// closed: nothing runs, the attempt is not spent. It reports the attempt
// number, 0 when nothing may run.
func (r *remediator) spendLocked(ctx context.Context, pol *PolicyConfig, inc *Incident) int {
	if why := budgetSpent(len(r.st.Recent), r.cfg.Guardrails); why != "" {
		r.engageBrakeLocked(ctx, why, "")
		r.audit(ctx, decision{Outcome: attrs.OutcomeSkipped, Incident: inc, Policy: pol.Name, Why: "the brake is engaged: budget spent"})
		r.saveLocked(ctx)
		return 0
	}
	now := r.now()
	st := r.st.incident(inc.ID)
	prevLast := st.LastAction
	st.Attempts++
	st.LastAction = now
	r.st.Recent = append(r.st.Recent, now)
	attempt := st.Attempts
	if err := r.saveLocked(ctx); err != nil {
		st.Attempts--
		st.LastAction = prevLast
		r.st.Recent = r.st.Recent[:len(r.st.Recent)-1]
		// Keyed like the attempt's first action, as an action's failure is
		// (the correlator ends its hold on keyed failures only).
		r.audit(ctx, decision{Outcome: attrs.OutcomeFailed, Incident: inc, Policy: pol.Name, Attempt: attempt, Key: firstKey(pol, inc, attempt),
			Why: "state not persisted (" + err.Error() + "); nothing run"})
		return 0
	}
	return attempt
}

// firstKey is the idempotency key of the policy's first webhook action at
// attempt.
func firstKey(pol *PolicyConfig, inc *Incident, attempt int) string {
	for i := range pol.Actions {
		if pol.Actions[i].Type == "webhook" {
			return attemptKey(inc, pol.Actions[i].Name, attempt)
		}
	}
	return ""
}

// decide approves or denies a pending action. Approval is re-checked
// against the incident's current state before the action runs; the action
// (and the policy's later ones) runs before decide returns, without the
// lock. The errors are ErrNoPending, ErrBrakeEngaged, ErrNotPersisted,
// ErrExpired, ErrIncidentResolved, ErrPolicyGone and ErrActionFailed.
func (r *remediator) decide(ctx context.Context, id string, approve bool, by, why string) (string, error) {
	r.mu.Lock()
	p, ok := r.st.Pending[id]
	if !ok {
		r.mu.Unlock()
		return "", fmt.Errorf("%w %s", ErrNoPending, id)
	}
	inc := p.Incident
	if cur, ok := r.st.Incidents[p.IncidentID]; ok {
		inc = cur.Incident
	}
	pol, idx := r.findAction(p.Policy, p.Action)
	consume, d, err := judgeApproval(approvalInput{Now: r.now(), Pending: p, Incident: inc, Brake: r.st.Brake.Engaged,
		Approve: approve, By: by, Why: why, PolicyFound: pol != nil})
	if !consume {
		r.mu.Unlock()
		r.audit(ctx, d)
		return "", err
	}
	// The approval is consumed, and persisted so, before anything is
	// called: a crash during the call must not let it be approved and run
	// twice. A failed write fails closed.
	delete(r.st.Pending, id)
	if serr := r.saveLocked(ctx); serr != nil {
		r.st.Pending[id] = p
		r.mu.Unlock()
		r.audit(ctx, decision{Outcome: attrs.OutcomeFailed, Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, By: by,
			Why: "state not persisted (" + serr.Error() + "); nothing run, the action stays held"})
		return "", ErrNotPersisted
	}
	r.mu.Unlock()
	r.telemetry.RemediationPendingApprovals.Add(ctx, -1)
	r.audit(ctx, d)
	if err != nil {
		return "", err
	}
	if d.Outcome == attrs.OutcomeDenied {
		return "denied", nil
	}
	a := &pol.Actions[idx]
	dry := r.cfg.DryRun || pol.DryRun
	msg := "approved and sent"
	switch {
	case dry:
		r.audit(ctx, decision{Outcome: attrs.OutcomeDryRun, Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, Key: attemptKey(&inc, a.Name, p.Attempt), Why: "dry-run: nothing called"})
		msg = "approved (dry-run)"
	case ladder(pol):
		// One step: its effect is awaited; a next step follows from that.
		if !r.callStep(ctx, pol, a, &inc, p.Attempt, p.Evidence, by) {
			return "", ErrActionFailed
		}
		return msg, nil
	case !r.call(ctx, pol, a, &inc, p.Attempt, p.Evidence, by):
		return "", ErrActionFailed
	}
	// The policy's later actions follow, as they would have without the hold.
	r.runActions(ctx, pol, &inc, p.Attempt, p.Evidence, idx+1, dry)
	return msg, nil
}
