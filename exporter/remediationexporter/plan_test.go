package remediationexporter

import (
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/certpulse/certpulse/internal/attrs"
)

// outcomes lists the outcomes of ds, with their reason where there is one.
func outcomes(ds []decision) []string {
	var out []string
	for _, d := range ds {
		s := string(d.Outcome)
		if d.Why != "" {
			s += ": " + d.Why
		}
		out = append(out, s)
	}
	return out
}

// Each branch of handle's decision is a row.
func TestPlan(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	hook := PolicyConfig{Name: "fix", Actions: []ActionConfig{{Name: "reload", Type: "webhook", Operation: "reload"}}}
	noVerify := hook
	f := false
	noVerify.Verify, noVerify.DryRun = &f, true
	alerts := PolicyConfig{Name: "page", Actions: []ActionConfig{{Name: "am", Type: "alertmanager"}}}
	g := GuardrailsConfig{Cooldown: 30 * time.Minute, MaxAttempts: 3, Budget: 20, BudgetWindow: time.Hour, MaxConcurrency: 4}
	inc := func(state attrs.State) Incident {
		return Incident{ID: "i1", State: state, Severity: attrs.SeverityAlert, Reason: "expired_leaf", Service: "pay"}
	}
	base := func(state attrs.State, pols ...*PolicyConfig) planInput {
		return planInput{Now: now, Incident: inc(state), Matched: pols, AlertPolicy: &alerts, Guardrails: g}
	}
	type want struct {
		ignore, unmatched, cancel bool
		notify                    []string // action:resolve|fire[:first]
		audits                    []string
		deferFor                  time.Duration
		awaitTrail                bool
		policy                    string
		verify, dry               bool
	}
	cases := []struct {
		name string
		in   planInput
		mod  func(*planInput)
		want want
	}{
		{name: "deferred, the incident resolved meanwhile", in: base(attrs.StateOpened, &hook),
			mod:  func(in *planInput) { in.Deferred, in.State.Incident.State = true, attrs.StateResolved },
			want: want{ignore: true}},
		{name: "deferred, the incident suppressed meanwhile", in: base(attrs.StateOpened, &hook),
			mod:  func(in *planInput) { in.Deferred, in.State.Incident.State = true, attrs.StateSuppressed },
			want: want{ignore: true}},
		{name: "no policy matches", in: base(attrs.StateOpened), want: want{unmatched: true}},
		{name: "resolved, no policy matches any more, alert firing: the alert resolves", in: base(attrs.StateResolved),
			mod:  func(in *planInput) { in.State.Firing = true },
			want: want{cancel: true, notify: []string{"am:resolve"}, audits: []string{"resolved"}}},
		{name: "resolved, nothing firing, no match", in: base(attrs.StateResolved), want: want{cancel: true, unmatched: true}},
		{name: "resolved with a match", in: base(attrs.StateResolved, &hook), want: want{cancel: true, audits: []string{"resolved"}}},
		{name: "resolved, alert not firing: nothing posted", in: base(attrs.StateResolved, &alerts), want: want{cancel: true, audits: []string{"resolved"}}},
		// Suppressed (a remediation hold, maintenance, a rotation): nothing
		// is decided and nothing audited (the incident's record says by
		// what), and a firing alert keeps firing: only resolved resolves it.
		{name: "suppressed, remediating policy: nothing to audit", in: base(attrs.StateSuppressed, &hook), want: want{}},
		{name: "suppressed, firing alert keeps firing", in: base(attrs.StateSuppressed, &alerts),
			mod:  func(in *planInput) { in.State.Firing = true },
			want: want{}},
		{name: "an update never remediates", in: base(attrs.StateUpdated, &alerts, &hook), want: want{notify: []string{"am:fire"}}},
		{name: "opened, alert-only policy", in: base(attrs.StateOpened, &alerts), want: want{notify: []string{"am:fire"}}},
		{name: "escalated to another tier: the old alert resolves first", in: base(attrs.StateEscalated, &alerts),
			mod:  func(in *planInput) { in.State.Firing, in.State.FiredSeverity = true, attrs.SeverityTicket },
			want: want{notify: []string{"am:fire:ticket"}}},
		{name: "handover hold", in: base(attrs.StateOpened, &hook),
			mod:  func(in *planInput) { in.HandoverHold = time.Minute; in.State.FirstSeen = now.Add(-20 * time.Second) },
			want: want{deferFor: 40 * time.Second}},
		{name: "handover hold, first seen now", in: base(attrs.StateOpened, &hook),
			mod:  func(in *planInput) { in.HandoverHold = time.Minute },
			want: want{deferFor: time.Minute}},
		{name: "handover hold passed", in: base(attrs.StateOpened, &hook),
			mod:  func(in *planInput) { in.HandoverHold = time.Minute; in.State.FirstSeen = now.Add(-time.Minute) },
			want: want{audits: []string{"matched"}, policy: "fix", verify: true}},
		{name: "audit trail not read yet: alerts go, remediation waits, nothing audited", in: base(attrs.StateOpened, &alerts, &hook),
			mod:  func(in *planInput) { in.TrailBehind = true },
			want: want{notify: []string{"am:fire"}, awaitTrail: true}},
		{name: "audit trail not read yet, handover hold first", in: base(attrs.StateOpened, &hook),
			mod:  func(in *planInput) { in.TrailBehind, in.HandoverHold = true, time.Minute },
			want: want{deferFor: time.Minute}},
		{name: "audit trail not read yet, resolved: resolves", in: base(attrs.StateResolved, &hook),
			mod:  func(in *planInput) { in.TrailBehind = true },
			want: want{cancel: true, audits: []string{"resolved"}}},
		{name: "brake engaged", in: base(attrs.StateOpened, &hook),
			mod:  func(in *planInput) { in.Brake = Brake{Engaged: true, Reason: "budget"} },
			want: want{audits: []string{"skipped: the brake is engaged: budget"}}},
		{name: "attempt cap", in: base(attrs.StateOpened, &hook),
			mod:  func(in *planInput) { in.State.Attempts = 3 },
			want: want{audits: []string{"skipped: attempt cap reached (3)"}}},
		{name: "held for approval", in: base(attrs.StateOpened, &hook),
			mod:  func(in *planInput) { in.Pending = "p1" },
			want: want{audits: []string{"skipped: an action for this incident awaits approval (p1)"}}},
		{name: "cooldown", in: base(attrs.StateEscalated, &hook),
			mod:  func(in *planInput) { in.State.Attempts, in.State.LastAction = 1, now.Add(-10*time.Minute) },
			want: want{audits: []string{"skipped: cooldown: last attempt 10m0s ago (cooldown 30m0s)"}}},
		{name: "cooldown over", in: base(attrs.StateEscalated, &hook),
			mod:  func(in *planInput) { in.State.Attempts, in.State.LastAction = 1, now.Add(-31*time.Minute) },
			want: want{audits: []string{"matched"}, policy: "fix", verify: true}},
		{name: "remediate with verify", in: base(attrs.StateOpened, &alerts, &hook),
			want: want{notify: []string{"am:fire"}, audits: []string{"matched"}, policy: "fix", verify: true}},
		{name: "first webhook policy remediates; policy dry-run, no verify", in: base(attrs.StateOpened, &noVerify, &hook),
			want: want{audits: []string{"matched"}, policy: "fix", dry: true}},
		{name: "exporter dry-run notifies dry", in: base(attrs.StateOpened, &alerts, &hook),
			mod:  func(in *planInput) { in.DryRun = true },
			want: want{notify: []string{"am:fire:dry"}, audits: []string{"matched"}, policy: "fix", verify: true, dry: true}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			in := c.in
			if c.mod != nil {
				c.mod(&in)
			}
			p := plan(in)
			var notify []string
			for _, n := range p.Notify {
				s := n.Action.Name + ":fire"
				if n.Resolve {
					s = n.Action.Name + ":resolve"
				}
				if n.ResolveFirst != "" {
					s += ":" + string(n.ResolveFirst)
				}
				if n.Dry {
					s += ":dry"
				}
				notify = append(notify, s)
			}
			got := want{ignore: p.Ignore, unmatched: p.Unmatched, cancel: p.CancelPending, notify: notify, audits: outcomes(p.Audits),
				deferFor: p.Defer, awaitTrail: p.AwaitTrail, verify: p.Verify, dry: p.Dry}
			if p.Policy != nil {
				got.policy = p.Policy.Name
			}
			assert.Equal(t, c.want, got)
		})
	}
}

