package gateway

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/exporter/remediationexporter"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
	"github.com/certpulse/certpulse/receiver/certlifecyclereceiver"
)

// TestBrakeKeepsPagesFiring closes the real loop in one process: probe
// results into the correlator, its incidents into the remediation exporter,
// the exporter's audit trail back through the certlifecycle receiver into
// the correlator, and its pages to a real Alertmanager. The budget is one
// action: the first incident's action spends it, the second finds it spent
// at the last moment (matched, then skipped: the brake engages), the third
// is stopped by the engaged brake before anything matches. While they keep
// failing, none of the two that nothing fixes may be suppressed, and their
// alerts stay firing (issue: a guardrail that blocks remediation silenced
// the incident and resolved its alert within one probe interval).
func TestBrakeKeepsPagesFiring(t *testing.T) {
	am := proxytest.StartAlertmanager(t)
	var mu sync.Mutex
	var calls []string
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		calls = append(calls, r.Header.Get("Idempotency-Key"))
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	ctx := context.Background()

	// The correlator, fed by the test (probes) and by certlifecycle (audit).
	lcAddr := fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))
	verify := false
	rcfg := remediationConfig(remediationexporter.PolicyConfig{Name: "reload", Reasons: []string{string(attrs.ReasonExpiredLeaf)}, Verify: &verify,
		Actions: []remediationexporter.ActionConfig{
			{Name: "page", Type: "alertmanager", ClientConfig: confighttp.ClientConfig{Endpoint: am}},
			{Name: "reload", Type: "webhook", Operation: "reload", URL: hook.URL, HMACSecret: actionHMAC},
		}})
	rcfg.Guardrails.Budget = 1
	rcfg.Audit.GetOrInsertDefault().Endpoint = "http://" + lcAddr + "/v1/lifecycle"
	out := startRemediation(t, rcfg)
	proc := startCorrelator(t, out)

	lf := certlifecyclereceiver.NewFactory()
	lcfg := lf.CreateDefaultConfig().(*certlifecyclereceiver.Config)
	lcfg.NetAddr.Endpoint = lcAddr
	require.NoError(t, lcfg.Validate())
	lc, err := lf.CreateLogs(ctx, receivertest.NewNopSettings(lf.Type()), lcfg, proc)
	require.NoError(t, err)
	require.NoError(t, lc.Start(ctx, componenttest.NewNopHost()))
	defer func() { _ = lc.Shutdown(ctx) }()

	probe := func(svc string) {
		require.NoError(t, proc.ConsumeLogs(ctx, probeResult(svc, svc+".example.com", attrs.ReasonExpiredLeaf, "cafe"+svc, time.Now())))
	}
	audited := func(svc string, outcome attrs.Outcome) bool {
		out.mu.Lock()
		defer out.mu.Unlock()
		for _, r := range out.recs {
			if r.ResAttr(attrs.ServiceName) == svc && r.Attr(attrs.LifecycleType) == string(attrs.LifecycleRemediation) && r.Attr(attrs.LifecyclePipelineStage) == string(outcome) {
				return true
			}
		}
		return false
	}
	for _, svc := range []string{"first", "second", "third"} {
		probe(svc)
		want := attrs.OutcomeSent
		if svc != "first" {
			want = attrs.OutcomeSkipped
		}
		require.Eventually(t, func() bool { return audited(svc, want) }, 10*time.Second, 20*time.Millisecond, "%s: no %s decision came back", svc, want)
	}
	// The outage goes on: two more rounds of probes.
	for i := 0; i < 2; i++ {
		time.Sleep(300 * time.Millisecond)
		for _, svc := range []string{"first", "second", "third"} {
			probe(svc)
		}
	}
	time.Sleep(500 * time.Millisecond)

	out.mu.Lock()
	transitions := map[string][]string{}
	for _, r := range out.recs {
		if r.Attr(attrs.LifecycleType) != "" {
			t.Logf("%s lifecycle %s %s incident=%s", r.ResAttr(attrs.ServiceName), r.Attr(attrs.LifecycleType), r.Attr(attrs.LifecyclePipelineStage), r.Attr(attrs.IncidentID))
		}
		if r.EventName() == attrs.EventIncident {
			svc := r.ResAttr(attrs.ServiceName)
			transitions[svc] = append(transitions[svc], r.Attr(attrs.IncidentState))
		}
	}
	out.mu.Unlock()
	t.Logf("incident transitions: %v", transitions)
	assert.Equal(t, []string{"opened", "suppressed"}, transitions["first"], "the action under way holds its incident")
	for _, svc := range []string{"second", "third"} {
		assert.Equal(t, []string{"opened"}, transitions[svc], "%s: nothing runs for it, so nothing may suppress it", svc)
	}
	assert.False(t, audited("third", attrs.OutcomeMatched), "a remediation the brake stops never matches")

	firing := map[string]bool{}
	for _, a := range proxytest.Alerts(t, am) {
		if a.Status.State == "active" && a.EndsAt.After(time.Now()) {
			firing[a.Labels["service"]] = true
		}
	}
	assert.Equal(t, map[string]bool{"first": true, "second": true, "third": true}, firing, "every page keeps firing while its incident is open")
	mu.Lock()
	assert.Len(t, calls, 1, "one action: the budget")
	mu.Unlock()
}
