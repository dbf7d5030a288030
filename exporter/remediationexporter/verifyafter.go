package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"cmp"
	"context"
	"fmt"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/trigger"
)

// Verify after acting (policies with verify_after): a step's call is
// awaited from the moment it starts (a runbook's own deploy event may
// bring the healthy probes before its HTTP answer); the incident's next
// transitions say whether it was fixed (judgeLocked), the ticker says
// when the time is up (checkSteps), and a step that failed or did not fix
// gives way to the next (advance).

const defaultVerifyAfter = 2 * time.Minute

// callStep calls one step's webhook, awaiting its effect from the start of
// the call, and asks this collector's probes to look at the incident's
// endpoints once it answered. A failed call goes on to the next step.
func (r *remediator) callStep(ctx context.Context, pol *PolicyConfig, a *ActionConfig, inc *Incident, attempt int, evidence []string, by string) bool {
	timeout := defaultVerifyAfter
	if va := pol.VerifyAfter.Get(); va != nil {
		timeout = cmp.Or(va.Timeout, defaultVerifyAfter)
	}
	r.mu.Lock()
	now := r.now()
	st := r.st.incident(inc.ID)
	st.Verifying = &Verifying{Policy: pol.Name, Action: a.Name, Attempt: attempt, Since: now, Deadline: now.Add(timeout), Calling: true}
	r.saveLocked(ctx)
	r.mu.Unlock()
	ok := r.call(ctx, pol, a, inc, attempt, evidence, by)
	r.mu.Lock()
	st = r.st.incident(inc.ID)
	var fixed *decision
	if v := st.Verifying; v != nil && v.Attempt == attempt {
		v.Calling = false
		if ok && !v.FixedAt.IsZero() {
			d := fixedDecision(st.Incident, *v, v.FixedAt)
			fixed = &d
			st.Verifying = nil
		}
	}
	r.mu.Unlock()
	if fixed != nil {
		r.audit(ctx, *fixed)
	}
	if !ok {
		r.mu.Lock()
		st := r.st.incident(inc.ID)
		mine := st.Verifying != nil && st.Verifying.Attempt == attempt
		if mine {
			st.Verifying = nil
		}
		r.mu.Unlock()
		if mine {
			r.advance(ctx, pol, inc, "step "+a.Name+" failed")
		}
		return false
	}
	if r.hub != nil {
		r.hub.Fire(trigger.Event{Type: attrs.LifecycleRemediation, Service: inc.Service, Endpoints: inc.Endpoints})
	}
	return true
}

// judgeLocked audits the step under verification as fixed when inc's
// transition says so, engages the brake when inc is the collateral of a
// step on another incident of its service, and ends the episode's steps
// when inc resolved.
func (r *remediator) judgeLocked(ctx context.Context, inc *Incident, st *incState, now time.Time) {
	if v := st.Verifying; v != nil && v.FixedAt.IsZero() && judgeStep(v, inc, now) == attrs.OutcomeFixed {
		at := inc.FixedAt
		if at.IsZero() {
			at = inc.Time
		}
		if v.Calling {
			v.FixedAt = at // audited after the call's own outcome
		} else {
			r.audit(ctx, fixedDecision(*inc, *v, at))
			st.Verifying = nil
		}
	}
	if inc.State == attrs.StateResolved {
		st.Step, st.Verifying = 0, nil
	}
	if why := collateral(inc, r.st.Incidents); why != "" {
		r.engageBrakeLocked(ctx, why, "")
	}
}

func fixedDecision(inc Incident, v Verifying, at time.Time) decision {
	return decision{Outcome: attrs.OutcomeFixed, Incident: &inc, Policy: v.Policy, Action: v.Action, Attempt: v.Attempt,
		Key: attemptKey(&inc, v.Action, v.Attempt), Why: fmt.Sprintf("every affected endpoint probed healthy at %s, %s after the step began",
			at.UTC().Format(time.RFC3339), max(at.Sub(v.Since), 0).Round(time.Second))}
}

// checkSteps audits every step whose time is up as ineffective and goes on
// to the next.
func (r *remediator) checkSteps(ctx context.Context) {
	type late struct {
		inc Incident
		v   Verifying
	}
	var due []late
	r.mu.Lock()
	now := r.now()
	for id, st := range r.st.Incidents {
		if v := st.Verifying; v != nil && v.FixedAt.IsZero() && !v.Calling && judgeStep(v, &Incident{}, now) == attrs.OutcomeIneffective {
			due = append(due, late{st.Incident, *v})
			r.st.incident(id).Verifying = nil // incident marks it to be written at the save
		}
	}
	if len(due) > 0 {
		r.saveLocked(ctx)
	}
	r.mu.Unlock()
	for _, l := range due {
		inc := l.inc
		r.audit(ctx, decision{Outcome: attrs.OutcomeIneffective, Incident: &inc, Policy: l.v.Policy, Action: l.v.Action, Attempt: l.v.Attempt,
			Key: attemptKey(&inc, l.v.Action, l.v.Attempt), Why: fmt.Sprintf("not fixed within %s of the step", l.v.Deadline.Sub(l.v.Since))})
		pol, _ := r.findAction(l.v.Policy, l.v.Action)
		if pol == nil {
			continue
		}
		r.advance(ctx, pol, &inc, "step "+l.v.Action+" was ineffective")
	}
}

// advance runs the policy's next step for inc, within the attempt cap, the
// budget and the brake.
func (r *remediator) advance(ctx context.Context, pol *PolicyConfig, inc *Incident, after string) {
	r.mu.Lock()
	st := r.st.incident(inc.ID)
	if st.Incident.State == attrs.StateResolved {
		r.mu.Unlock()
		return
	}
	st.Step++
	if why := planNext(nextInput{Policy: pol, State: *st, Brake: r.st.Brake, Guardrails: r.cfg.Guardrails}); why != "" {
		r.saveLocked(ctx)
		r.mu.Unlock()
		r.audit(ctx, decision{Outcome: attrs.OutcomeSkipped, Incident: inc, Policy: pol.Name, Why: after + "; no next step: " + why})
		return
	}
	step := st.Step
	attempt := r.spendLocked(ctx, pol, inc)
	r.mu.Unlock()
	if attempt == 0 {
		return
	}
	dry := r.cfg.DryRun || pol.DryRun
	if r.execCtx == nil || r.execCtx.Err() != nil {
		return
	}
	run := *inc
	r.goExec(func(ctx context.Context) { r.runStep(ctx, pol, &run, attempt, nil, step, dry) })
}