func TestPlanVerified(t *testing.T) {
	pol := &PolicyConfig{Name: "fix"}
	act := &PolicyConfig{Name: "fix", OnInconclusive: "act"}
	cases := []struct {
		pol     *PolicyConfig
		outcome verifyOutcome
		moved   bool
		super   bool
		want    string
		act     bool
	}{
		{pol, reproduced, true, false, "skipped: the brake engaged, or an action for this incident came to await approval, during verification", false},
		{pol, reproduced, false, true, "superseded: another decision on this incident acted during verification", false},
		{pol, reproduced, true, true, "superseded: another decision on this incident acted during verification", false},
		{pol, notReproduced, false, false, "not_reproduced: the failure does not reproduce from this collector", false},
		{pol, inconclusive, false, false, "inconclusive: this collector cannot reach the endpoint, so it cannot confirm the failure; held (on_inconclusive: hold)", false},
		{act, inconclusive, false, false, "verified: inconclusive (this collector cannot reach the endpoint); acting as the policy says (on_inconclusive: act)", true},
		{pol, reproduced, false, false, "verified", true},
	}
	for i, c := range cases {
		t.Run(fmt.Sprint(i), func(t *testing.T) {
			d, act := planVerified(verifiedInput{Incident: &Incident{ID: "i"}, Policy: c.pol, Outcome: c.outcome, Evidence: []string{"e"}, Moved: c.moved, Superseded: c.super})
			assert.Equal(t, []string{c.want}, outcomes([]decision{d}))
			assert.Equal(t, c.act, act)
			assert.Equal(t, []string{"e"}, d.Evidence)
		})
	}
}

