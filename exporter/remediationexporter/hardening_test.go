package remediationexporter

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
)

// TestRiskIsTheMaximum: `risk: low` on an action or a policy never lowers a
// high-risk operation below the approval gate, and config validation says so.
func TestRiskIsTheMaximum(t *testing.T) {
	p := PolicyConfig{Name: "p", Risk: "low", Actions: []ActionConfig{{Name: "a", Type: "webhook", Operation: "pins", Risk: "low", URL: "http://127.0.0.1:1/"}}}
	assert.Equal(t, "high", risk(&p, &p.Actions[0]), "pins stay high-risk whatever risk says")
	p.Actions[0].Operation, p.Actions[0].Risk = "reload", "high"
	assert.Equal(t, "high", risk(&p, &p.Actions[0]), "an action may raise its risk")
	p.Actions[0].Risk, p.Risk = "", "high"
	assert.Equal(t, "high", risk(&p, &p.Actions[0]), "a policy may raise every action's risk")

	cfg := testConfig(PolicyConfig{Name: "pin-push", Actions: []ActionConfig{{Name: "push", Type: "webhook", Operation: "trust", Risk: "low", URL: "http://127.0.0.1:1/"}}})
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `risk "low" cannot lower operation "trust", which is high-risk (trust, pins, delete need approval)`)
}

// TestBodyMustBeValidJSON: a template that interpolates certificate or
// lifecycle text into a JSON string without the json function produces a
// body that is not JSON: it is refused (audited failed), never sent; with
// {{json ...}} the same data goes out intact.
func TestBodyMustBeValidJSON(t *testing.T) {
	hook := newHookServer(t)
	bad := webhookPolicy("naive", hook.URL, "reload")
	bad.Actions[0].Body = `{"summary":"{{.Incident.Summary}}"}`
	bad.Reasons = []string{"expired_leaf"}
	good := webhookPolicy("safe", hook.URL, "reload")
	good.Actions[0].Body = `{"summary":{{json .Incident.Summary}}}`
	good.Reasons = []string{"revoked"}
	cfg := testConfig(bad, good)
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())
	inc := incident("inc-1", attrs.StateOpened, attrs.SeverityAlert)
	inc.Summary = `expired leaf CN="evil", "injected":true, x="`
	e.send(t, inc)
	assert.Empty(t, hook.calls(), "an invalid JSON body is never sent")
	assert.Equal(t, []string{"matched", "failed"}, decisions(audit))
	assert.Contains(t, auditMessages(audit)[1], "body is not valid JSON")

	inc2 := inc
	inc2.ID, inc2.Reason = "inc-2", "revoked"
	e.send(t, inc2)
	require.Len(t, hook.calls(), 1)
	assert.JSONEq(t, `{"summary":"expired leaf CN=\"evil\", \"injected\":true, x=\""}`, hook.bodies[0])
}

// TestVerifyNeedsTheSameReason re-probes real lab endpoints for an
// expired_leaf incident: a different certificate problem is not a
// reproduction, and a network failure from this collector is inconclusive
// (held unless the policy says on_inconclusive: act).
func TestVerifyNeedsTheSameReason(t *testing.T) {
	lab, err := faultlab.Start()
	require.NoError(t, err)
	t.Cleanup(lab.Close)
	files, err := lab.WriteFiles(t.TempDir())
	require.NoError(t, err)
	target := func(name string) string {
		ep, ok := lab.Endpoint(name)
		require.True(t, ok, name)
		return ep.ServerName + "@" + ep.Address
	}
	hook := newHookServer(t)
	hold := webhookPolicy("hold", hook.URL, "reload")
	hold.Verify, hold.Services = nil, []string{"payments"}
	act := webhookPolicy("act", hook.URL, "reload")
	act.Verify, act.Services, act.OnInconclusive = nil, []string{"edge"}, "act"
	cfg := testConfig(hold, act)
	cfg.Verify.TLS.CAFile = files.Roots
	cfg.Verify.AllowPrivateFetchNetworks = []string{"127.0.0.0/8"}
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())

	other := incident("inc-other", attrs.StateOpened, attrs.SeverityPage)
	other.Targets = []string{target("hostname-mismatch")}
	e.send(t, other)
	refused := incident("inc-refused", attrs.StateOpened, attrs.SeverityPage)
	refused.Targets = []string{target("refused")}
	e.send(t, refused)
	assert.Empty(t, hook.calls(), "neither a different reason nor an unreachable endpoint reproduces expired_leaf")
	assert.Equal(t, []string{"matched", "not_reproduced", "matched", "inconclusive"}, decisions(audit))

	edge := incident("inc-edge", attrs.StateOpened, attrs.SeverityPage)
	edge.Service, edge.Targets = "edge", []string{target("refused")}
	e.send(t, edge)
	assert.Equal(t, []string{"inc-edge:reload:1"}, hook.calls(), "on_inconclusive: act")
}
