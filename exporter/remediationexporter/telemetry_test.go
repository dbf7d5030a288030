package remediationexporter

import (
	"context"
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/certpulse/certpulse/exporter/remediationexporter/internal/metadatatest"
	"github.com/certpulse/certpulse/internal/attrs"
)

// TestTelemetry: decisions by outcome, the brake gauge and pending
// approvals as the collector's internal metrics.
func TestTelemetry(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { require.NoError(t, tt.Shutdown(context.Background())) })
	hook := newHookServer(t)
	low := webhookPolicy("low", hook.URL, "reload")
	low.Reasons = []string{"expired_leaf"}
	high := webhookPolicy("high", hook.URL, "pins")
	high.Reasons = []string{"pin_mismatch"}
	cfg := testConfig(low, high)
	cfg.Guardrails.Budget = 2 // a held action counts too
	cfg.Approval = configoptional.Some(approvalConfig(t))
	r, err := newRemediator(cfg, metadatatest.NewSettings(tt))
	require.NoError(t, err)
	require.NoError(t, r.start(context.Background(), nopHost()))
	t.Cleanup(func() { _ = r.shutdown(context.Background()) })

	pin := incident("inc-p", attrs.StateOpened, attrs.SeverityPage)
	pin.Reason = "pin_mismatch"
	require.NoError(t, r.push(context.Background(), incidentLogs(
		incident("inc-1", attrs.StateOpened, attrs.SeverityAlert), // sent (budget 1 spent)
		pin, // held for approval
		incident("inc-2", attrs.StateOpened, attrs.SeverityAlert), // brake engages
	)))
	r.waitIdle()

	metadatatest.AssertEqualRemediationPendingApprovals(t, tt, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	metadatatest.AssertEqualRemediationBrakeEngaged(t, tt, []metricdata.DataPoint[int64]{{Value: 1}}, metricdatatest.IgnoreTimestamp())
	count := map[string]int64{}
	for _, d := range []string{"matched", "awaiting_approval", "matched", "sent", "matched", "brake_engaged", "skipped"} {
		count[d]++
	}
	var dps []metricdata.DataPoint[int64]
	for outcome, n := range count {
		dps = append(dps, metricdata.DataPoint[int64]{Attributes: attribute.NewSet(attribute.String("outcome", outcome)), Value: n})
	}
	metadatatest.AssertEqualRemediationDecisions(t, tt, dps, metricdatatest.IgnoreTimestamp())
}
