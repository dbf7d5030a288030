package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/exporter/remediationexporter/internal/metadata"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

type remediator struct {
	cfg       *Config
	settings  exporter.Settings
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder
	// clients are the actions' HTTP clients (confighttp), built at start.
	clients map[*ActionConfig]*http.Client

	auditClient *http.Client
	inspector   *tlsinspect.Inspector
	verifyTLS   *tls.Config
	sem         chan struct{}
	// clock is the time source; tests swap it while the expiry ticker
	// runs, so it is read and written atomically.
	clock atomic.Pointer[func() time.Time]

	mu     sync.Mutex
	st     *state
	client storage.Client

	approval     *http.Server
	approvalAddr string
	cancel       context.CancelFunc
	wg           sync.WaitGroup

	// Actions run outside the decision: handle persists the attempt and
	// hands the calls to a goroutine (execCtx ends at shutdown).
	execCtx    context.Context
	execCancel context.CancelFunc
	execWG     sync.WaitGroup

	// The audit sink: a bounded queue posted by one goroutine, in order.
	auditQ      chan decision
	auditClosed bool            // under mu
	auditStop   context.Context // under mu: the shutdown's context
	auditWG     sync.WaitGroup
	auditBusy   sync.WaitGroup // events queued or being posted
}

func newRemediator(cfg *Config, set exporter.Settings) (*remediator, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &remediator{
		cfg: cfg, settings: set, logger: set.Logger, telemetry: tb,
		clients: map[*ActionConfig]*http.Client{},
		sem:     make(chan struct{}, cfg.Guardrails.MaxConcurrency),
		st:      newState(),
	}, nil
}

// now is the remediator's clock.
func (r *remediator) now() time.Time {
	if f := r.clock.Load(); f != nil {
		return (*f)()
	}
	return time.Now()
}

// setNow replaces the clock (tests).
func (r *remediator) setNow(f func() time.Time) { r.clock.Store(&f) }

func (r *remediator) start(ctx context.Context, host component.Host) error {
	tc, err := r.cfg.Verify.TLS.LoadTLSConfig(ctx)
	if err != nil {
		return fmt.Errorf("verify.tls: %w", err)
	}
	if tc == nil {
		tc = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	r.verifyTLS = tc
	for i := range r.cfg.Policies {
		p := &r.cfg.Policies[i]
		for j := range p.Actions {
			a := &p.Actions[j]
			c, err := a.ClientConfig.ToClient(ctx, host.GetExtensions(), r.settings.TelemetrySettings)
			if err != nil {
				return fmt.Errorf("policies %s, action %s: %w", p.Name, a.Name, err)
			}
			// Webhooks and Alertmanager do not redirect; following one
			// would send a signed body somewhere it was not meant for.
			c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
			r.clients[a] = c
		}
	}
	opts := tlsinspect.DefaultOptions()
	opts.Timeout = r.cfg.Verify.Timeout
	opts.OCSP.Timeout = min(opts.OCSP.Timeout, r.cfg.Verify.Timeout/2)
	if opts.AllowPrivateFetch, err = tlsinspect.ParseNetworks(r.cfg.Verify.AllowPrivateFetchNetworks); err != nil {
		return err
	}
	r.inspector = tlsinspect.New(opts)
	if ac := r.cfg.Audit.Get(); ac != nil {
		if r.auditClient, err = ac.ToClient(ctx, host.GetExtensions(), r.settings.TelemetrySettings); err != nil {
			return fmt.Errorf("audit: %w", err)
		}
	}
	if r.cfg.Storage != nil {
		ext, ok := host.GetExtensions()[*r.cfg.Storage]
		if !ok {
			return fmt.Errorf("storage extension %s is not configured", r.cfg.Storage)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return fmt.Errorf("extension %s is not a storage extension", r.cfg.Storage)
		}
		if r.client, err = se.GetClient(ctx, component.KindExporter, r.settings.ID, "state"); err != nil {
			return err
		}
		if r.st, err = loadState(ctx, r.client); err != nil {
			return err
		}
		r.telemetry.RemediationPendingApprovals.Add(ctx, int64(len(r.st.Pending)))
		if r.st.Brake.Engaged {
			r.telemetry.RemediationBrakeEngaged.Add(ctx, 1)
		}
	}
	if err := r.startApproval(ctx, host); err != nil {
		return err
	}
	r.execCtx, r.execCancel = context.WithCancel(context.Background())
	if r.auditClient != nil {
		r.auditQ = make(chan decision, cmp.Or(r.cfg.Audit.Get().QueueSize, 1000))
		r.auditWG.Add(1)
		go r.postAudits()
	}
	bg, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	if at := r.cfg.AuditTrail.Get(); at != nil {
		if err := r.tailAuditTrail(bg, *at); err != nil {
			cancel()
			return fmt.Errorf("audit_trail: %w", err)
		}
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		t := time.NewTicker(time.Second)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				r.expirePending(bg)
			}
		}
	}()
	return nil
}

