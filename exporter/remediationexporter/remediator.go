package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"cmp"
	"context"
	"crypto/rand"
	"crypto/tls"
	"encoding/hex"
	"fmt"
	"net/http"
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
	"github.com/certpulse/certpulse/internal/trigger"
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
	// hub asks this collector's probes to look at once (verify_after).
	hub *trigger.Hub
	// clock is the time source; tests swap it while the expiry ticker
	// runs, so it is read and written atomically.
	clock atomic.Pointer[func() time.Time]

	mu     sync.Mutex
	st     *state
	client storage.Client

	// trailReady is closed once the audit trail is read up to its end at
	// start (nil without audit_trail): remediation waits for it.
	trailReady chan struct{}
	// stopping is closed when shutdown begins: decisions waiting for the
	// trail are dropped then. Nothing of them is persisted (nor of a
	// handover_hold deferral cut short by shutdown): the incident is decided
	// again on its next opened or escalated record.
	stopping <-chan struct{}

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
	// auditMu (never held across a call) guards auditClosed and
	// auditStop, so decisions are audited with or without mu.
	auditQ      chan decision
	auditMu     sync.Mutex
	auditClosed bool
	auditStop   context.Context // the shutdown's context
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
	if r.cfg.Trigger != nil {
		if r.hub, err = trigger.Find(host.GetExtensions(), *r.cfg.Trigger); err != nil {
			return err
		}
	}
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
		r.trailReady = make(chan struct{})
		r.stopping = bg.Done()
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
				r.checkSteps(bg)
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
	if trail := r.attested(ctx, ld); len(trail) > 0 {
		r.learn(ctx, trail)
	}
	incs, bad := incidents(ld)
	if len(bad) > 0 {
		r.telemetry.RemediationBadIncidents.Add(ctx, int64(len(bad)))
		r.logger.Warn("incident records not read (not decided on)", zap.Int("count", len(bad)), zap.Error(bad[0]))
	}
	for _, inc := range incs {
		r.handle(ctx, &inc, false)
	}
	return nil
}

// learn counts attempts read from the audit trail: an incident whose
// attempt n was spent (here or by another instance) continues at n+1,
// with its cooldown from then.
// attested returns the attested remediation history in ld and counts the
// events that claimed to be and were not.
func (r *remediator) attested(ctx context.Context, ld plog.Logs) []actedOn {
	trail, rejected := auditTrail(ld, []byte(r.cfg.TrailSecret))
	if rejected > 0 {
		r.telemetry.RemediationTrailRejected.Add(ctx, int64(rejected))
		r.logger.Warn("remediation history not attested by a remediation exporter (trail_secret): not learned from", zap.Int("events", rejected))
	}
	return trail
}

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

// handle decides on one incident transition; deferred is a decision held
// by handover_hold, run again. It plans under the lock, runs the calls
// without it, commits and audits under it, then hands the remediation's
// webhooks to a goroutine once the attempt is persisted.
func (r *remediator) handle(ctx context.Context, inc *Incident, deferred bool) {
	r.mu.Lock()
	now := r.now()
	r.st.prune(now, r.cfg.Guardrails.BudgetWindow, 24*time.Hour)
	st := r.st.incident(inc.ID)
	if !deferred && newEpisode(*st, inc) {
		st.Attempts, st.Step, st.Verifying = 0, 0, nil
	}
	if !deferred {
		r.judgeLocked(ctx, inc, st, now)
	}
	p := plan(planInput{
		Now: now, Incident: *inc, Deferred: deferred, State: *st, Brake: r.st.Brake, Recent: len(r.st.Recent),
		Pending: r.pendingFor(inc.ID), Matched: matchPolicies(r.cfg.Policies, inc), AlertPolicy: alertPolicy(r.cfg.Policies),
		Guardrails: r.cfg.Guardrails, HandoverHold: r.cfg.HandoverHold, DryRun: r.cfg.DryRun,
		TrailBehind: !r.trailCaughtUp(),
	})
	if st.FirstSeen.IsZero() {
		st.FirstSeen = now
	}
	if !deferred {
		st.Incident = *inc
	}
	if p.CancelPending {
		r.cancelPendingLocked(ctx, inc.ID, "incident resolved")
	}
	if p.Unmatched {
		r.telemetry.RemediationDecisions.Add(ctx, 1, metric.WithAttributes(attribute.String("outcome", string(attrs.OutcomeUnmatched))))
	}
	if p.Ignore || p.Unmatched {
		r.saveLocked(ctx)
		r.mu.Unlock()
		return
	}
	r.mu.Unlock()

	for _, n := range p.Notify {
		r.notify(ctx, inc, n)
	}

	r.mu.Lock()
	for _, d := range p.Audits {
		r.audit(ctx, d)
	}
	if p.Defer > 0 {
		r.deferLocked(inc, p.Defer)
	}
	if p.AwaitTrail {
		r.awaitTrailLocked(inc)
	}
	if p.Policy == nil {
		r.saveLocked(ctx)
		r.mu.Unlock()
		return
	}
	var evidence []string
	if p.Verify {
		attempts := r.st.incident(inc.ID).Attempts
		r.mu.Unlock()
		outcome, ev := r.verify(ctx, inc)
		r.mu.Lock()
		// With several queue consumers another decision on this incident
		// may have acted while the lock was released.
		superseded := r.st.incident(inc.ID).Attempts != attempts
		moved := r.pendingFor(inc.ID) != "" || r.st.Brake.Engaged
		d, act := planVerified(verifiedInput{Incident: inc, Policy: p.Policy, Outcome: outcome, Evidence: ev, Superseded: superseded, Moved: moved})
		r.audit(ctx, d)
		if !act {
			r.saveLocked(ctx)
			r.mu.Unlock()
			return
		}
		evidence = ev
	}
	attempt := r.spendLocked(ctx, p.Policy, inc)
	r.mu.Unlock()
	if attempt == 0 {
		return
	}
	// The calls run outside this decision, so one slow webhook holds up
	// neither the next incident nor the approval page.
	run := *inc
	r.goExec(func(ctx context.Context) {
		if p.Step < 0 {
			r.runActions(ctx, p.Policy, &run, attempt, evidence, 0, p.Dry)
			return
		}
		r.runStep(ctx, p.Policy, &run, attempt, evidence, p.Step, p.Dry)
	})
}