func TestBudgetSpent(t *testing.T) {
	g := GuardrailsConfig{Budget: 2, BudgetWindow: time.Hour}
	assert.Empty(t, budgetSpent(1, g))
	assert.Equal(t, "budget of 2 actions per 1h0m0s spent", budgetSpent(2, g))
}

func TestPlanAction(t *testing.T) {
	low := &PolicyConfig{Name: "p"}
	high := &PolicyConfig{Name: "p", Risk: "high"}
	hook := &ActionConfig{Type: "webhook", Operation: "reload"}
	pins := &ActionConfig{Type: "webhook", Operation: "pins"}
	am := &ActionConfig{Type: "alertmanager"}
	cases := []struct {
		pol     *PolicyConfig
		a       *ActionConfig
		approve bool
		dry     bool
		want    actionStep
		name    string
	}{
		{low, am, true, false, stepNone, "alertmanager notifies elsewhere"},
		{low, hook, false, false, stepCall, "low risk calls"},
		{low, hook, false, true, stepDryRun, "dry-run"},
		{low, pins, true, false, stepHold, "high-risk operation is held"},
		{low, pins, true, true, stepHold, "held even in dry-run"},
		{high, hook, true, false, stepHold, "high-risk policy"},
		{low, pins, false, false, stepNoApproval, "no approval server"},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, planAction(c.pol, c.a, c.approve, c.dry), c.name)
	}
}

func TestJudgeApproval(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	pend := &Pending{ID: "p1", Policy: "pins", Action: "pin", Attempt: 1, Expires: now.Add(time.Minute)}
	gone := *pend
	gone.Expires = now.Add(-time.Second)
	open := Incident{ID: "i", State: attrs.StateOpened}
	cases := []struct {
		name    string
		in      approvalInput
		consume bool
		audit   string
		err     error
		status  int
	}{
		{"approved while braked: held", approvalInput{Pending: pend, Incident: open, Brake: true, Approve: true, PolicyFound: true}, false,
			"skipped: approved, but the brake is engaged; the action stays held", ErrBrakeEngaged, http.StatusConflict},
		{"denied while braked", approvalInput{Pending: pend, Incident: open, Brake: true, Why: "no", PolicyFound: true}, true, "denied: no", nil, http.StatusOK},
		{"expired, braked", approvalInput{Pending: &gone, Incident: open, Brake: true, Approve: true, PolicyFound: true}, true,
			"expired: approval came after the ttl", ErrExpired, http.StatusGone},
		{"expired", approvalInput{Pending: &gone, Incident: open, Approve: true, PolicyFound: true}, true, "expired: approval came after the ttl", ErrExpired, http.StatusGone},
		{"denied", approvalInput{Pending: pend, Incident: open, Why: "not now", PolicyFound: true}, true, "denied: not now", nil, http.StatusOK},
		{"resolved meanwhile", approvalInput{Pending: pend, Incident: Incident{State: attrs.StateResolved}, Approve: true, PolicyFound: true}, true,
			"skipped: approved, but the incident is resolved now", ErrIncidentResolved, http.StatusConflict},
		{"suppressed: a person decided", approvalInput{Pending: pend, Incident: Incident{State: attrs.StateSuppressed}, Approve: true, Why: "go", PolicyFound: true}, true,
			"approved: go", nil, http.StatusOK},
		{"policy gone", approvalInput{Pending: pend, Incident: open, Approve: true}, true, "skipped: the policy or action no longer exists", ErrPolicyGone, http.StatusConflict},
		{"approved", approvalInput{Pending: pend, Incident: open, Approve: true, By: "alice", Why: "go", PolicyFound: true}, true, "approved: go", nil, http.StatusOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			c.in.Now = now
			consume, d, err := judgeApproval(c.in)
			assert.Equal(t, c.consume, consume)
			assert.Equal(t, []string{c.audit}, outcomes([]decision{d}))
			assert.ErrorIs(t, err, c.err)
			assert.Equal(t, c.status, decisionStatus(err))
			assert.Equal(t, c.in.By, d.By)
		})
	}
}