func (r *remediator) shutdown(ctx context.Context) error {
	if r.cancel != nil {
		r.cancel()
	}
	if r.approval != nil {
		_ = r.approval.Shutdown(ctx)
	}
	r.wg.Wait()
	// Actions in flight finish (their attempts are persisted as made);
	// only when the shutdown's deadline passes are they cancelled, and
	// their audit says so.
	idle := make(chan struct{})
	go func() { r.execWG.Wait(); close(idle) }()
	select {
	case <-idle:
	case <-ctx.Done():
		if r.execCancel != nil {
			r.execCancel()
		}
		<-idle
	}
	if r.execCancel != nil {
		r.execCancel()
	}
	r.closeAudit(ctx)
	var err error
	if r.client != nil {
		r.mu.Lock()
		err = r.st.save(ctx, r.client)
		r.mu.Unlock()
		if cerr := r.client.Close(ctx); err == nil {
			err = cerr
		}
	}
	if r.inspector != nil {
		r.inspector.Close()
	}
	r.telemetry.Shutdown()
	return err
}

// push handles a batch: the attempts in remediation audit events are
// counted (another instance's, after a handover), incident records are
// decided on, the rest ignored.
func (r *remediator) push(ctx context.Context, ld plog.Logs) error {
	if trail := auditTrail(ld); len(trail) > 0 {
		r.learn(ctx, trail)
	}
	for _, inc := range incidents(ld) {
		r.handle(ctx, &inc, false)
	}
	return nil
}

// learn counts attempts read from the audit trail: an incident whose
// attempt n was spent (here or by another instance) continues at n+1,
// with its cooldown from then.
func (r *remediator) learn(ctx context.Context, trail []actedOn) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, a := range trail {
		st := r.st.incident(a.incidentID)
		if a.attempt > st.Attempts {
			st.Attempts = a.attempt
			changed = true
		}
		if a.at.After(st.LastAction) && !a.at.After(r.now()) {
			st.LastAction = a.at
			changed = true
		}
	}
	if changed {
		r.saveLocked(ctx)
	}
}

// saveLocked persists the state; an error is logged and returned, and a
// caller about to act must not act on it (fail closed).
func (r *remediator) saveLocked(ctx context.Context) error {
	err := r.st.save(ctx, r.client)
	if err != nil {
		r.logger.Error("remediation state not persisted", zap.Error(err))
	}
	return err
}

func matchList(list []string, v string) bool {
	return len(list) == 0 || slices.Contains(list, v) || slices.Contains(list, "*")
}

// matchAll returns every policy that matches inc, in config order.
func (r *remediator) matchAll(inc *Incident) []*PolicyConfig {
	var out []*PolicyConfig
	for i := range r.cfg.Policies {
		p := &r.cfg.Policies[i]
		sev := p.MinSeverity
		if sev == "" {
			sev = attrs.SeverityTicket
		}
		if attrs.SeverityRank(inc.Severity) < attrs.SeverityRank(sev) {
			continue
		}
		if matchList(p.Reasons, inc.Reason) || (inc.ProbeReason != "" && len(p.Reasons) > 0 && slices.Contains(p.Reasons, inc.ProbeReason)) {
			if matchList(p.Services, inc.Service) && matchList(p.Environments, inc.Environment) && matchList(p.Owners, inc.Owner) {
				out = append(out, p)
			}
		}
	}
	return out
}

