package gateway

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/exporter/remediationexporter"
	"github.com/certpulse/certpulse/internal/attrs"
)

// TestRemediationReceiverDown: the webhook receiver is down (connection
// refused) when incidents arrive, for as long as outage() (20s, 2m with
// make testbed RUN=ReceiverDown), then back. With action_retry covering the outage,
// every queued action runs exactly once after it returns; nothing is
// called twice.
func TestRemediationReceiverDown(t *testing.T) {
	down := outage(t)
	var mu sync.Mutex
	byKey := map[string]int{}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	addr := ln.Addr().String()
	ln.Close()
	hook := &switchable{addr: addr, h: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		byKey[r.Header.Get("Idempotency-Key")]++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	})}
	defer hook.stop()

	ctx := context.Background()
	f := remediationexporter.NewFactory()
	cfg := f.CreateDefaultConfig().(*remediationexporter.Config)
	cfg.ActionRetry.MaxElapsedTime = down + time.Minute // the policy covers the outage
	verify := false
	cfg.Policies = []remediationexporter.PolicyConfig{{Name: "reload", Reasons: []string{"expired_leaf"}, Verify: &verify,
		Actions: []remediationexporter.ActionConfig{{Name: "reload", Type: "webhook", Operation: "reload", URL: "http://" + addr + "/hook", HMACSecret: actionHMAC}}}}
	cfg.Guardrails.MaxConcurrency = 8
	require.NoError(t, cfg.Validate())
	exp, err := f.CreateLogs(ctx, exportertest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	defer func() { _ = exp.Shutdown(ctx) }()

	const incidents = 5
	for i := 0; i < incidents; i++ {
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(attrs.ServiceName, fmt.Sprintf("svc-%d", i))
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName(attrs.EventIncident)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		a := lr.Attributes()
		a.PutStr(attrs.IncidentID, fmt.Sprintf("inc-%d", i))
		a.PutStr(attrs.IncidentState, string(attrs.StateOpened))
		a.PutStr(attrs.Severity, string(attrs.SeverityAlert))
		a.PutStr(attrs.ReasonKey, "expired_leaf")
		require.NoError(t, exp.ConsumeLogs(ctx, ld))
	}
	time.Sleep(down)
	hook.start(t)
	back := time.Now()
	var got int
	for deadline := time.Now().Add(time.Minute); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		mu.Lock()
		got = len(byKey)
		mu.Unlock()
		if got == incidents {
			break
		}
	}
	took := time.Since(back)
	time.Sleep(2 * time.Second) // nothing more arrives
	mu.Lock()
	defer mu.Unlock()
	t.Logf("webhook receiver down %s: %d of %d actions ran after it returned (%.1fs), calls per key %v", down, len(byKey), incidents, took.Seconds(), byKey)
	require.Len(t, byKey, incidents, "every queued action runs")
	for k, n := range byKey {
		require.Equal(t, 1, n, "key %s called %d times", k, n)
	}
}
