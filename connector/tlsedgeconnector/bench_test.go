package tlsedgeconnector

import (
	"context"
	"testing"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
)

// BenchmarkConnector: records per second through the metrics and the logs
// connector (both, as the shipped configs run them), 100 records a batch
// as the filelog receiver sends them.
func BenchmarkConnector(b *testing.B) {
	cfg := createDefaultConfig()
	cfg.Policies = []PolicyConfig{{Name: "modern", Preset: "modern"}, {Name: "intermediate", Preset: "intermediate"}}
	set := connectortest.NewNopSettings(NewFactory().Type())
	mc := newMetricsConnector(set, cfg, consumertest.NewNop())
	lc := newLogsConnector(set, cfg, consumertest.NewNop())
	recs := make([]map[string]any, 100)
	for i := range recs {
		recs[i] = access(i/3, i%3+1)
	}
	ld := nginxLogs(recs...)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		batch := plog.NewLogs()
		ld.CopyTo(batch)
		_ = mc.ConsumeLogs(ctx, batch)
		_ = lc.ConsumeLogs(ctx, batch)
	}
	b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
}
