package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// The remediation decision is made by pure functions over a copy of the
// state: plan (what an incident transition calls for), planVerified (what
// a re-probe's verdict allows) and planAction (what one action of a policy
// does). handle applies their plans under the lock and runs the calls they
// name outside it (execute.go).

// planInput is what plan decides on.
type planInput struct {
	Now      time.Time
	Incident Incident
	// Deferred: the decision was held by handover_hold and runs again.
	Deferred bool
	// State is the incident's state before this transition (a copy).
	State incState
	Brake Brake
	// Recent is how many actions were spent within the budget window.
	Recent int
	// Pending is the id of an action held for approval for this incident.
	Pending string
	// Matched are the policies that match the incident, in config order.
	Matched []*PolicyConfig
	// AlertPolicy is the first policy with an alertmanager action: it
	// resolves an alert whose incident no longer matches (severity dropped).
	AlertPolicy  *PolicyConfig
	Guardrails   GuardrailsConfig
	HandoverHold time.Duration
	DryRun       bool // the exporter's dry_run
	// TrailBehind: the audit trail (audit_trail) is not yet read up to its
	// end at start; another gateway's attempts may still be in it.
	TrailBehind bool
}

// notification is one Alertmanager post.
type notification struct {
	Policy *PolicyConfig
	Action *ActionConfig
	// Resolve ends the alert; otherwise it fires.
	Resolve bool
	// ResolveFirst is the severity of a firing alert of another tier,
	// resolved before the new one fires.
	ResolveFirst attrs.SeverityLevel
	Dry          bool
}

// Plan is what one incident transition calls for, in order: notifications
// first, then the audited decisions, then (when Policy is set) the
// remediation: a re-probe first when Verify, then the attempt.
type Plan struct {
	// Ignore: a deferred decision whose incident moved on; nothing to do.
	Ignore bool
	// Unmatched: no policy matches (counted, not audited).
	Unmatched bool
	// CancelPending: the incident resolved; actions held for it expire.
	CancelPending bool
	Notify        []notification
	Audits        []decision
	// Defer runs the decision again after this long (handover_hold).
	Defer time.Duration
	// AwaitTrail runs the decision again once the audit trail is read.
	AwaitTrail bool
	// Policy remediates (nil: nothing to run).
	Policy *PolicyConfig
	Verify bool
	Dry    bool
	// Step is the step to run of a verify_after policy; -1: every action.
	Step int
}

// plan decides on one incident transition: every matching policy notifies;
// the first matching policy with webhook actions remediates, within the
// guardrails.
func plan(in planInput) Plan {
	inc := &in.Incident
	var p Plan
	if in.Deferred {
		// The incident may have moved on during the hold.
		if s := in.State.Incident.State; s == attrs.StateResolved || s == attrs.StateSuppressed {
			return Plan{Ignore: true}
		}
	}
	p.CancelPending = inc.State == attrs.StateResolved
	pols := in.Matched
	// Late-matching severities aside, a resolved incident still resolves
	// the alert that was fired for it.
	if len(pols) == 0 && !(inc.State == attrs.StateResolved && in.State.Firing) {
		p.Unmatched = true
		return p
	}
	if len(pols) == 0 {
		pols = []*PolicyConfig{in.AlertPolicy}
	}
	var pol *PolicyConfig
	for _, pc := range pols {
		p.Notify = append(p.Notify, planNotify(pc, inc, in.State, in.DryRun || pc.DryRun)...)
		if pol == nil && hasWebhooks(pc) {
			pol = pc
		}
	}
	switch inc.State {
	case attrs.StateResolved:
		p.Audits = append(p.Audits, decision{Outcome: attrs.OutcomeResolved, Incident: inc, Policy: pols[0].Name})
		return p
	case attrs.StateSuppressed:
		// Nothing to decide: the incident's own record says what
		// suppresses it, and its alert keeps firing (planNotify).
		return p
	case attrs.StateOpened, attrs.StateEscalated:
	default:
		return p // updates (flaps included) never start a remediation
	}
	if pol == nil {
		return p
	}
	firstSeen := in.State.FirstSeen
	if firstSeen.IsZero() {
		firstSeen = in.Now
	}
	if wait := in.HandoverHold - in.Now.Sub(firstSeen); wait > 0 {
		p.Defer = wait
		return p
	}
	if in.TrailBehind {
		// Nothing audited yet: the trail may hold attempts that decide
		// what runs (cooldown, attempt cap, the next idempotency key).
		p.AwaitTrail = true
		return p
	}
	// matched only when something will run: the correlator holds the
	// incident (suppresses it) from matched on, and a guardrail's skipped
	// ends that hold.
	if why := blocked(in, pol); why != "" {
		p.Audits = append(p.Audits, decision{Outcome: attrs.OutcomeSkipped, Incident: inc, Policy: pol.Name, Why: why})
		return p
	}
	p.Audits = append(p.Audits, decision{Outcome: attrs.OutcomeMatched, Incident: inc, Policy: pol.Name})
	p.Policy, p.Verify, p.Dry, p.Step = pol, pol.verify(), in.DryRun || pol.DryRun, -1
	if ladder(pol) {
		p.Step = in.State.Step
	}
	return p
}

