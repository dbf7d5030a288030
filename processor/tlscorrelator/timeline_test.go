package tlscorrelator

import (
	"cmp"
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/processor/tlscorrelator/internal/metadata"
)

var t0 = time.Date(2026, 11, 23, 10, 0, 0, 0, time.UTC)

const (
	chainA = "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
	chainB = "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb"
	leafA  = "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"
	leafB  = "BBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBBB"
	spkiA  = "YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg="
	spkiB  = "C5+lpZ7tcVwmwQIMcRtPbsQtWLABXhQzejna0wHFr8M="
)

// probe is a tlsprobe result as the receiver emits it (same attributes).
type probe struct {
	at       time.Duration // after t0
	service  string
	server   string
	vantage  string
	profile  string
	reason   attrs.Reason
	chain    string
	leaf     string
	spki     string
	notAfter time.Time
	crit     string
	pins     []string
	// node, lagging, ref: a node of a `nodes` target
	node    string
	lagging bool
	ref     string
	// clients: certpulse.clients.failing
	clients string
}

func (p probe) appendTo(ld plog.Logs) {
	rl := ld.ResourceLogs().AppendEmpty()
	ra := rl.Resource().Attributes()
	ra.PutStr(attrs.ServiceName, p.service)
	ra.PutStr(attrs.Vantage, p.vantage)
	ra.PutStr(attrs.Criticality, cmp.Or(p.crit, "medium"))
	ra.PutStr(attrs.DeploymentEnv, "prod")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(attrs.EventProbeResult)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(p.at)))
	a := lr.Attributes()
	a.PutStr(attrs.ServerAddress, cmp.Or(p.server, "api.example.com"))
	a.PutInt(attrs.ServerPort, 443)
	a.PutStr(attrs.ClientProfile, cmp.Or(p.profile, "default"))
	if p.clients != "" {
		a.PutStr(attrs.ClientsFailing, p.clients)
	}
	a.PutStr(attrs.ReasonKey, string(cmp.Or(string(p.reason), "ok")))
	if p.chain != "" {
		a.PutStr(attrs.ChainSHA256, p.chain)
		a.PutStr(attrs.TLSServerHash, p.leaf)
		a.PutStr(attrs.SPKISHA256, p.spki)
	}
	na := p.notAfter
	if na.IsZero() {
		na = t0.Add(80 * 24 * time.Hour)
	}
	a.PutStr(attrs.TLSServerNotAfter, na.Format(time.RFC3339))
	if len(p.pins) > 0 {
		s := a.PutEmptySlice(attrs.Pins)
		for _, x := range p.pins {
			s.AppendEmpty().SetStr("sha256/" + x)
		}
	}
	if p.node != "" {
		a.PutStr(attrs.EdgeNode, p.node)
		a.PutStr(attrs.ProbeEndpoint, p.node)
	}
	if p.lagging {
		a.PutBool(attrs.NodesLagging, true)
		a.PutStr(attrs.NodesReferenceChain, p.ref)
	}
	lr.Body().SetStr(fmt.Sprintf("%s: %s", p.server, cmp.Or(string(p.reason), "ok")))
}

// event is a certlifecycle event as the receiver emits it.
type event struct {
	at       time.Duration
	typ      string
	service  string
	id       string
	job      string
	artifact string
	leaf     string
	spki     string
	winEnd   time.Duration
	incident string
	stage    string
	dup      bool
}

func (e event) appendTo(ld plog.Logs) {
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(attrs.ServiceName, e.service)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(attrs.EventLifecyclePrefix + e.typ)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(e.at)))
	a := lr.Attributes()
	a.PutStr(attrs.LifecycleType, e.typ)
	a.PutStr(attrs.LifecycleEventID, cmp.Or(e.id, e.typ+e.at.String()))
	a.PutBool(attrs.LifecycleDuplicate, e.dup)
	put := func(k, v string) {
		if v != "" {
			a.PutStr(k, v)
		}
	}
	put(attrs.LifecycleJobID, e.job)
	put(attrs.LifecycleArtifactVersion, e.artifact)
	put(attrs.TLSServerHash, e.leaf)
	put(attrs.SPKISHA256, e.spki)
	put(attrs.LifecycleIncidentID, e.incident)
	put(attrs.LifecyclePipelineStage, e.stage)
	if e.winEnd != 0 {
		a.PutStr(attrs.LifecycleWindowEnd, t0.Add(e.winEnd).Format(time.RFC3339))
	}
}

