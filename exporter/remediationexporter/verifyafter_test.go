package remediationexporter

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/certpulse/certpulse/extension/triggerextension"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/trigger"
)

// ladderPolicy: reissue, then rollback, then freeze, each verified.
func ladderPolicy(urls map[string]string, timeout time.Duration) PolicyConfig {
	f := false
	p := PolicyConfig{Name: "expiry", Verify: &f, VerifyAfter: configoptional.Some(VerifyAfterConfig{Timeout: timeout})}
	for _, op := range []string{"reissue", "rollback", "freeze"} {
		p.Actions = append(p.Actions, ActionConfig{Name: op, Type: "webhook", Operation: op, URL: urls[op], HMACSecret: hookSecret,
			Body: `{"incident":"{{.Incident.ID}}","key":"{{.IdempotencyKey}}","last_good":"{{.Incident.LastGoodChain}}"}`})
	}
	return p
}

// hubHost is a host with a certpulse_trigger extension; fired records the
// events the exporter fired.
type hubHost struct {
	component.Host
	ext   component.Component
	mu    sync.Mutex
	fired []trigger.Event
}

func newHubHost(t *testing.T) *hubHost {
	f := triggerextension.NewFactory()
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), f.CreateDefaultConfig())
	require.NoError(t, err)
	h := &hubHost{Host: nopHost(), ext: ext}
	ext.(trigger.Provider).Hub().Subscribe(func(ev trigger.Event) {
		h.mu.Lock()
		h.fired = append(h.fired, ev)
		h.mu.Unlock()
	})
	return h
}

func (h *hubHost) GetExtensions() map[component.ID]component.Component {
	return map[component.ID]component.Component{component.NewID(triggerextension.Type): h.ext}
}

func (h *hubHost) events() []trigger.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]trigger.Event(nil), h.fired...)
}

type ladderRig struct {
	hooks map[string]*hookServer
	audit *consumertest.LogsSink
	e     *testExporter
	host  *hubHost
}

func newLadder(t *testing.T, timeout time.Duration, mod func(*Config)) *ladderRig {
	rig := &ladderRig{hooks: map[string]*hookServer{}, host: newHubHost(t)}
	urls := map[string]string{}
	for _, op := range []string{"reissue", "rollback", "freeze"} {
		rig.hooks[op] = newHookServer(t)
		urls[op] = rig.hooks[op].URL
	}
	cfg := testConfig(ladderPolicy(urls, timeout))
	id := component.NewID(triggerextension.Type)
	cfg.Trigger = &id
	cfg.ActionRetry.MaxElapsedTime = 200 * time.Millisecond
	if mod != nil {
		mod(cfg)
	}
	rig.audit = auditSink(t, cfg)
	rig.e = startExporter(t, cfg, rig.host)
	return rig
}

func (rig *ladderRig) calls() map[string][]string {
	out := map[string][]string{}
	for op, h := range rig.hooks {
		if c := h.calls(); len(c) > 0 {
			out[op] = c
		}
	}
	return out
}

func (rig *ladderRig) waitFor(t *testing.T, outcome string, n int) {
	t.Helper()
	require.Eventually(t, func() bool {
		c := 0
		for _, d := range decisions(rig.audit) {
			if d == outcome {
				c++
			}
		}
		return c >= n
	}, 10*time.Second, 20*time.Millisecond, "%d %s; audit so far: %v", n, outcome, decisions(rig.audit))
	rig.e.r.waitIdle()
}

// A step that fixes is audited fixed, once the correlator says every
// endpoint is healthy again; no further step runs; the probes were asked
// to look at once.
func TestVerifyAfterFixed(t *testing.T) {
	rig := newLadder(t, time.Minute, nil)
	inc := incident("inc-1", attrs.StateOpened, attrs.SeverityAlert)
	inc.LastGoodChain = "aaaa"
	rig.e.send(t, inc)
	assert.Equal(t, map[string][]string{"reissue": {"inc-1:reissue:1"}}, rig.calls())
	assert.Contains(t, rig.hooks["reissue"].bodies[0], `"last_good":"aaaa"`, "the incident names what good was")
	require.Len(t, rig.host.events(), 1)
	assert.Equal(t, trigger.Event{Type: attrs.LifecycleRemediation, Service: "payments", Endpoints: []string{"api.example.com:443"}}, rig.host.events()[0])

	// An update without fixed_at changes nothing; one with it is fixed.
	rig.e.send(t, incident("inc-1", attrs.StateUpdated, attrs.SeverityAlert))
	assert.NotContains(t, decisions(rig.audit), "fixed")
	fixed := incident("inc-1", attrs.StateUpdated, attrs.SeverityAlert)
	fixed.FixedAt = time.Now()
	rig.e.send(t, fixed)
	resolved := incident("inc-1", attrs.StateResolved, attrs.SeverityAlert)
	resolved.Resolution, resolved.FixedAt = "healthy", fixed.FixedAt
	rig.e.send(t, resolved)
	assert.Equal(t, []string{"matched", "sent", "fixed", "resolved"}, decisions(rig.audit))
	assert.Equal(t, map[string][]string{"reissue": {"inc-1:reissue:1"}}, rig.calls(), "nothing more runs")
}