// newEpisode reports whether inc opens a new episode of an incident the
// exporter has state for: it resolved before, or it opened at another
// instant. Attempts and steps start again (the cooldown, which stops
// action loops, does not).
func newEpisode(prev incState, inc *Incident) bool {
	if inc.State != attrs.StateOpened || prev.Incident.ID == "" {
		return false
	}
	if prev.Incident.State == attrs.StateResolved {
		return true
	}
	return !inc.OpenedAt.IsZero() && !prev.Incident.OpenedAt.IsZero() && !inc.OpenedAt.Equal(prev.Incident.OpenedAt)
}

// blocked says which guardrail stops a remediation now, if one does.
func blocked(in planInput, pol *PolicyConfig) string {
	g := in.Guardrails
	switch {
	case ladder(pol) && in.State.Verifying != nil:
		v := in.State.Verifying
		return fmt.Sprintf("step %s (attempt %d) is being verified until %s", v.Action, v.Attempt, v.Deadline.UTC().Format(time.RFC3339))
	case ladder(pol) && in.State.Step >= len(steps(pol)):
		return fmt.Sprintf("every step of policy %s was tried", pol.Name)
	case in.Brake.Engaged:
		return "the brake is engaged: " + in.Brake.Reason
	case in.State.Attempts >= g.MaxAttempts:
		return fmt.Sprintf("attempt cap reached (%d)", g.MaxAttempts)
	case in.Pending != "":
		return "an action for this incident awaits approval (" + in.Pending + ")"
	case !in.State.LastAction.IsZero() && in.Now.Sub(in.State.LastAction) < g.Cooldown:
		return fmt.Sprintf("cooldown: last attempt %s ago (cooldown %s)", in.Now.Sub(in.State.LastAction).Round(time.Second), g.Cooldown)
	}
	return ""
}

// planNotify returns the policy's Alertmanager posts for inc. prev is the
// incident's state before this record (several policies may notify for
// one). Notifications bypass verification, cooldowns and the brake (they
// change nothing) but honour dry-run.
func planNotify(pol *PolicyConfig, inc *Incident, prev incState, dry bool) []notification {
	if inc.State == attrs.StateSuppressed {
		return nil // a suppressed incident is not over: its alert keeps firing
	}
	resolve := inc.State == attrs.StateResolved
	if resolve && !prev.Firing {
		return nil
	}
	var out []notification
	for i := range pol.Actions {
		a := &pol.Actions[i]
		if a.Type != "alertmanager" {
			continue
		}
		n := notification{Policy: pol, Action: a, Resolve: resolve, Dry: dry}
		if !resolve && prev.Firing && prev.FiredSeverity != "" && prev.FiredSeverity != inc.Severity {
			n.ResolveFirst = prev.FiredSeverity
		}
		out = append(out, n)
	}
	return out
}

// verifiedInput is what planVerified decides on, after the re-probe.
type verifiedInput struct {
	Incident *Incident
	Policy   *PolicyConfig
	Outcome  verifyOutcome
	Evidence []string
	// Superseded: another decision on this incident acted while the lock
	// was released for the re-probe (its trail goes on, its hold holds).
	Superseded bool
	// Moved: the brake engaged, or another decision's action awaits
	// approval, meanwhile.
	Moved bool
}

// planVerified audits the re-probe's verdict and says whether to act.
func planVerified(in verifiedInput) (decision, bool) {
	d := decision{Incident: in.Incident, Policy: in.Policy.Name, Evidence: in.Evidence}
	switch {
	case in.Superseded:
		d.Outcome, d.Why = attrs.OutcomeSuperseded, "another decision on this incident acted during verification"
		return d, false
	case in.Moved:
		d.Outcome, d.Why = attrs.OutcomeSkipped, "the brake engaged, or an action for this incident came to await approval, during verification"
		return d, false
	case in.Outcome == notReproduced:
		d.Outcome, d.Why = attrs.OutcomeNotReproduced, "the failure does not reproduce from this collector"
		return d, false
	case in.Outcome == inconclusive && in.Policy.OnInconclusive != "act":
		d.Outcome, d.Why = attrs.OutcomeInconclusive, "this collector cannot reach the endpoint, so it cannot confirm the failure; held (on_inconclusive: hold)"
		return d, false
	case in.Outcome == inconclusive:
		d.Outcome, d.Why = attrs.OutcomeVerified, "inconclusive (this collector cannot reach the endpoint); acting as the policy says (on_inconclusive: act)"
	default:
		d.Outcome = attrs.OutcomeVerified
	}
	return d, true
}

