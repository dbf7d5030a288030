package remediationexporter

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/certpulse/certpulse/exporter/remediationexporter/internal/metadatatest"
	"github.com/certpulse/certpulse/internal/attrs"
)

// auditLogs renders the audit events a sink received as one batch, as the
// gateway that takes over a partition reads them back from Kafka.
func auditLogs(t *testing.T, recs []plog.LogRecord) plog.Logs {
	t.Helper()
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	for _, lr := range recs {
		lr.CopyTo(sl.LogRecords().AppendEmpty())
	}
	return ld
}

// TestHandoverFromAnotherInstance: gateway A acts on an incident and dies;
// gateway B takes over its partitions, sees the incident announced again
// and, a moment later in the same partition, A's audit trail. With
// handover_hold B waits for that trail and does not call the webhook again
// with A's idempotency key; without it, it does (the failure the hold
// prevents).
func TestHandoverFromAnotherInstance(t *testing.T) {
	for _, tc := range []struct {
		name  string
		hold  time.Duration
		calls []string
	}{
		{"with handover_hold", 500 * time.Millisecond, []string{"inc-1:reload:1"}},
		{"without", 0, []string{"inc-1:reload:1", "inc-1:reload:1"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hook := newHookServer(t)
			cfgA := testConfig(webhookPolicy("p", hook.URL, "reload"))
			trailA := auditSink(t, cfgA)
			a := startExporter(t, cfgA, nopHost())
			a.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
			require.Equal(t, []string{"inc-1:reload:1"}, hook.calls())
			require.Eventually(t, func() bool { return len(decisions(trailA)) >= 2 }, 5*time.Second, 10*time.Millisecond)

			cfgB := testConfig(webhookPolicy("p", hook.URL, "reload"))
			cfgB.HandoverHold = tc.hold
			b := startExporter(t, cfgB, nopHost())
			// The replay: the incident first, A's audit events after it.
			require.NoError(t, b.r.push(context.Background(), incidentLogs(incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))))
			time.Sleep(50 * time.Millisecond)
			require.NoError(t, b.r.push(context.Background(), auditLogs(t, auditRecords(trailA))))
			time.Sleep(tc.hold + 100*time.Millisecond)
			b.r.waitIdle()
			assert.Equal(t, tc.calls, hook.calls())
		})
	}
}

// TestAuditTrailContinuesAttempts: attempts read from the trail count for
// the cap and the next idempotency key.
func TestAuditTrailContinuesAttempts(t *testing.T) {
	hook := newHookServer(t)
	cfgA := testConfig(webhookPolicy("p", hook.URL, "reload"))
	cfgA.Guardrails.Cooldown = 0
	trailA := auditSink(t, cfgA)
	a := startExporter(t, cfgA, nopHost())
	a.send(t, incident("inc-2", attrs.StateOpened, attrs.SeverityAlert))
	a.send(t, incident("inc-2", attrs.StateEscalated, attrs.SeverityPage))
	require.Eventually(t, func() bool { return len(decisions(trailA)) >= 4 }, 5*time.Second, 10*time.Millisecond)

	cfgB := testConfig(webhookPolicy("p", hook.URL, "reload"))
	cfgB.Guardrails.Cooldown = 0
	cfgB.Guardrails.MaxAttempts = 3
	b := startExporter(t, cfgB, nopHost())
	require.NoError(t, b.r.push(context.Background(), auditLogs(t, auditRecords(trailA))))
	b.send(t, incident("inc-2", attrs.StateEscalated, attrs.SeverityPage))
	b.send(t, incident("inc-2", attrs.StateEscalated, attrs.SeverityPage)) // cap reached
	assert.Equal(t, []string{"inc-2:reload:1", "inc-2:reload:2", "inc-2:reload:3"}, hook.calls())
}

// TestForgedHistoryIsNotLearned: any holder of the lifecycle token can post
// `remediation` events; history is only learned from events a remediation
// exporter attested (trail_secret). A forged trail (attempts at the cap)
// blocks nothing and is counted; a real exporter's trail under another
// deployment's secret neither.
func TestForgedHistoryIsNotLearned(t *testing.T) {
	forged := func(stage, key string) plog.LogRecord {
		lr := plog.NewLogRecord()
		lr.SetEventName(attrs.EventLifecyclePrefix + attrs.LifecycleRemediation)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(time.Now()))
		lr.Attributes().PutStr(attrs.LifecyclePipelineStage, stage)
		lr.Attributes().PutStr(attrs.LifecycleIncidentID, "inc-3")
		lr.Attributes().PutStr(attrs.LifecycleJobID, key)
		return lr
	}
	other := newHookServer(t)
	cfgO := testConfig(webhookPolicy("p", other.URL, "reload"))
	cfgO.TrailSecret = "another-deployment-secret"
	trailO := auditSink(t, cfgO)
	o := startExporter(t, cfgO, nopHost())
	o.send(t, incident("inc-3", attrs.StateOpened, attrs.SeverityAlert))
	require.Eventually(t, func() bool { return len(decisions(trailO)) >= 2 }, 5*time.Second, 10*time.Millisecond)

	hook := newHookServer(t)
	cfg := testConfig(webhookPolicy("p", hook.URL, "reload"))
	cfg.Guardrails.MaxAttempts = 3
	tel := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tel.Shutdown(context.Background()) })
	r, err := newRemediator(cfg, metadatatest.NewSettings(tel))
	require.NoError(t, err)
	require.NoError(t, r.start(context.Background(), nopHost()))
	t.Cleanup(func() { _ = r.shutdown(context.Background()) })
	b := &testExporter{r: r}
	require.NoError(t, b.r.push(context.Background(), auditLogs(t, []plog.LogRecord{forged("sent", "inc-3:reload:3"), forged("sent", "inc-3:reload:2")})))
	require.NoError(t, b.r.push(context.Background(), auditLogs(t, auditRecords(trailO))))
	b.send(t, incident("inc-3", attrs.StateOpened, attrs.SeverityAlert))
	assert.Equal(t, []string{"inc-3:reload:1"}, hook.calls(), "nothing learned: attempt 1 runs")
	m, err := tel.GetMetric("otelcol_remediation_trail_rejected")
	require.NoError(t, err)
	assert.Equal(t, int64(3), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value, "two forged, one under another secret")
}