// handle decides on one incident transition; deferred is a decision held
// by handover_hold, run again.
func (r *remediator) handle(ctx context.Context, inc *Incident, deferred bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	r.st.prune(now, r.cfg.Guardrails.BudgetWindow, 24*time.Hour)
	st := r.st.incident(inc.ID)
	if st.FirstSeen.IsZero() {
		st.FirstSeen = now
	}
	if deferred {
		// The incident may have moved on during the hold.
		if s := st.Incident.State; s == attrs.StateResolved || s == attrs.StateSuppressed {
			return
		}
	} else {
		st.Incident = *inc
	}
	// One write per decision (file_storage fsyncs each): at the end, or
	// before acting, after which only held approvals change state again.
	persisted := false
	defer func() {
		if !persisted {
			r.saveLocked(ctx)
		}
	}()

	if inc.State == attrs.StateResolved {
		r.cancelPendingLocked(ctx, inc.ID, "incident resolved")
	}
	pols := r.matchAll(inc)
	// Late-matching severities aside, a resolved incident still resolves
	// the alert that was fired for it.
	if len(pols) == 0 && !(inc.State == attrs.StateResolved && st.Firing) {
		r.telemetry.RemediationDecisions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", "unmatched")))
		return
	}
	if len(pols) == 0 {
		pols = []*PolicyConfig{r.policyWithAlerts()}
	}
	// Notifications come from every matching policy; remediation from the
	// first matching policy that has webhook actions.
	prev := *st
	var pol *PolicyConfig
	for _, p := range pols {
		r.notifyLocked(ctx, p, inc, st, prev, r.cfg.DryRun || p.DryRun)
		if pol == nil && hasWebhooks(p) {
			pol = p
		}
	}

	switch inc.State {
	case attrs.StateResolved:
		r.audit(ctx, decision{Outcome: "resolved", Incident: inc, Policy: pols[0].Name})
		return
	case attrs.StateSuppressed:
		if pol != nil {
			r.audit(ctx, decision{Outcome: "skipped", Incident: inc, Policy: pol.Name, Why: "incident is suppressed"})
		}
		return
	case attrs.StateOpened, attrs.StateEscalated:
	default:
		return // updates (flaps included) never start a remediation
	}
	if pol == nil {
		return
	}
	if wait := r.cfg.HandoverHold - now.Sub(st.FirstSeen); wait > 0 {
		r.deferLocked(inc, wait)
		return
	}
	dry := r.cfg.DryRun || pol.DryRun
	r.audit(ctx, decision{Outcome: "matched", Incident: inc, Policy: pol.Name})
	g := r.cfg.Guardrails
	switch {
	case r.st.Brake.Engaged:
		r.audit(ctx, decision{Outcome: "skipped", Incident: inc, Policy: pol.Name, Why: "the brake is engaged: " + r.st.Brake.Reason})
		return
	case st.Attempts >= g.MaxAttempts:
		r.audit(ctx, decision{Outcome: "skipped", Incident: inc, Policy: pol.Name, Why: fmt.Sprintf("attempt cap reached (%d)", g.MaxAttempts)})
		return
	case r.pendingFor(inc.ID) != "":
		r.audit(ctx, decision{Outcome: "skipped", Incident: inc, Policy: pol.Name, Why: "an action for this incident awaits approval (" + r.pendingFor(inc.ID) + ")"})
		return
	case !st.LastAction.IsZero() && now.Sub(st.LastAction) < g.Cooldown:
		r.audit(ctx, decision{Outcome: "skipped", Incident: inc, Policy: pol.Name, Why: fmt.Sprintf("cooldown: last attempt %s ago (cooldown %s)", now.Sub(st.LastAction).Round(time.Second), g.Cooldown)})
		return
	}
	var evidence []string
	if pol.verify() {
		attempts := st.Attempts
		r.mu.Unlock()
		outcome, ev := r.verify(ctx, inc)
		r.mu.Lock()
		// With several queue consumers another decision on this incident
		// may have acted while the lock was released.
		if st.Attempts != attempts || r.pendingFor(inc.ID) != "" || r.st.Brake.Engaged {
			r.audit(ctx, decision{Outcome: "skipped", Incident: inc, Policy: pol.Name, Evidence: ev, Why: "another decision on this incident acted (or the brake engaged) during verification"})
			return
		}
		evidence = ev
		switch {
		case outcome == notReproduced:
			r.audit(ctx, decision{Outcome: "not_reproduced", Incident: inc, Policy: pol.Name, Evidence: ev, Why: "the failure does not reproduce from this collector"})
			return
		case outcome == inconclusive && pol.OnInconclusive != "act":
			r.audit(ctx, decision{Outcome: "inconclusive", Incident: inc, Policy: pol.Name, Evidence: ev, Why: "this collector cannot reach the endpoint, so it cannot confirm the failure; held (on_inconclusive: hold)"})
			return
		case outcome == inconclusive:
			r.audit(ctx, decision{Outcome: "verified", Incident: inc, Policy: pol.Name, Evidence: ev, Why: "inconclusive (this collector cannot reach the endpoint); acting as the policy says (on_inconclusive: act)"})
		default:
			r.audit(ctx, decision{Outcome: "verified", Incident: inc, Policy: pol.Name, Evidence: ev})
		}
	}
	if len(r.st.Recent) >= g.Budget {
		r.engageBrakeLocked(ctx, fmt.Sprintf("budget of %d actions per %s spent", g.Budget, g.BudgetWindow), "")
		r.audit(ctx, decision{Outcome: "skipped", Incident: inc, Policy: pol.Name, Why: "the brake is engaged: budget spent"})
		return
	}
	prevLast := st.LastAction
	st.Attempts++
	st.LastAction = now
	r.st.Recent = append(r.st.Recent, now)
	attempt := st.Attempts
	// Persist before acting: a restart never runs this attempt twice. A
	// failed write fails closed: nothing runs, the attempt is not spent.
	persisted = true
	if err := r.saveLocked(ctx); err != nil {
		st.Attempts--
		st.LastAction = prevLast
		r.st.Recent = r.st.Recent[:len(r.st.Recent)-1]
		r.audit(ctx, decision{Outcome: "failed", Incident: inc, Policy: pol.Name, Attempt: attempt, Why: "state not persisted (" + err.Error() + "); nothing run"})
		return
	}
	// The calls run outside this decision, so one slow webhook holds up
	// neither the next incident nor the approval page.
	run := *inc
	r.execWG.Add(1)
	go func() {
		defer r.execWG.Done()
		r.mu.Lock()
		defer r.mu.Unlock()
		r.runActionsLocked(r.execCtx, pol, &run, attempt, evidence, 0, dry)
	}()
}

