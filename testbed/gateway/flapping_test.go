package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/exporter/remediationexporter"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
)

// tee hands every batch to the remediation exporter and keeps a copy.
type tee struct {
	next consumer.Logs
	mu   sync.Mutex
	recs []logtest.Record
}

func (t *tee) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (t *tee) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	cp := plog.NewLogs()
	ld.CopyTo(cp)
	t.mu.Lock()
	t.recs = append(t.recs, logtest.Records(cp)...)
	t.mu.Unlock()
	return t.next.ConsumeLogs(ctx, ld)
}

// TestFlappingEndpointNoRemediationLoop: an endpoint healthy and broken on
// alternate probes for 30 minutes of event time (a probe every 30 s),
// through the real correlator into the real remediation exporter with a
// short cooldown: one incident, its flaps counted, and at most
// max_attempts webhook calls.
func TestFlappingEndpointNoRemediationLoop(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	ctx := context.Background()

	verify := false
	rcfg := remediationConfig(remediationexporter.PolicyConfig{Name: "reload", Reasons: []string{string(attrs.ReasonExpiredLeaf)}, Verify: &verify,
		Actions: []remediationexporter.ActionConfig{{Name: "reload", Type: "webhook", Operation: "reload", URL: hook.URL, HMACSecret: actionHMAC}}})
	rcfg.Guardrails.Cooldown = 50 * time.Millisecond // wall clock: the 30 minutes are replayed in seconds
	rcfg.Guardrails.MaxAttempts = 3
	out := startRemediation(t, rcfg)
	proc := startCorrelator(t, out)

	t0 := time.Now().Add(-31 * time.Minute)
	for i := 0; i < 60; i++ {
		reason := attrs.ReasonExpiredLeaf
		if i%2 == 1 {
			reason = attrs.ReasonOK
		}
		ld := probeResult("flappy", "flappy.example.com", reason, "cafe", t0.Add(time.Duration(i)*30*time.Second))
		require.NoError(t, proc.ConsumeLogs(ctx, ld))
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)

	out.mu.Lock()
	ids := map[string]bool{}
	states := map[string]int{}
	flaps := int64(0)
	for _, r := range out.recs {
		if r.EventName() != attrs.EventIncident {
			continue
		}
		ids[r.Attr(attrs.IncidentID)] = true
		states[r.Attr(attrs.IncidentState)]++
		if v, ok := r.Attributes().Get(attrs.IncidentFlaps); ok && v.Int() > flaps {
			flaps = v.Int()
		}
	}
	out.mu.Unlock()
	mu.Lock()
	n := calls
	mu.Unlock()
	t.Logf("30 min of flapping (60 probes): incidents %d, transitions %v, flaps counted %d, webhook calls %d (max_attempts 3)", len(ids), states, flaps, n)
	require.Len(t, ids, 1, "one incident")
	require.LessOrEqual(t, n, 3, "no remediation loop")
	require.Positive(t, flaps, "flaps counted")
}
