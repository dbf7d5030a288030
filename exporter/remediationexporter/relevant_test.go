package remediationexporter

import (
	"context"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"

	"github.com/certpulse/certpulse/exporter/remediationexporter/internal/metadatatest"
	"github.com/certpulse/certpulse/internal/attrs"
)

// logsOf builds one resource per service with records of the given event
// names.
func logsOf(events map[string][]string) plog.Logs {
	ld := plog.NewLogs()
	for svc, names := range events {
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(attrs.ServiceName, svc)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName("scope-" + svc)
		for _, n := range names {
			lr := sl.LogRecords().AppendEmpty()
			lr.SetEventName(n)
			lr.Body().SetStr(svc + "/" + n)
		}
	}
	return ld
}

func bodies(ld plog.Logs) map[string]bool {
	out := map[string]bool{}
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		svc, _ := rl.Resource().Attributes().Get(attrs.ServiceName)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			if sl.Scope().Name() != "scope-"+svc.Str() {
				out["scope lost"] = true
			}
			for k := 0; k < sl.LogRecords().Len(); k++ {
				out[sl.LogRecords().At(k).Body().Str()] = true
			}
		}
	}
	return out
}

// TestRelevant: only incident records and remediation audit events reach
// the exporter's queue, with their resource and scope; a batch with none
// is not queued at all.
func TestRelevant(t *testing.T) {
	audit := attrs.EventLifecyclePrefix + attrs.LifecycleRemediation
	deployed := attrs.EventLifecyclePrefix + "deployed"
	for _, c := range []struct {
		name string
		in   map[string][]string
		want []string // bodies kept; nil: nothing queued
	}{
		{"probe results only", map[string][]string{"a": {attrs.EventProbeResult, attrs.EventProbeResult}, "b": {attrs.EventProbeResult}}, nil},
		{"empty", map[string][]string{}, nil},
		{"an incident among results", map[string][]string{"a": {attrs.EventProbeResult, attrs.EventIncident, attrs.EventProbeResult}, "b": {attrs.EventProbeResult}}, []string{"a/" + attrs.EventIncident}},
		{"audit events, other lifecycle events", map[string][]string{"a": {deployed, audit}, "b": {audit}}, []string{"a/" + audit, "b/" + audit}},
		{"all relevant", map[string][]string{"a": {attrs.EventIncident, audit}}, []string{"a/" + attrs.EventIncident, "a/" + audit}},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := logsOf(c.in)
			before := bodies(in)
			out, ok := relevant(in)
			assert.Equal(t, before, bodies(in), "the input is left as it came")
			if c.want == nil {
				assert.False(t, ok)
				return
			}
			require.True(t, ok)
			want := map[string]bool{}
			for _, b := range c.want {
				want[b] = true
			}
			assert.Equal(t, want, bodies(out))
			assert.Equal(t, len(c.want), out.LogRecordCount())
		})
	}
}

// TestQueueTakesOnlyRelevant: through the factory (the exporterhelper
// queue), a batch of probe results is not queued, and of a mixed batch the
// incident alone is.
func TestQueueTakesOnlyRelevant(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	cfg := createDefaultConfig()
	cfg.TrailSecret = testTrailSecret
	exp, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), nopHost()))
	require.NoError(t, exp.ConsumeLogs(context.Background(), logsOf(map[string][]string{"a": {attrs.EventProbeResult, attrs.EventProbeResult}})))
	require.NoError(t, exp.ConsumeLogs(context.Background(), incidentLogs(incident("inc-1", attrs.StateOpened, attrs.SeverityTicket))))
	require.NoError(t, exp.Shutdown(context.Background()))
	m, err := tt.GetMetric("otelcol_exporter_sent_log_records")
	require.NoError(t, err)
	var sent int64
	for _, dp := range m.Data.(metricdata.Sum[int64]).DataPoints {
		sent += dp.Value
	}
	assert.Equal(t, int64(1), sent, "the incident, not the probe results")
}