// deferLocked decides on inc again once handover_hold has passed since the
// incident was first seen here.
func (r *remediator) deferLocked(inc *Incident, wait time.Duration) {
	if r.execCtx == nil || r.execCtx.Err() != nil {
		return
	}
	run := *inc
	r.execWG.Add(1)
	go func() {
		defer r.execWG.Done()
		select {
		case <-time.After(wait):
			r.handle(r.execCtx, &run, true)
		case <-r.execCtx.Done():
		}
	}()
}

// waitIdle waits until the actions started so far have run and their audit
// events are posted (tests; the collector never waits).
func (r *remediator) waitIdle() {
	r.execWG.Wait()
	r.auditBusy.Wait()
}

// runActionsLocked runs the policy's webhook actions from index from on,
// in order: a failure stops the sequence, a high-risk action is held for
// approval and the rest waits for it (decide continues from there).
func (r *remediator) runActionsLocked(ctx context.Context, pol *PolicyConfig, inc *Incident, attempt int, evidence []string, from int, dry bool) {
	for i := from; i < len(pol.Actions); i++ {
		a := &pol.Actions[i]
		if a.Type != "webhook" {
			continue
		}
		key := IdempotencyKey(inc.ID, a.Name, attempt)
		if risk(pol, a) == "high" {
			if r.approval == nil {
				r.audit(ctx, decision{Outcome: "skipped", Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, Why: "high-risk action and no approval server is configured"})
				return
			}
			now := r.now()
			p := &Pending{ID: randomID(), IncidentID: inc.ID, Policy: pol.Name, Action: a.Name, Operation: a.Operation, Attempt: attempt,
				Evidence: evidence, Created: now, Expires: now.Add(r.cfg.Approval.Get().TTL), Incident: *inc}
			r.st.Pending[p.ID] = p
			if err := r.saveLocked(ctx); err != nil {
				// A hold only in memory would vanish with a restart.
				delete(r.st.Pending, p.ID)
				r.audit(ctx, decision{Outcome: "failed", Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, Why: "state not persisted (" + err.Error() + "); not held for approval"})
				return
			}
			r.telemetry.RemediationPendingApprovals.Add(ctx, 1)
			r.audit(ctx, decision{Outcome: "awaiting_approval", Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, Why: "high-risk (" + cmp.Or(a.Operation, "high") + ") action held for approval " + p.ID})
			return // later actions wait for this one
		}
		if dry {
			r.audit(ctx, decision{Outcome: "dry_run", Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, Why: "dry-run: nothing called"})
			continue
		}
		if !r.runLocked(ctx, pol, a, inc, attempt, evidence, "") {
			return
		}
	}
}

