package remediationexporter

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/tb"
	"github.com/certpulse/certpulse/receiver/certlifecyclereceiver"
)

// auditSink runs a real certlifecycle receiver that the exporter audits to.
func auditSink(t *testing.T, cfg *Config) *consumertest.LogsSink {
	sink := new(consumertest.LogsSink)
	f := certlifecyclereceiver.NewFactory()
	rc := f.CreateDefaultConfig().(*certlifecyclereceiver.Config)
	rc.NetAddr.Endpoint = "127.0.0.1:0"
	rc.HMAC.Secret = "audit-secret-0123456789"
	// Find a free port: the receiver binds 127.0.0.1:0 but does not expose it,
	// so bind one here first.
	port := tb.FreePort(t)
	rc.NetAddr.Endpoint = fmt.Sprintf("127.0.0.1:%d", port)
	rcv, err := f.CreateLogs(context.Background(), receivertest.NewNopSettings(f.Type()), rc, sink)
	require.NoError(t, err)
	require.NoError(t, rcv.Start(context.Background(), nopHost()))
	t.Cleanup(func() { _ = rcv.Shutdown(context.Background()) })
	cc := confighttp.NewDefaultClientConfig()
	cc.Endpoint = fmt.Sprintf("http://127.0.0.1:%d/v1/lifecycle", port)
	cfg.Audit = configoptional.Some(AuditConfig{ClientConfig: cc, HMACSecret: "audit-secret-0123456789"})
	return sink
}

// auditRecords returns the audit events the sink received, in order.
func auditRecords(sink *consumertest.LogsSink) []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			lrs := ld.ResourceLogs().At(i).ScopeLogs().At(0).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				out = append(out, lrs.At(k))
			}
		}
	}
	return out
}

// decisions returns the audited decisions (pipeline_stage) in order.
func decisions(sink *consumertest.LogsSink) []string {
	var out []string
	for _, lr := range auditRecords(sink) {
		v, _ := lr.Attributes().Get(attrs.LifecyclePipelineStage)
		out = append(out, v.Str())
	}
	return out
}

func TestWebhookSignedIdempotentRetried(t *testing.T) {
	hook := newHookServer(t)
	hook.failNext = 2
	cfg := testConfig(webhookPolicy("reload-on-expiry", hook.URL, "reload"))
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))

	calls := hook.calls()
	require.Len(t, calls, 3, "two 500s, then success")
	assert.Equal(t, []string{"inc-1:reload:1", "inc-1:reload:1", "inc-1:reload:1"}, calls, "idempotency key stable across retries")
	assert.Zero(t, hook.badSig, "every try signed")
	assert.JSONEq(t, `{"incident":"inc-1","service":"payments","key":"inc-1:reload:1"}`, hook.bodies[2])
	assert.Equal(t, []string{"matched", "sent"}, decisions(audit))
}

func TestWebhookGivesUpWithAudit(t *testing.T) {
	hook := newHookServer(t)
	hook.failNext = 1000
	slow := newHookServer(t)
	slow.delay = 300 * time.Millisecond
	p := webhookPolicy("p", hook.URL, "reload")
	p2 := webhookPolicy("slow", slow.URL, "reload")
	p2.Reasons = []string{"revoked"}
	p2.Actions[0].Timeout = 50 * time.Millisecond
	p.Reasons = []string{"expired_leaf"}
	cfg := testConfig(p, p2)
	cfg.ActionRetry.MaxElapsedTime = 300 * time.Millisecond
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	inc := incident("inc-2", attrs.StateOpened, attrs.SeverityAlert)
	inc.Reason = "revoked"
	e.send(t, inc)
	assert.Greater(t, len(hook.calls()), 1, "500s retried")
	assert.Greater(t, len(slow.calls()), 1, "timeouts retried")
	assert.Equal(t, []string{"matched", "failed", "matched", "failed"}, decisions(audit))
}