type appender interface{ appendTo(plog.Logs) }

type harness struct {
	t    *testing.T
	proc processor.Logs
	sink *consumertest.LogsSink
}

func newHarness(t *testing.T, cfg *Config) *harness {
	return newHarnessWithHost(t, cfg, componenttest.NewNopHost())
}

func newHarnessWithHost(t *testing.T, cfg *Config, host component.Host) *harness {
	t.Helper()
	require.NoError(t, cfg.Validate())
	sink := new(consumertest.LogsSink)
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), host))
	h := &harness{t: t, proc: p, sink: sink}
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return h
}

// feed sends each item as its own batch, in order.
func (h *harness) feed(items ...appender) {
	h.t.Helper()
	for _, it := range items {
		ld := plog.NewLogs()
		it.appendTo(ld)
		require.NoError(h.t, h.proc.ConsumeLogs(context.Background(), ld))
	}
}

type inc struct {
	id, state, severity, reason, probeReason, job string
	endpoints                                     int
	recurring                                     bool
	suppressedBy                                  string
	impact                                        float64
	clients                                       string
}

func (h *harness) incidents() []inc {
	var out []inc
	for _, ld := range h.sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					if lr.EventName() != attrs.EventIncident {
						continue
					}
					a := lr.Attributes()
					g := func(k string) string {
						if v, ok := a.Get(k); ok {
							return v.AsString()
						}
						return ""
					}
					n, _ := a.Get(attrs.IncidentEndpointCount)
					rec, _ := a.Get(attrs.IncidentRecurring)
					imp, _ := a.Get(attrs.Impact)
					out = append(out, inc{id: g(attrs.IncidentID), state: g(attrs.IncidentState), severity: g(attrs.Severity), reason: g(attrs.ReasonKey),
						probeReason: g(attrs.IncidentProbeReason), job: g(attrs.LifecycleJobID), endpoints: int(n.Int()), recurring: rec.Bool(),
						suppressedBy: g(attrs.IncidentSuppressedBy), impact: imp.Double(), clients: g(attrs.ClientsFailing)})
				}
			}
		}
	}
	return out
}

func states(incs []inc) []string {
	var s []string
	for _, i := range incs {
		s = append(s, i.state+"/"+i.severity)
	}
	return s
}

func ids(incs []inc) map[string]bool {
	m := map[string]bool{}
	for _, i := range incs {
		m[i.id] = true
	}
	return m
}

func TestPostDeployRegressionPagesCriticalService(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	ok := func(at time.Duration, v string) probe {
		return probe{at: at, service: "payments", server: "api.example.com", vantage: v, chain: chainA, leaf: leafA, spki: spkiA, crit: "critical"}
	}
	bad := func(at time.Duration, v string) probe {
		p := ok(at, v)
		p.reason, p.chain, p.leaf = attrs.ReasonMissingIntermediate, chainB, leafB
		return p
	}
	h.feed(ok(0, "eu"), ok(time.Second, "us"),
		event{at: time.Minute, typ: "renewed", service: "payments", job: "acme-7", leaf: leafB},
		event{at: 2 * time.Minute, typ: "deployed", service: "payments", job: "deploy-42", artifact: "v2.0.1", leaf: leafB},
		bad(3*time.Minute, "eu"), bad(3*time.Minute+10*time.Second, "us"), bad(3*time.Minute+20*time.Second, "eu"))
	incs := h.incidents()
	require.NotEmpty(t, incs)
	assert.Len(t, ids(incs), 1, "one incident")
	last := incs[len(incs)-1]
	assert.Equal(t, "post_deploy_regression", last.reason)
	assert.Equal(t, "missing_intermediate", last.probeReason)
	assert.Equal(t, "deploy-42", last.job)
	assert.Equal(t, "page", last.severity)
	assert.Equal(t, []string{"opened/ticket", "updated/ticket", "escalated/page"}, states(incs))
	assert.InDelta(t, 1.0, last.impact, 0.001, "both vantages failing on a critical service")
}