// runLocked delivers one webhook action (the lock is released meanwhile)
// and audits the outcome; it reports success.
func (r *remediator) runLocked(ctx context.Context, pol *PolicyConfig, a *ActionConfig, inc *Incident, attempt int, evidence []string, by string) bool {
	key := IdempotencyKey(inc.ID, a.Name, attempt)
	d := templateData{Incident: *inc, Action: a.Name, Operation: a.Operation, Attempt: attempt, IdempotencyKey: key, Evidence: evidence}
	r.mu.Unlock()
	r.sem <- struct{}{}
	start := time.Now()
	status, err := r.deliverWebhook(ctx, a, d)
	<-r.sem
	r.mu.Lock()
	outcome := "sent"
	if err != nil {
		outcome = "failed"
	}
	r.telemetry.RemediationActionDuration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("action_type", "webhook"), attribute.String("outcome", outcome)))
	if err != nil {
		r.audit(ctx, decision{Outcome: "failed", Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, By: by, Why: fmt.Sprintf("gave up: %v", err)})
		return false
	}
	r.audit(ctx, decision{Outcome: "sent", Incident: inc, Policy: pol.Name, Action: a.Name, Attempt: attempt, Key: key, By: by, Why: fmt.Sprintf("HTTP %d", status)})
	return true
}

func hasWebhooks(p *PolicyConfig) bool {
	for _, a := range p.Actions {
		if a.Type == "webhook" {
			return true
		}
	}
	return false
}

// policyWithAlerts is the first policy with an alertmanager action, used to
// resolve an alert whose incident no longer matches (severity dropped).
func (r *remediator) policyWithAlerts() *PolicyConfig {
	for i := range r.cfg.Policies {
		for _, a := range r.cfg.Policies[i].Actions {
			if a.Type == "alertmanager" {
				return &r.cfg.Policies[i]
			}
		}
	}
	return &PolicyConfig{}
}