func TestCooldownCapAndFlapping(t *testing.T) {
	hook := newHookServer(t)
	cfg := testConfig(webhookPolicy("p", hook.URL, "reload"))
	cfg.Guardrails.Cooldown = 10 * time.Minute
	cfg.Guardrails.MaxAttempts = 2
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())
	now := time.Now()
	e.r.setNow(func() time.Time { return now })
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityTicket))
	e.send(t, incident("inc-1", attrs.StateEscalated, attrs.SeverityPage)) // within cooldown
	for i := 0; i < 5; i++ {                                               // flapping: updates never act
		e.send(t, incident("inc-1", attrs.StateUpdated, attrs.SeverityPage))
	}
	now = now.Add(11 * time.Minute)
	e.send(t, incident("inc-1", attrs.StateEscalated, attrs.SeverityPage)) // attempt 2
	now = now.Add(11 * time.Minute)
	e.send(t, incident("inc-1", attrs.StateEscalated, attrs.SeverityPage)) // cap
	assert.Equal(t, []string{"inc-1:reload:1", "inc-1:reload:2"}, hook.calls())
	assert.Equal(t, []string{"matched", "sent", "skipped", "matched", "sent", "skipped"}, decisions(audit), "a guardrail skips without matching first")
}

func TestBrakeEngagesAtBudgetAndOnlyOperatorReleases(t *testing.T) {
	hook := newHookServer(t)
	cfg := testConfig(webhookPolicy("p", hook.URL, "reload"))
	cfg.Guardrails.Budget = 2
	cfg.Approval = configoptional.Some(approvalConfig(t))
	token := withBearer(t, cfg)
	e := startExporter(t, cfg, token.host)
	for i := 0; i < 4; i++ {
		e.send(t, incident(fmt.Sprintf("inc-%d", i), attrs.StateOpened, attrs.SeverityAlert))
	}
	assert.Len(t, hook.calls(), 2, "budget of 2, then the brake")
	assert.True(t, e.r.brakeState().Engaged)

	// Time passing does not release it.
	e.r.setNow(func() time.Time { return time.Now().Add(3 * time.Hour) })
	e.send(t, incident("inc-9", attrs.StateOpened, attrs.SeverityAlert))
	assert.Len(t, hook.calls(), 2)

	// Unauthenticated release is refused; the operator's works.
	res := apiPost(t, e.r, "/api/v1/brake/release", `{"by":"mallory","why":"x"}`, "")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	res = apiPost(t, e.r, "/api/v1/brake/release", `{"by":"alice","why":"fixed the deploy loop"}`, token.value)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.False(t, e.r.brakeState().Engaged)
	e.send(t, incident("inc-10", attrs.StateOpened, attrs.SeverityAlert))
	assert.Len(t, hook.calls(), 3)
}

func TestHighRiskNeedsApproval(t *testing.T) {
	hook := newHookServer(t)
	p := webhookPolicy("rotate-pins", hook.URL, "pins")
	cfg := testConfig(p)
	cfg.Approval = configoptional.Some(approvalConfig(t))
	token := withBearer(t, cfg)
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, token.host)
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityPage), incident("inc-2", attrs.StateOpened, attrs.SeverityPage))
	assert.Empty(t, hook.calls(), "high-risk actions wait")
	pend := e.r.pendingList()
	require.Len(t, pend, 2)

	res := apiGet(t, e.r, "/api/v1/pending", "")
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode, "listing needs auth")
	res = apiGet(t, e.r, "/api/v1/pending", token.value)
	require.Equal(t, http.StatusOK, res.StatusCode)

	byID := map[string]Pending{}
	for _, x := range pend {
		byID[x.IncidentID] = x
	}
	res = apiPost(t, e.r, "/api/v1/pending/"+byID["inc-1"].ID+"/deny", `{"by":"bob","why":"not now"}`, token.value)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Empty(t, hook.calls(), "denied: nothing fires")

	// Still failing when approved: re-checked, and it fires once.
	e.send(t, incident("inc-2", attrs.StateUpdated, attrs.SeverityPage))
	res = apiPost(t, e.r, "/api/v1/pending/"+byID["inc-2"].ID+"/approve", `{"by":"alice","why":"go"}`, token.value)
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, []string{"inc-2:reload:1"}, hook.calls(), "approved: fires once")
	res = apiPost(t, e.r, "/api/v1/pending/"+byID["inc-2"].ID+"/approve", `{"by":"alice","why":"again"}`, token.value)
	assert.Equal(t, http.StatusNotFound, res.StatusCode, "a decision is taken once")
	assert.Len(t, hook.calls(), 1)
	d := decisions(audit)
	assert.Contains(t, d, "awaiting_approval")
	assert.Contains(t, d, "denied")
	assert.Contains(t, d, "approved")
	assert.Equal(t, "sent", d[len(d)-1])
}