// The probes' client presets say who is hit: the incident names the
// failing families and its impact is their share (a chain only browsers
// complete hits six of seven, a 1024-bit key two); a fault no preset
// names keeps the whole impact.
func TestIncidentClientsFailing(t *testing.T) {
	for name, tc := range map[string]struct {
		reason      attrs.Reason
		clients     string
		wantClients string
		wantImpact  float64
	}{
		"missing intermediate": {attrs.ReasonMissingIntermediate, "openssl,python,node,gnutls,go,java", "gnutls,go,java,node,openssl,python", 6.0 / 7},
		"1024-bit key":         {attrs.ReasonWeakKey, "openssl,python", "openssl,python", 2.0 / 7},
		"expired for all":      {attrs.ReasonExpiredLeaf, "openssl,python,node,gnutls,chrome,go,java", "chrome,gnutls,go,java,node,openssl,python", 1},
		"revoked, none named":  {attrs.ReasonRevoked, "", "", 1},
	} {
		t.Run(name, func(t *testing.T) {
			h := newHarness(t, createDefaultConfig())
			h.feed(probe{service: "api", server: "api.example.com", vantage: "eu", crit: "critical", reason: tc.reason, chain: chainB, leaf: leafB, spki: spkiA, clients: tc.clients})
			incs := h.incidents()
			require.NotEmpty(t, incs)
			last := incs[len(incs)-1]
			assert.Equal(t, tc.wantClients, last.clients)
			assert.InDelta(t, tc.wantImpact, last.impact, 0.001)
		})
	}
}

func TestOneBadChainFortyEndpointsIsOneIncident(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	for i := 0; i < 40; i++ {
		h.feed(probe{at: time.Duration(i) * time.Second, service: "edge", server: fmt.Sprintf("edge-%02d.example.com", i), vantage: "eu", reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA})
	}
	incs := h.incidents()
	assert.Len(t, ids(incs), 1)
	assert.Equal(t, 40, incs[len(incs)-1].endpoints)
	assert.Equal(t, "expired_leaf", incs[0].reason)
	assert.Equal(t, "opened", incs[0].state)
}

func TestMaintenanceWindowSuppressesThenOpens(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	bad := func(at time.Duration) probe {
		return probe{at: at, service: "db", server: "db.example.com", vantage: "eu", reason: attrs.ReasonHostnameMismatch, chain: chainA, leaf: leafA, spki: spkiA}
	}
	h.feed(event{at: 0, typ: "maintenance_started", service: "db", winEnd: 10 * time.Minute},
		bad(time.Minute), bad(2*time.Minute), bad(9*time.Minute))
	assert.Equal(t, []string{"suppressed/ticket"}, states(h.incidents()), "recorded, marked suppressed, never paged")
	assert.Equal(t, "maintenance", h.incidents()[0].suppressedBy)
	h.feed(bad(11 * time.Minute))
	assert.Equal(t, []string{"suppressed/ticket", "opened/ticket"}, states(h.incidents()), "opens after the window if still failing")

	// A configured weekly window works the same way.
	cfg := createDefaultConfig()
	cfg.MaintenanceWindows = []MaintenanceWindow{{Services: []string{"db"}, Weekday: t0.Weekday().String(), At: "09:30", Duration: time.Hour}}
	h2 := newHarness(t, cfg)
	h2.feed(bad(time.Minute))
	assert.Equal(t, []string{"suppressed/ticket"}, states(h2.incidents()))
}