// notifyLocked fires or resolves the policy's Alertmanager alerts.
// Notifications bypass verification, cooldowns and the brake (they change
// nothing) but honour dry-run.
// prev is the incident's state before this record: several policies may
// notify for one record.
func (r *remediator) notifyLocked(ctx context.Context, pol *PolicyConfig, inc *Incident, st *incState, prev incState, dry bool) {
	resolved := inc.State == attrs.StateResolved || inc.State == attrs.StateSuppressed
	if resolved && !prev.Firing {
		return
	}
	for i := range pol.Actions {
		a := &pol.Actions[i]
		if a.Type != "alertmanager" {
			continue
		}
		if dry {
			r.audit(ctx, decision{Outcome: "dry_run", Incident: inc, Policy: pol.Name, Action: a.Name, Why: "dry-run: alert not posted"})
			continue
		}
		start := time.Now()
		r.mu.Unlock()
		var err error
		if !resolved && prev.Firing && prev.FiredSeverity != "" && prev.FiredSeverity != inc.Severity {
			old := *inc
			old.Severity = prev.FiredSeverity
			err = r.postAlert(ctx, a, &old, true)
		}
		if err == nil {
			err = r.postAlert(ctx, a, inc, resolved)
		}
		r.mu.Lock()
		outcome := "sent"
		if err != nil {
			outcome = "failed"
		}
		r.telemetry.RemediationActionDuration.Record(ctx, time.Since(start).Seconds(), metric.WithAttributes(attribute.String("action_type", "alertmanager"), attribute.String("outcome", outcome)))
		why := "alert firing"
		if resolved {
			why = "alert resolved"
		}
		if err != nil {
			r.audit(ctx, decision{Outcome: "failed", Incident: inc, Policy: pol.Name, Action: a.Name, Why: err.Error()})
			continue
		}
		st.Firing = !resolved
		st.FiredSeverity = inc.Severity
		r.audit(ctx, decision{Outcome: "sent", Incident: inc, Policy: pol.Name, Action: a.Name, Why: why})
	}
}

func (r *remediator) engageBrakeLocked(ctx context.Context, reason, by string) {
	if r.st.Brake.Engaged {
		return
	}
	r.st.Brake = Brake{Engaged: true, Since: r.now(), Reason: reason}
	r.telemetry.RemediationBrakeEngaged.Add(ctx, 1)
	r.audit(ctx, decision{Outcome: "brake_engaged", Why: reason, By: by})
}

// releaseBrake is the operator's release; nothing else releases the brake.
func (r *remediator) releaseBrake(ctx context.Context, by, why string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if !r.st.Brake.Engaged {
		return false
	}
	r.st.Brake = Brake{ReleasedBy: by, ReleasedAt: r.now(), Why: why}
	r.st.Recent = nil // a fresh budget
	r.telemetry.RemediationBrakeEngaged.Add(ctx, -1)
	r.audit(ctx, decision{Outcome: "brake_released", By: by, Why: why})
	r.saveLocked(ctx)
	return true
}

func (r *remediator) cancelPendingLocked(ctx context.Context, incidentID, why string) {
	for id, p := range r.st.Pending {
		if p.IncidentID == incidentID {
			delete(r.st.Pending, id)
			r.telemetry.RemediationPendingApprovals.Add(ctx, -1)
			inc := p.Incident
			r.audit(ctx, decision{Outcome: "expired", Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, Why: why})
		}
	}
}

func (r *remediator) expirePending(ctx context.Context) {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := r.now()
	changed := false
	for id, p := range r.st.Pending {
		if now.After(p.Expires) {
			delete(r.st.Pending, id)
			r.telemetry.RemediationPendingApprovals.Add(ctx, -1)
			inc := p.Incident
			r.audit(ctx, decision{Outcome: "expired", Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, Why: "not decided within the approval ttl"})
			changed = true
		}
	}
	if changed {
		r.saveLocked(ctx)
	}
}

