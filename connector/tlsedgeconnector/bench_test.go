package tlsedgeconnector

import (
	"context"
	"encoding/json"
	"fmt"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"testing"

	"github.com/certpulse/certpulse/internal/attrs"

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

// BenchmarkFlush: one metrics flush (every series, cumulative) and one
// window flush, with handshakes under the given number of server names
// (3 data points per name, plus one). A flush
// every interval costs this much per interval: at interval 1s, ns/op is
// the CPU share of one core spent flushing.
func BenchmarkFlush(b *testing.B) {
	for _, names := range []int{10, 100, 1000} {
		b.Run(fmt.Sprintf("names=%d", names), func(b *testing.B) {
			cfg := createDefaultConfig()
			cfg.MaxServerNames = names
			set := connectortest.NewNopSettings(NewFactory().Type())
			mc := newMetricsConnector(set, cfg, consumertest.NewNop())
			lc := newLogsConnector(set, cfg, consumertest.NewNop())
			var recs []map[string]any
			for i := 0; i < names; i++ {
				sni := fmt.Sprintf("s%d.example.com", i)
				recs = append(recs, access(2*i, 1, attrs.ServerAddress, sni),
					access(2*i+1, 1, attrs.ServerAddress, sni, attrs.TLSProtocolVersion, "TLSv1.2", attrs.TLSCipher, "ECDHE-RSA-AES128-SHA"))
			}
			ctx := context.Background()
			_ = mc.ConsumeLogs(ctx, nginxLogs(recs...))
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				_ = lc.ConsumeLogs(ctx, nginxLogs(access(i, 1)))
				if err := mc.flush(ctx); err != nil {
					b.Fatal(err)
				}
				if err := lc.flush(ctx); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkConnectorBody: the shipped overlays' path, lines handed over as
// their body (no json_parser), 100 a batch with a read time each, through
// each connector instance alone.
func BenchmarkConnectorBody(b *testing.B) {
	cfg := createDefaultConfig()
	cfg.Policies = []PolicyConfig{{Name: "modern", Preset: "modern"}, {Name: "intermediate", Preset: "intermediate"}}
	set := connectortest.NewNopSettings(NewFactory().Type())
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for i := 0; i < 100; i++ {
		l, _ := json.Marshal(nginxLine(i/3, i%3+1, "user_agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36"))
		lr := lrs.AppendEmpty()
		lr.Body().SetStr(string(l))
		lr.Attributes().PutStr(attrs.EdgeProxy, "nginx")
		lr.Attributes().PutStr(attrs.EdgeLog, "access")
		lr.Attributes().PutStr("log.file.name", "tls.json")
	}
	ctx := context.Background()
	for _, inst := range []string{"metrics", "logs"} {
		b.Run(inst, func(b *testing.B) {
			var c interface {
				ConsumeLogs(context.Context, plog.Logs) error
			}
			if inst == "metrics" {
				c = newMetricsConnector(set, cfg, consumertest.NewNop())
			} else {
				c = newLogsConnector(set, cfg, consumertest.NewNop())
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				for j := 0; j < lrs.Len(); j++ { // a new read time: no replay
					lrs.At(j).SetObservedTimestamp(pcommon.Timestamp(i*100 + j + 1))
				}
				_ = c.ConsumeLogs(ctx, ld)
			}
			b.ReportMetric(float64(b.N*100)/b.Elapsed().Seconds(), "records/s")
		})
	}
}