func TestFlappingDoesNotPagePerFlap(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	p := func(at time.Duration, v string, r attrs.Reason) probe {
		return probe{at: at, service: "shop", server: "shop.example.com", vantage: v, reason: r, chain: chainA, leaf: leafA, spki: spkiA, crit: "high"}
	}
	var items []appender
	at := time.Duration(0)
	for flap := 0; flap < 4; flap++ {
		for i := 0; i < 3; i++ { // corroborated failure: page
			items = append(items, p(at, []string{"eu", "us"}[i%2], attrs.ReasonRevoked))
			at += 5 * time.Second
		}
		for i := 0; i < 3; i++ { // resolve
			items = append(items, p(at, "eu", attrs.ReasonOK), p(at, "us", attrs.ReasonOK))
			at += 5 * time.Second
		}
	}
	h.feed(items...)
	opened, pages := 0, 0
	for _, i := range h.incidents() {
		if i.state == "opened" {
			opened++
		}
		if (i.state == "opened" || i.state == "escalated") && i.severity == "page" {
			pages++
		}
	}
	assert.Equal(t, 1, opened, states(h.incidents()))
	assert.Equal(t, 1, pages, "one page, not one per flap: %v", states(h.incidents()))
	last := h.incidents()[len(h.incidents())-1]
	assert.Equal(t, "resolved", last.state)
	assert.True(t, last.recurring)
}

func TestPredictivePinMismatch(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	h.feed(probe{at: 0, service: "mobile-api", server: "m.example.com", vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA, pins: []string{spkiA}},
		event{at: time.Minute, typ: "issued", service: "mobile-api", job: "acme-9", spki: spkiB, leaf: leafB})
	incs := h.incidents()
	require.Len(t, incs, 1, "raised before any client sees the certificate")
	assert.Equal(t, "pin_mismatch", incs[0].reason)
	assert.Equal(t, "opened", incs[0].state)
	assert.Equal(t, "alert", incs[0].severity)
	h.feed(event{at: 2 * time.Minute, typ: "issued", service: "mobile-api", spki: spkiA, leaf: leafA})
	assert.Equal(t, "resolved", h.incidents()[1].state)
}

func TestExpiryTiersAndRenewalOverdue(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	exp := func(at time.Duration, left time.Duration) probe {
		return probe{at: at, service: "www", server: "www.example.com", vantage: "eu", reason: attrs.ReasonExpiringSoon, chain: chainA, leaf: leafA, spki: spkiA, notAfter: t0.Add(at + left)}
	}
	h.feed(exp(0, 20*24*time.Hour), exp(time.Hour, 5*24*time.Hour), exp(2*time.Hour, 2*24*time.Hour))
	assert.Equal(t, []string{"opened/ticket", "escalated/alert", "opened/page"}, states(h.incidents()))
	assert.Equal(t, "renewal_overdue", h.incidents()[2].reason)

	// A renewal in progress holds renewal_overdue back.
	h2 := newHarness(t, createDefaultConfig())
	h2.feed(event{at: 0, typ: "renewed", service: "www", job: "acme-1"}, exp(time.Minute, 2*24*time.Hour))
	assert.Equal(t, "expiring_soon", h2.incidents()[0].reason)
	assert.Equal(t, "page", h2.incidents()[0].severity)
}

func TestRenewalFailedPropagationAndUnexpectedChange(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	okA := func(at time.Duration, server string) probe {
		return probe{at: at, service: "api", server: server, vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA}
	}
	h.feed(okA(0, "a.example.com"), okA(0, "b.example.com"),
		event{at: time.Minute, typ: "renewal_failed", service: "api", job: "acme-3"})
	incs := h.incidents()
	require.Len(t, incs, 1)
	assert.Equal(t, "renewal_failed", incs[0].reason)
	assert.Equal(t, "alert", incs[0].severity)

	// Renewed and deployed with leaf B; b still serves A past the grace.
	h.feed(event{at: 2 * time.Minute, typ: "renewed", service: "api", leaf: leafB},
		event{at: 3 * time.Minute, typ: "deployed", service: "api", job: "deploy-9", leaf: leafB},
		probe{at: 20 * time.Minute, service: "api", server: "a.example.com", vantage: "eu", chain: chainB, leaf: leafB, spki: spkiB},
		okA(20*time.Minute, "b.example.com"))
	incs = h.incidents()
	assert.Equal(t, "resolved", incs[1].state, "renewed resolves renewal_failed")
	assert.Equal(t, "propagation_lag", incs[2].reason)
	assert.Equal(t, 1, incs[2].endpoints)

	// A certificate change with no lifecycle event: unexpected.
	h3 := newHarness(t, createDefaultConfig())
	h3.feed(okA(0, "a.example.com"), probe{at: time.Minute, service: "api", server: "a.example.com", vantage: "eu", chain: chainB, leaf: leafB, spki: spkiB})
	require.Len(t, h3.incidents(), 1)
	assert.Equal(t, "unexpected_cert_change", h3.incidents()[0].reason)
}