// ladder: the policy's webhook actions are steps, each verified after it
// ran (verify_after).
func ladder(pol *PolicyConfig) bool { return pol.VerifyAfter.HasValue() }

// steps are the indexes of the policy's webhook actions, in order.
func steps(pol *PolicyConfig) []int {
	var out []int
	for i, a := range pol.Actions {
		if a.Type == "webhook" {
			out = append(out, i)
		}
	}
	return out
}

// judgeStep says what became of the step under verification v, given the
// incident's latest transition: fixed when every affected endpoint was
// healthy again after the step began (the correlator's fixed_at, or a
// healthy resolution), ineffective once the deadline passed, else ""
// (still waiting).
func judgeStep(v *Verifying, inc *Incident, now time.Time) attrs.Outcome {
	switch {
	case v == nil:
		return ""
	case !inc.FixedAt.IsZero() && !inc.FixedAt.Before(v.Since.Truncate(time.Second)):
		return attrs.OutcomeFixed
	case inc.State == attrs.StateResolved && inc.Resolution == "healthy":
		return attrs.OutcomeFixed
	case now.After(v.Deadline):
		return attrs.OutcomeIneffective
	}
	return ""
}

// nextInput is what planNext decides on, after a step failed or did not fix.
type nextInput struct {
	Policy     *PolicyConfig
	State      incState // its Step is the step that would run
	Brake      Brake
	Guardrails GuardrailsConfig
}

// planNext says why the next step may not run, or "" when it may. The
// cooldown does not apply (the step's own verification was the wait); the
// attempt cap and the brake do, and the budget when it is spent.
func planNext(in nextInput) string {
	switch {
	case in.Brake.Engaged:
		return "the brake is engaged: " + in.Brake.Reason
	case in.State.Step >= len(steps(in.Policy)):
		return fmt.Sprintf("every step of policy %s was tried", in.Policy.Name)
	case in.State.Attempts >= in.Guardrails.MaxAttempts:
		return fmt.Sprintf("attempt cap reached (%d)", in.Guardrails.MaxAttempts)
	}
	return ""
}

// collateral names the incident of inc's service whose step was being
// verified when inc opened: the step broke other endpoints of the service,
// and the brake engages. "" when there is none.
func collateral(inc *Incident, incidents map[string]*incState) string {
	if inc.State != attrs.StateOpened || notCollateral[attrs.Reason(inc.Reason)] {
		return ""
	}
	for id, st := range incidents {
		v := st.Verifying
		if id == inc.ID || v == nil || st.Incident.Service != inc.Service || inc.Time.Before(v.Since) || !otherEndpoints(inc.Endpoints, st.Incident.Endpoints) {
			continue
		}
		return fmt.Sprintf("after step %s (attempt %d) of incident %s, other endpoints of %s started failing (incident %s, %s)",
			v.Action, v.Attempt, id, inc.Service, inc.ID, inc.Reason)
	}
	return ""
}

// otherEndpoints reports whether eps names an endpoint that acted does not
// (the same endpoints failing under another reason are the same fault seen
// another way, not collateral). Incidents that name none count as other.
func otherEndpoints(eps, acted []string) bool {
	if len(eps) == 0 {
		return true
	}
	for _, e := range eps {
		if !slices.Contains(acted, e) {
			return true
		}
	}
	return false
}

// notCollateral: incidents a step opens by doing its job, not endpoints
// that start failing. A reissue or rollback changes the certificate, and a
// probe may see the new one before the runbook's deployed event announces
// it (unexpected_cert_change, resolved by that event); a refused reissue
// is reported as a failed renewal, which the step's own ineffective verdict
// answers.
var notCollateral = map[attrs.Reason]bool{
	attrs.ReasonUnexpectedCertChange: true,
	attrs.ReasonRenewalFailed:        true,
	attrs.ReasonRenewalOverdue:       true,
}

// budgetSpent is the brake's reason when an attempt would exceed the
// budget, else "".
func budgetSpent(recent int, g GuardrailsConfig) string {
	if recent >= g.Budget {
		return fmt.Sprintf("budget of %d actions per %s spent", g.Budget, g.BudgetWindow)
	}
	return ""
}

// actionStep is what one action of a remediation does.
type actionStep uint8

