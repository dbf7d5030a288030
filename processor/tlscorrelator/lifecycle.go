package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"cmp"
	"fmt"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// lifecycle processes one lifecycle event.
func (e *engine) lifecycle(r *record) {
	if r.duplicate || r.service == "" {
		return
	}
	if r.ltype == attrs.LifecycleRemediation && (attrs.Outcome(r.stage) == attrs.OutcomeBrakeEngaged || attrs.Outcome(r.stage) == attrs.OutcomeBrakeReleased) {
		e.brake = attrs.Outcome(r.stage)
	}
	t := r.time
	svc := e.service(r.service, t)
	e.markSvc(r.service, true)
	svc.Env = cmp.Or(e.cfg.Services[r.service].Environment, r.env, svc.Env)
	ev := &lcEvent{Type: r.ltype, Time: t, JobID: r.jobID, Artifact: r.artifact, Leaf: r.leafHash, SPKI: r.spki, NotAfter: r.notAfter, Message: r.message}

	// The remediation exporter reports its work as lifecycle events that
	// carry the incident id: the incident is suppressed meanwhile.
	if r.incidentID != "" {
		if inc, ok := e.incidents[r.incidentID]; ok {
			switch {
			case r.ltype == attrs.LifecycleValidated || r.ltype == attrs.LifecycleDeployFailed:
				inc.RemediateTil, e.dirtyInc = t, true
			case r.ltype != attrs.LifecycleRemediation:
				inc.RemediateTil, e.dirtyInc = t.Add(e.cfg.RemediationHold), true
				if inc.ActedAt.IsZero() && (r.ltype == attrs.LifecycleDeployed || r.ltype == attrs.LifecycleRolledBack || r.ltype == attrs.LifecycleFrozen) {
					inc.ActedAt = t // a runbook's result may come before the exporter's own audit
				}
			default:
				o, keyed := attrs.Outcome(r.stage), r.jobID != "" // webhook actions carry their key; Alertmanager posts none
				switch {
				case o == attrs.OutcomeAwaitingApproval:
					inc.Awaiting, e.dirtyInc = true, true
				case o == attrs.OutcomeApproved || o == attrs.OutcomeDenied || o == attrs.OutcomeExpired || o == attrs.OutcomeResolved,
					keyed && (o == attrs.OutcomeSent || o == attrs.OutcomeFailed):
					inc.Awaiting, e.dirtyInc = false, true
				}
				if o == attrs.OutcomeSent && keyed && inc.ActedAt.IsZero() {
					inc.ActedAt, e.dirtyInc = t, true
				}
				switch remediationEffect(o, keyed) {
				case holdStarts:
					inc.RemediateTil, e.dirtyInc = t.Add(e.cfg.RemediationHold), true
				case holdEnds:
					inc.RemediateTil, e.dirtyInc = t, true
				}
			}
		}
	}

	switch r.ltype {
	case attrs.LifecycleIssued, attrs.LifecycleRenewed, attrs.LifecycleRotated:
		svc.LastRenewal = ev
		if ev.Leaf != "" || ev.SPKI != "" {
			svc.Expect = ev
		}
		for _, reason := range []attrs.Reason{attrs.ReasonRenewalFailed, attrs.ReasonRenewalOverdue} {
			if inc := e.incidents[fingerprint(reason, r.service, "")]; inc != nil && inc.open() {
				e.resolve(inc, t)
			}
		}
		e.resolveExplained(r, t)
		e.predictivePin(svc, r, ev)
	case attrs.LifecycleDeployed, attrs.LifecycleRolledBack:
		svc.LastDeploy = ev
		if ev.Leaf != "" || ev.SPKI != "" {
			svc.Expect = ev
		}
		e.resolveExplained(r, t)
		e.predictivePin(svc, r, ev)
	case attrs.LifecycleValidated:
		e.resolveExplained(r, t)
	case attrs.LifecycleRenewalFailed:
		svc.RenewalFailed = ev
		e.observe(&obs{reason: attrs.ReasonRenewalFailed, service: r.service, at: t, derived: true, sticky: true,
			detail: "renewal failed" + prefixed(": ", r.message) + jobSuffix(r.jobID)})
	case attrs.LifecycleRenewalOverdue:
		// The issuer's own schedule passed without a new certificate (for
		// cert-manager, status.renewalTime): overdue whatever the leaf's
		// time left, until a renewal resolves it.
		e.observe(&obs{reason: attrs.ReasonRenewalOverdue, service: r.service, at: t, derived: true, sticky: true,
			detail: "renewal overdue" + prefixed(": ", r.message) + jobSuffix(r.jobID)})
	case attrs.LifecycleMaintenanceStarted, attrs.LifecycleRotationPlanned:
		kind := "maintenance"
		if r.ltype == attrs.LifecycleRotationPlanned {
			kind = "rotation"
		}
		start := r.winStart
		if start.IsZero() {
			start = t
		}
		svc.Windows = append(svc.Windows, window{Kind: kind, Start: start, End: r.winEnd})
		if len(svc.Windows) > 16 {
			svc.Windows = svc.Windows[len(svc.Windows)-16:]
		}
	case attrs.LifecycleMaintenanceEnded:
		for i := range svc.Windows {
			w := &svc.Windows[i]
			if w.Kind == "maintenance" && !t.Before(w.Start) && t.Before(w.End) {
				w.End = t
			}
		}
	}
}