// A step that does not fix within verify_after.timeout is ineffective and
// the next runs; a failed call goes on at once; when every step was tried
// the ladder ends, audited.
func TestVerifyAfterIneffectiveNextStep(t *testing.T) {
	rig := newLadder(t, time.Second, nil)
	rig.hooks["rollback"].failNext = 1000 // the rollback runbook fails
	rig.e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	rig.waitFor(t, "ineffective", 2) // reissue, then freeze (rollback failed)
	rig.waitFor(t, "skipped", 1)
	assert.Equal(t, []string{"inc-1:reissue:1"}, rig.calls()["reissue"])
	assert.NotEmpty(t, rig.calls()["rollback"])
	for _, k := range rig.calls()["rollback"] {
		assert.Equal(t, "inc-1:rollback:2", k, "retries of one attempt share its key")
	}
	assert.Equal(t, []string{"inc-1:freeze:3"}, rig.calls()["freeze"])
	assert.Equal(t, []string{"matched", "sent", "ineffective", "failed", "sent", "ineffective", "skipped"}, decisions(rig.audit))
	recs := auditRecords(rig.audit)
	msg, _ := recs[len(recs)-1].Attributes().Get(attrs.LifecycleMessage)
	assert.Contains(t, msg.Str(), "every step of policy expiry was tried")

	// A later escalation runs nothing more in this episode; a resolution
	// ends it, and the next episode starts at the first step.
	rig.e.send(t, incident("inc-1", attrs.StateEscalated, attrs.SeverityPage))
	assert.Len(t, rig.calls()["reissue"], 1)
	resolved := incident("inc-1", attrs.StateResolved, attrs.SeverityPage)
	resolved.Resolution = "healthy"
	rig.e.send(t, resolved)
	rig.e.r.mu.Lock()
	st := *rig.e.r.st.Incidents["inc-1"]
	rig.e.r.mu.Unlock()
	assert.Zero(t, st.Step)
	assert.Nil(t, st.Verifying)
}

// The attempt cap bounds the ladder.
func TestVerifyAfterWithinAttemptCap(t *testing.T) {
	rig := newLadder(t, time.Second, func(c *Config) { c.Guardrails.MaxAttempts = 1 })
	rig.e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	rig.waitFor(t, "skipped", 1)
	assert.Equal(t, map[string][]string{"reissue": {"inc-1:reissue:1"}}, rig.calls())
	recs := auditRecords(rig.audit)
	msg, _ := recs[len(recs)-1].Attributes().Get(attrs.LifecycleMessage)
	assert.Contains(t, msg.Str(), "attempt cap reached (1)")
}

// A step after which other endpoints of the service start failing engages
// the brake: nothing more runs anywhere.
func TestVerifyAfterCollateralEngagesBrake(t *testing.T) {
	rig := newLadder(t, time.Minute, nil)
	rig.e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	other := incident("inc-2", attrs.StateOpened, attrs.SeverityAlert)
	other.Reason = "hostname_mismatch"
	other.Time = time.Now()
	other.Endpoints = []string{"www.example.com:443"} // another endpoint of the service
	rig.e.send(t, other)
	assert.True(t, rig.e.r.brakeState().Engaged)
	assert.Contains(t, rig.e.r.brakeState().Reason, "other endpoints of payments started failing (incident inc-2")
	assert.Equal(t, map[string][]string{"reissue": {"inc-1:reissue:1"}}, rig.calls(), "inc-2 is not acted on")
}

// In dry-run nothing is called, so nothing is awaited or re-probed.
func TestVerifyAfterDryRunVerifiesNothing(t *testing.T) {
	rig := newLadder(t, time.Second, func(c *Config) { c.DryRun = true })
	rig.e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	time.Sleep(1500 * time.Millisecond)
	rig.e.r.waitIdle()
	assert.Empty(t, rig.calls())
	assert.Equal(t, []string{"matched", "dry_run"}, decisions(rig.audit))
	assert.Empty(t, rig.host.events())
}

// A runbook's own deploy event can bring the healthy probes before its
// HTTP answer: fixed is audited after sent, not before.
func TestVerifyAfterFixedDuringTheCall(t *testing.T) {
	rig := newLadder(t, time.Minute, nil)
	rig.hooks["reissue"].onRequest = func() {
		fixed := incident("inc-1", attrs.StateUpdated, attrs.SeverityAlert)
		fixed.FixedAt = time.Now()
		require.NoError(t, rig.e.r.push(context.Background(), incidentLogs(fixed)))
	}
	rig.e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	rig.waitFor(t, "fixed", 1)
	assert.Equal(t, []string{"matched", "sent", "fixed"}, decisions(rig.audit))
}