// goExec runs fn on its own goroutine with the executor's context (ended
// at shutdown); shutdown and waitIdle wait for it.
func (r *remediator) goExec(fn func(ctx context.Context)) {
	r.execWG.Add(1)
	go func() {
		defer r.execWG.Done()
		fn(r.execCtx)
	}()
}

// deferLocked decides on inc again once handover_hold has passed since the
// incident was first seen here.
func (r *remediator) deferLocked(inc *Incident, wait time.Duration) {
	wake := make(chan struct{})
	time.AfterFunc(wait, func() { close(wake) })
	r.redecideLocked(inc, wake, nil)
}

// awaitTrailLocked decides on inc again once the audit trail is read up
// to its end at start; shutdown drops it at once.
func (r *remediator) awaitTrailLocked(inc *Incident) {
	r.redecideLocked(inc, r.trailReady, r.stopping)
}

// redecideLocked decides on inc again (deferred) once wake is closed,
// unless stop (nil: never) or the executor's context ends first.
func (r *remediator) redecideLocked(inc *Incident, wake, stop <-chan struct{}) {
	if r.execCtx == nil || r.execCtx.Err() != nil {
		return
	}
	run := *inc
	r.goExec(func(ctx context.Context) {
		select {
		case <-wake:
			r.handle(ctx, &run, true)
		case <-stop:
		case <-ctx.Done():
		}
	})
}

// waitIdle waits until the actions started so far have run and their audit
// events are posted (tests; the collector never waits).
func (r *remediator) waitIdle() {
	r.execWG.Wait()
	r.auditBusy.Wait()
}

func (r *remediator) engageBrakeLocked(ctx context.Context, reason, by string) {
	if r.st.Brake.Engaged {
		return
	}
	r.st.Brake = Brake{Engaged: true, Since: r.now(), Reason: reason}
	r.telemetry.RemediationBrakeEngaged.Add(ctx, 1)
	r.audit(ctx, decision{Outcome: attrs.OutcomeBrakeEngaged, Why: reason, By: by})
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
	r.audit(ctx, decision{Outcome: attrs.OutcomeBrakeReleased, By: by, Why: why})
	r.saveLocked(ctx)
	return true
}

func (r *remediator) cancelPendingLocked(ctx context.Context, incidentID, why string) {
	for id, p := range r.st.Pending {
		if p.IncidentID == incidentID {
			delete(r.st.Pending, id)
			r.telemetry.RemediationPendingApprovals.Add(ctx, -1)
			inc := p.Incident
			r.audit(ctx, decision{Outcome: attrs.OutcomeExpired, Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, Why: why})
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
			r.audit(ctx, decision{Outcome: attrs.OutcomeExpired, Incident: &inc, Policy: p.Policy, Action: p.Action, Attempt: p.Attempt, Why: "not decided within the approval ttl"})
			changed = true
		}
	}
	if changed {
		r.saveLocked(ctx)
	}
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