func TestDecisionStatus(t *testing.T) {
	assert.Equal(t, http.StatusNotFound, decisionStatus(fmt.Errorf("%w x", ErrNoPending)))
	assert.Equal(t, http.StatusServiceUnavailable, decisionStatus(ErrNotPersisted))
	assert.Equal(t, http.StatusBadGateway, decisionStatus(ErrActionFailed))
	assert.Equal(t, http.StatusInternalServerError, decisionStatus(fmt.Errorf("other")))
}

// Every outcome the exporter audits is one of attrs.Outcomes.
func TestOutcomesKnown(t *testing.T) {
	for o := range actedOutcomes {
		assert.True(t, o.Valid(), o)
	}
	var o attrs.Outcome
	assert.NoError(t, o.UnmarshalText([]byte("inconclusive")))
	assert.Error(t, o.UnmarshalText([]byte("fixed-ish")))
}

func TestNewEpisode(t *testing.T) {
	t1 := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	t2 := t1.Add(time.Hour)
	st := func(state attrs.State, opened time.Time) incState {
		return incState{Incident: Incident{ID: "i", State: state, OpenedAt: opened}, Attempts: 3}
	}
	cases := []struct {
		name string
		prev incState
		inc  Incident
		want bool
	}{
		{"first sight", incState{}, Incident{ID: "i", State: attrs.StateOpened, OpenedAt: t1}, false},
		{"reopened after resolved", st(attrs.StateResolved, t1), Incident{ID: "i", State: attrs.StateOpened, OpenedAt: t2}, true},
		{"reopened after resolved, no opening instant", st(attrs.StateResolved, time.Time{}), Incident{ID: "i", State: attrs.StateOpened}, true},
		{"opened at another instant (the resolution was missed)", st(attrs.StateEscalated, t1), Incident{ID: "i", State: attrs.StateOpened, OpenedAt: t2}, true},
		{"the same opening again (redelivery)", st(attrs.StateOpened, t1), Incident{ID: "i", State: attrs.StateOpened, OpenedAt: t1}, false},
		{"escalated within the episode", st(attrs.StateOpened, t1), Incident{ID: "i", State: attrs.StateEscalated, OpenedAt: t1}, false},
		{"suppressed before it opened", st(attrs.StateSuppressed, time.Time{}), Incident{ID: "i", State: attrs.StateOpened, OpenedAt: t1}, false},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, newEpisode(c.prev, &c.inc), c.name)
	}
}

func TestCollateral(t *testing.T) {
	since := time.Date(2026, 12, 2, 10, 0, 0, 0, time.UTC)
	acting := map[string]*incState{"i1": {Incident: Incident{ID: "i1", Service: "pay", Endpoints: []string{"a.pay:443"}}, Verifying: &Verifying{Action: "reissue", Attempt: 1, Since: since}}}
	open := func(id, svc string, reason attrs.Reason, at time.Time) *Incident {
		return &Incident{ID: id, State: attrs.StateOpened, Service: svc, Reason: reason, Time: at, Endpoints: []string{"b.pay:443"}}
	}
	same := open("i2", "pay", attrs.ReasonMissingIntermediate, since.Add(time.Second))
	same.Endpoints = []string{"a.pay:443"}
	after := since.Add(time.Second)
	cases := []struct {
		name  string
		inc   *Incident
		brake bool
	}{
		{"another endpoint of the service fails after the step", open("i2", "pay", attrs.ReasonHostnameMismatch, after), true},
		{"before the step", open("i2", "pay", attrs.ReasonHostnameMismatch, since.Add(-time.Second)), false},
		{"another service", open("i2", "shop", attrs.ReasonHostnameMismatch, after), false},
		{"the incident itself", open("i1", "pay", attrs.ReasonExpiredLeaf, after), false},
		{"the step's own certificate change, not announced yet", open("i2", "pay", attrs.ReasonUnexpectedCertChange, after), false},
		{"a refused reissue reported as a failed renewal", open("i2", "pay", attrs.ReasonRenewalFailed, after), false},
		{"the acted endpoint under another reason: the same fault", same, false},
		{"an update, not an opening", &Incident{ID: "i2", State: attrs.StateUpdated, Service: "pay", Reason: "hostname_mismatch", Time: after}, false},
	}
	for _, c := range cases {
		assert.Equal(t, c.brake, collateral(c.inc, acting) != "", c.name)
	}
}