const (
	stepNone       actionStep = iota // not a webhook (Alertmanager actions notify)
	stepCall                         // call the webhook
	stepDryRun                       // audit what would have been called
	stepHold                         // hold for approval; later actions wait for it
	stepNoApproval                   // high-risk and nobody can approve: stop
)

// planAction decides on one action of a policy.
func planAction(pol *PolicyConfig, a *ActionConfig, canApprove, dry bool) actionStep {
	switch {
	case a.Type != "webhook":
		return stepNone
	case risk(pol, a) == attrs.RiskHigh && !canApprove:
		return stepNoApproval
	case risk(pol, a) == attrs.RiskHigh:
		return stepHold
	case dry:
		return stepDryRun
	}
	return stepCall
}

// Errors of decide (approval); the approval API maps them to HTTP codes.
var (
	ErrNoPending        = errors.New("no such pending action")
	ErrBrakeEngaged     = errors.New("the brake is engaged; nothing run, the action stays held")
	ErrExpired          = errors.New("expired")
	ErrIncidentResolved = errors.New("incident is resolved now; nothing run")
	ErrPolicyGone       = errors.New("policy or action no longer configured")
	ErrNotPersisted     = errors.New("state not persisted; nothing run, the action stays held")
	ErrActionFailed     = errors.New("approved, but the action failed (see the audit)")
)

// approvalInput is what judgeApproval decides on.
type approvalInput struct {
	Now     time.Time
	Pending *Pending
	// Incident is the incident's current transition.
	Incident Incident
	Brake    bool
	Approve  bool
	By, Why  string // the operator and their reason
	// PolicyFound: the pending action's policy and action still exist.
	PolicyFound bool
}

// judgeApproval says what an operator's approve or deny does to a pending
// action: held (ErrBrakeEngaged: not consumed), or consumed with the
// decision to audit and the error to answer (nil: approved, run it).
func judgeApproval(in approvalInput) (consume bool, d decision, err error) {
	p := in.Pending
	inc := in.Incident
	d = decision{Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt}
	expired := in.Now.After(p.Expires)
	switch {
	case in.Approve && in.Brake && !expired:
		// Held, not consumed: approve again once the brake is released.
		d.Outcome, d.By, d.Why = attrs.OutcomeSkipped, in.By, "approved, but the brake is engaged; the action stays held"
		return false, d, ErrBrakeEngaged
	case expired:
		d.Outcome, d.Why = attrs.OutcomeExpired, "approval came after the ttl"
		return true, d, ErrExpired
	case !in.Approve:
		d.Outcome, d.By, d.Why = attrs.OutcomeDenied, in.By, in.Why
		return true, d, nil
	case inc.State == attrs.StateResolved:
		// A suppressed incident (maintenance, another remediation) may
		// still be approved: a human decided. A resolved one needs nothing.
		d.Outcome, d.By, d.Why = attrs.OutcomeSkipped, in.By, "approved, but the incident is "+string(inc.State)+" now"
		return true, d, ErrIncidentResolved
	case !in.PolicyFound:
		d.Outcome, d.By, d.Why = attrs.OutcomeSkipped, in.By, "the policy or action no longer exists"
		return true, d, ErrPolicyGone
	}
	d.Outcome, d.By, d.Why = attrs.OutcomeApproved, in.By, in.Why
	return true, d, nil
}

func hasWebhooks(p *PolicyConfig) bool {
	return slices.ContainsFunc(p.Actions, func(a ActionConfig) bool { return a.Type == "webhook" })
}

func matchList(list []string, v string) bool {
	return len(list) == 0 || slices.Contains(list, v) || slices.Contains(list, "*")
}

// matchPolicies returns every policy that matches inc, in config order.
func matchPolicies(policies []PolicyConfig, inc *Incident) []*PolicyConfig {
	var out []*PolicyConfig
	for i := range policies {
		p := &policies[i]
		sev := p.MinSeverity
		if sev == "" {
			sev = attrs.SeverityTicket
		}
		if attrs.SeverityRank(inc.Severity) < attrs.SeverityRank(sev) {
			continue
		}
		if matchList(p.Reasons, string(inc.Reason)) || (inc.ProbeReason != "" && len(p.Reasons) > 0 && slices.Contains(p.Reasons, string(inc.ProbeReason))) {
			if matchList(p.Services, inc.Service) && matchList(p.Environments, inc.Environment) && matchList(p.Owners, inc.Owner) {
				out = append(out, p)
			}
		}
	}
	return out
}

// alertPolicy is the first policy with an alertmanager action.
func alertPolicy(policies []PolicyConfig) *PolicyConfig {
	for i := range policies {
		for _, a := range policies[i].Actions {
			if a.Type == "alertmanager" {
				return &policies[i]
			}
		}
	}
	return &PolicyConfig{}
}