func TestApprovalRecheckedAgainstResolvedIncident(t *testing.T) {
	hook := newHookServer(t)
	cfg := testConfig(webhookPolicy("rotate-pins", hook.URL, "trust"))
	cfg.Approval = configoptional.Some(approvalConfig(t))
	token := withBearer(t, cfg)
	e := startExporter(t, cfg, token.host)
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityPage))
	pend := e.r.pendingList()
	require.Len(t, pend, 1)
	// Resolution cancels the pending action.
	e.send(t, incident("inc-1", attrs.StateResolved, attrs.SeverityPage))
	assert.Empty(t, e.r.pendingList())
	res := apiPost(t, e.r, "/api/v1/pending/"+pend[0].ID+"/approve", `{"by":"alice"}`, token.value)
	assert.Equal(t, http.StatusNotFound, res.StatusCode)
	assert.Empty(t, hook.calls())
}

func TestDryRun(t *testing.T) {
	hook := newHookServer(t)
	cfg := testConfig(webhookPolicy("p", hook.URL, "reload"))
	cfg.DryRun = true
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	assert.Empty(t, hook.calls())
	assert.Equal(t, []string{"matched", "dry_run"}, decisions(audit))
}

func TestIgnoresOtherRecordsAndUnmatched(t *testing.T) {
	hook := newHookServer(t)
	p := webhookPolicy("p", hook.URL, "reload")
	p.MinSeverity = attrs.SeverityPage
	cfg := testConfig(p)
	e := startExporter(t, cfg, nopHost())
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().Body().SetStr("hello")
	require.NoError(t, e.r.push(context.Background(), ld))
	e.r.waitIdle()
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	assert.Empty(t, hook.calls(), "below min_severity")
}

func apiGet(t *testing.T, r *remediator, path, token string) *http.Response {
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.approvalAddr+path, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	r.waitIdle()
	return res
}

func apiPost(t *testing.T, r *remediator, path, body, token string) *http.Response {
	req, _ := http.NewRequest(http.MethodPost, "http://"+r.approvalAddr+path, bytes.NewReader([]byte(body)))
	req.Header.Set("Content-Type", "application/json")
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	var out map[string]any
	_ = json.NewDecoder(res.Body).Decode(&out)
	res.Body.Close()
	if res.StatusCode >= 300 && !strings.Contains(path, "nothing") {
		t.Logf("%s -> %d %v", path, res.StatusCode, out)
	}
	r.waitIdle()
	return res
}

// After an approved high-risk action the policy's later actions run, in
// order, with the same attempt.
func TestApprovalContinuesThePolicy(t *testing.T) {
	hook := newHookServer(t)
	p := webhookPolicy("pins-then-reload", hook.URL, "pins")
	p.Actions[0].Name = "push-pins"
	p.Actions = append(p.Actions, ActionConfig{Name: "reload", Type: "webhook", Operation: "reload", URL: hook.URL, HMACSecret: hookSecret})
	cfg := testConfig(p)
	cfg.Approval = configoptional.Some(approvalConfig(t))
	token := withBearer(t, cfg)
	e := startExporter(t, cfg, token.host)
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityPage))
	assert.Empty(t, hook.calls())
	pend := e.r.pendingList()
	require.Len(t, pend, 1)
	assert.Equal(t, "push-pins", pend[0].Action)
	res := apiPost(t, e.r, "/api/v1/pending/"+pend[0].ID+"/approve", `{"by":"alice"}`, token.value)
	require.Equal(t, http.StatusOK, res.StatusCode)
	assert.Equal(t, []string{"inc-1:push-pins:1", "inc-1:reload:1"}, hook.calls())
}