func TestNetworkFailuresNeedCorroboration(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	p := func(at time.Duration, v string) probe {
		return probe{at: at, service: "api", server: "a.example.com", vantage: v, reason: attrs.ReasonHandshakeTimeout}
	}
	h.feed(p(0, "eu"), p(10*time.Second, "eu"), p(20*time.Second, "eu"))
	assert.Empty(t, h.incidents(), "one vantage timing out is not an incident")
	h.feed(p(30*time.Second, "us"))
	require.Len(t, h.incidents(), 1)
	assert.Equal(t, "opened", h.incidents()[0].state)
}

func TestHealthyOnChangeWithHeartbeat(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.HealthyResults = "on_change"
	h := newHarness(t, cfg)
	for i := 0; i < 30; i++ {
		h.feed(probe{at: time.Duration(i) * time.Minute, service: "api", server: "a.example.com", vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA})
	}
	passed := 0
	for _, ld := range h.sink.AllLogs() {
		passed += ld.LogRecordCount()
	}
	assert.Equal(t, 3, passed, "first result and one heartbeat every 10 minutes")
}

func TestLateAndDeterministic(t *testing.T) {
	run := func() []string {
		h := newHarness(t, createDefaultConfig())
		var items []appender
		for i := 0; i < 50; i++ {
			r := attrs.ReasonOK
			if i%7 < 3 {
				r = attrs.ReasonExpiredLeaf
			}
			items = append(items, probe{at: time.Duration(i) * 10 * time.Second, service: "s", server: fmt.Sprintf("h%d", i%5), vantage: []string{"eu", "us"}[i%2], reason: r, chain: chainA, leaf: leafA, spki: spkiA})
		}
		h.feed(items...)
		var out []string
		for _, i := range h.incidents() {
			out = append(out, i.id+"/"+i.state+"/"+i.severity)
		}
		return out
	}
	assert.Equal(t, run(), run(), "same input order, same output")

	h := newHarness(t, createDefaultConfig())
	h.feed(probe{at: time.Hour, service: "s", server: "a", vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA},
		probe{at: 0, service: "s", server: "a", vantage: "eu", reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA})
	assert.Empty(t, h.incidents(), "a record an hour late changes no state")
}

func newSettings() processor.Settings { return processortest.NewNopSettings(metadata.Type) }

func TestRemediationInProgressSuppresses(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	bad := func(at time.Duration) probe {
		return probe{at: at, service: "api", server: "a.example.com", vantage: "eu", reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA}
	}
	h.feed(bad(0))
	id := h.incidents()[0].id
	h.feed(event{at: time.Minute, typ: "remediation", service: "api", incident: id, stage: "sent", job: id + ":reload:1"}, bad(2*time.Minute))
	assert.Equal(t, []string{"opened/ticket", "suppressed/ticket"}, states(h.incidents()))
	assert.Equal(t, "remediation", h.incidents()[1].suppressedBy)
	h.feed(event{at: 3 * time.Minute, typ: "remediation", service: "api", incident: id, stage: "failed", job: id + ":reload:1"}, bad(4*time.Minute))
	assert.Equal(t, []string{"opened/ticket", "suppressed/ticket", "updated/ticket"}, states(h.incidents()), "back to open once the remediation failed")
}

// An action held for human approval is not in progress: the incident is not
// suppressed meanwhile (an unanswered approval must not silence a page).
func TestAwaitingApprovalDoesNotSuppress(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	bad := func(at time.Duration) probe {
		return probe{at: at, service: "api", server: "a.example.com", vantage: "eu", reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA}
	}
	h.feed(bad(0))
	id := h.incidents()[0].id
	h.feed(event{at: time.Minute, typ: "remediation", service: "api", incident: id, stage: "matched"},
		event{at: time.Minute, typ: "remediation", service: "api", incident: id, stage: "awaiting_approval"}, bad(2*time.Minute))
	for _, inc := range h.incidents() {
		assert.NotEqual(t, "suppressed", inc.state)
	}
}