// decide approves or denies a pending action. Approval is re-checked
// against the incident's current state before the action runs.
func (r *remediator) decide(ctx context.Context, id string, approve bool, by, why string) (int, string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	p, ok := r.st.Pending[id]
	if !ok {
		return http.StatusNotFound, "no pending action " + id
	}
	inc := p.Incident
	if cur, ok := r.st.Incidents[p.IncidentID]; ok {
		inc = cur.Incident
	}
	if approve && r.st.Brake.Engaged && !r.now().After(p.Expires) {
		// Held, not consumed: approve again once the brake is released.
		r.audit(ctx, decision{Outcome: "skipped", Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, By: by, Why: "approved, but the brake is engaged; the action stays held"})
		return http.StatusConflict, "the brake is engaged; nothing run, the action stays held"
	}
	delete(r.st.Pending, id)
	// The approval is consumed, and persisted so, before anything is
	// called: a crash during the call must not let it be approved and run
	// twice. A failed write fails closed.
	if err := r.saveLocked(ctx); err != nil {
		r.st.Pending[id] = p
		r.audit(ctx, decision{Outcome: "failed", Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, By: by, Why: "state not persisted (" + err.Error() + "); nothing run, the action stays held"})
		return http.StatusServiceUnavailable, "state not persisted; nothing run, the action stays held"
	}
	r.telemetry.RemediationPendingApprovals.Add(ctx, -1)
	defer func() { _ = r.saveLocked(ctx) }()
	if r.now().After(p.Expires) {
		r.audit(ctx, decision{Outcome: "expired", Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, Why: "approval came after the ttl"})
		return http.StatusGone, "expired"
	}
	if !approve {
		r.audit(ctx, decision{Outcome: "denied", Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, By: by, Why: why})
		return http.StatusOK, "denied"
	}
	// A suppressed incident (maintenance, another remediation) may still
	// be approved: a human decided. A resolved one needs nothing.
	if inc.State == attrs.StateResolved {
		r.audit(ctx, decision{Outcome: "skipped", Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, By: by, Why: "approved, but the incident is " + inc.State + " now"})
		return http.StatusConflict, "incident is " + inc.State + " now; nothing run"
	}
	pol, idx := r.findAction(p.Policy, p.Action)
	if pol == nil {
		r.audit(ctx, decision{Outcome: "skipped", Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, By: by, Why: "the policy or action no longer exists"})
		return http.StatusConflict, "policy or action no longer configured"
	}
	a := &pol.Actions[idx]
	r.audit(ctx, decision{Outcome: "approved", Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, By: by, Why: why})
	dry := r.cfg.DryRun || pol.DryRun
	msg := "approved and sent"
	if dry {
		r.audit(ctx, decision{Outcome: "dry_run", Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, Key: IdempotencyKey(inc.ID, a.Name, p.Attempt), Why: "dry-run: nothing called"})
		msg = "approved (dry-run)"
	} else if !r.runLocked(ctx, pol, a, &inc, p.Attempt, p.Evidence, by) {
		return http.StatusBadGateway, "approved, but the action failed (see the audit)"
	}
	// The policy's later actions follow, as they would have without the hold.
	r.runActionsLocked(ctx, pol, &inc, p.Attempt, p.Evidence, idx+1, dry)
	return http.StatusOK, msg
}

// pendingFor returns the id of an action held for incidentID, if any.
func (r *remediator) pendingFor(incidentID string) string {
	for id, p := range r.st.Pending {
		if p.IncidentID == incidentID {
			return id
		}
	}
	return ""
}

// findAction returns the policy named policy and the index of its action.
func (r *remediator) findAction(policy, action string) (*PolicyConfig, int) {
	for i := range r.cfg.Policies {
		p := &r.cfg.Policies[i]
		if p.Name != policy {
			continue
		}
		for j := range p.Actions {
			if p.Actions[j].Name == action {
				return p, j
			}
		}
	}
	return nil, -1
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// clientFor returns the action's HTTP client (confighttp settings).
func (r *remediator) clientFor(a *ActionConfig) *http.Client {
	if c, ok := r.clients[a]; ok {
		return c
	}
	return http.DefaultClient // an action not in the config cannot be called; kept total
}