// Every matching policy notifies; the first matching policy with webhooks
// remediates. A paging policy listed after a remediation policy still pages.
func TestNotificationsFromEveryMatchingPolicy(t *testing.T) {
	hook := newHookServer(t)
	am := newHookServer(t) // records the Alertmanager API posts
	reload := webhookPolicy("reload", hook.URL, "reload")
	page := PolicyConfig{Name: "page", MinSeverity: attrs.SeverityPage, Actions: []ActionConfig{{Name: "am", Type: "alertmanager", ClientConfig: confighttp.ClientConfig{Endpoint: am.URL}}}}
	later := webhookPolicy("later", hook.URL, "reissue")
	cfg := testConfig(reload, page, later)
	e := startExporter(t, cfg, nopHost())
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	assert.Equal(t, []string{"inc-1:reload:1"}, hook.calls(), "first webhook policy only")
	assert.Empty(t, am.calls(), "below the paging policy's min_severity")
	e.send(t, incident("inc-2", attrs.StateOpened, attrs.SeverityPage))
	assert.Equal(t, []string{"inc-1:reload:1", "inc-2:reload:1"}, hook.calls())
	assert.Len(t, am.calls(), 1, "paged although an earlier policy matched")
	e.send(t, incident("inc-2", attrs.StateResolved, attrs.SeverityPage))
	assert.Len(t, am.calls(), 2, "and resolved")
}

// TestRecurrenceIsANewEpisode: incident ids are deterministic, so a fault
// that comes back after its incident resolved has the same id. Its
// idempotency keys must differ from the last episode's (a receiver told to
// deduplicate would drop them), and the attempt cap starts again.
func TestRecurrenceIsANewEpisode(t *testing.T) {
	hook := newHookServer(t)
	cfg := testConfig(webhookPolicy("p", hook.URL, "reload"))
	cfg.Guardrails.MaxAttempts = 1
	cfg.Guardrails.Cooldown = time.Minute
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())
	now := time.Now()
	e.r.setNow(func() time.Time { return now })
	first := incident("inc-1", attrs.StateOpened, attrs.SeverityAlert)
	first.OpenedAt = now.Add(-time.Minute).Truncate(time.Second)
	e.send(t, first)
	first.State = attrs.StateResolved
	e.send(t, first)
	now = now.Add(2 * time.Hour) // within the 24 h the state is kept
	again := incident("inc-1", attrs.StateOpened, attrs.SeverityAlert)
	again.OpenedAt = now.Add(-10 * time.Second).Truncate(time.Second)
	e.send(t, again)
	keys := hook.calls()
	require.Len(t, keys, 2, "the recurrence is remediated: the cap does not carry over")
	assert.NotEqual(t, keys[0], keys[1], "each episode has its own keys")
	assert.Equal(t, fmt.Sprintf("inc-1:%d:reload:1", first.OpenedAt.Unix()), keys[0])
	assert.Equal(t, fmt.Sprintf("inc-1:%d:reload:1", again.OpenedAt.Unix()), keys[1])
	assert.Equal(t, []string{"matched", "sent", "resolved", "matched", "sent"}, decisions(audit))

	// Within one episode the cap holds.
	again.State = attrs.StateEscalated
	again.Severity = attrs.SeverityPage
	now = now.Add(2 * time.Minute)
	e.send(t, again)
	assert.Len(t, hook.calls(), 2, "attempt cap within the episode")
}