type holdEffect uint8

const (
	holdNeutral holdEffect = iota
	holdStarts
	holdEnds
)

// remediationEffect says what a remediation decision does to the hold.
// An attempt under way (matched, verified, approved, an action sent) holds
// the incident; every decision that ends an attempt, or decides not to act
// (skipped: a guardrail, nothing will run), ends it, so an incident nothing
// fixes pages as usual. An action awaiting approval is not in progress:
// until someone approves it, the incident pages. keyed: the decision
// carries an idempotency key (job_id), as every webhook action's does;
// Alertmanager notifications (sent, failed, dry_run without a key) and a
// decision superseded by another one's change nothing.
func remediationEffect(o attrs.Outcome, keyed bool) holdEffect {
	switch o {
	case attrs.OutcomeSent:
		if keyed {
			return holdStarts
		}
	case attrs.OutcomeMatched, attrs.OutcomeVerified, attrs.OutcomeApproved:
		return holdStarts
	case attrs.OutcomeFailed, attrs.OutcomeDryRun:
		if keyed {
			return holdEnds
		}
	case attrs.OutcomeSkipped, attrs.OutcomeDenied, attrs.OutcomeExpired, attrs.OutcomeNotReproduced, attrs.OutcomeInconclusive,
		attrs.OutcomeAwaitingApproval, attrs.OutcomeResolved, attrs.OutcomeFixed, attrs.OutcomeIneffective:
		return holdEnds
	}
	return holdNeutral
}

func prefixed(p, s string) string {
	if s == "" {
		return ""
	}
	return p + s
}

func jobSuffix(job string) string {
	if job == "" {
		return ""
	}
	return " (job " + job + ")"
}

// resolveExplained resolves unexpected_cert_change incidents of the service
// that this event explains (it names the new certificate, or none).
func (e *engine) resolveExplained(r *record, t time.Time) {
	for _, inc := range e.incidents {
		if inc.Service != r.service || inc.Reason != attrs.ReasonUnexpectedCertChange || !inc.open() {
			continue
		}
		e.resolve(inc, t)
	}
}

// predictivePin raises pin_mismatch when a certificate is announced whose
// SPKI is not among the pins clients of the service use, before any client
// sees it; an announcement that matches resolves it.
func (e *engine) predictivePin(svc *serviceState, r *record, ev *lcEvent) {
	if ev.SPKI == "" {
		return
	}
	pins := map[string]struct{}{}
	for p := range svc.Pins {
		pins[p] = struct{}{}
	}
	for _, p := range e.cfg.Services[r.service].Pins {
		pins[trimPin(p)] = struct{}{}
	}
	if len(pins) == 0 {
		return
	}
	if _, ok := pins[ev.SPKI]; ok {
		for _, inc := range e.incidents {
			if inc.Service == r.service && inc.Reason == attrs.ReasonPinMismatch && inc.Derived && inc.open() {
				e.resolve(inc, ev.Time)
			}
		}
		return
	}
	e.observe(&obs{reason: attrs.ReasonPinMismatch, service: r.service, at: ev.Time, identity: ev.SPKI, derived: true, sticky: true, notAfter: ev.NotAfter,
		detail: fmt.Sprintf("%s announced a certificate (SPKI sha256/%s) that matches none of the %d pin(s) clients of %s use; pinned clients will fail once it is deployed%s", ev.Type, ev.SPKI, len(pins), r.service, jobSuffix(ev.JobID))})
}

func trimPin(p string) string {
	if len(p) > 7 && p[:7] == "sha256/" {
		return p[7:]
	}
	return p
}

// expire drops idle endpoint and service state and long-resolved incidents.
func (e *engine) expire(now time.Time) {
	e.edgeSweep(now)
	e.nelSweep(now)
	cut := now.Add(-e.cfg.IdleTimeout)
	for k, ep := range e.endpoints {
		if ep.LastSeen < cut.Unix() {
			delete(e.endpoints, k)
			e.unindexNode(k)
			e.dirtyEp.mark(bucketOf(k))
			// A gone endpoint's leaf no longer counts for the service (it
			// comes back with the endpoint's next probe).
			if service, name, _, ok := splitKey(k); ok {
				if s := e.services[service]; s != nil && s.forgetLeaf(name) {
					e.markSvc(service, false)
				}
			}
		}
	}
	if e.fps.rebuildDue() {
		e.fps.rebuild(e.endpoints)
	}
	for k, s := range e.services {
		if s.LastSeen.Before(cut) {
			delete(e.services, k)
			e.markSvc(k, false)
		}
	}
	for k, inc := range e.incidents {
		idleOpen := inc.UpdatedAt.Before(cut) && inc.State != attrs.StateResolved && (inc.Edge || !inc.Derived && len(inc.Endpoints) > 0) && now.Sub(inc.UpdatedAt) > e.cfg.IdleTimeout
		if (inc.State == attrs.StateResolved && now.Sub(inc.ResolvedAt) > e.cfg.ReopenWindow) ||
			(inc.State == "" && now.Sub(inc.UpdatedAt) > e.cfg.Corroboration.Window) || idleOpen {
			if idleOpen && inc.State != "" && inc.Announced {
				// Announced and never resolved: say so, or its page and
				// its open count stay behind forever.
				e.resolveAs(inc, now, "expired")
			}
			delete(e.incidents, k)
			e.dirtyInc = true
		}
	}
}
