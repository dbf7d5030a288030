package remediationexporter

import (
	"context"
	"fmt"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/certpulse/certpulse/internal/attrs"
)

// BenchmarkIncidentToWebhook measures an incident record handed to the
// exporter (ConsumeLogs, through the exporterhelper queue) until the
// signed webhook is received by a real HTTP server on loopback; it reports
// p50 and p99. With file_storage, state is persisted before acting.
func BenchmarkIncidentToWebhook(b *testing.B) {
	for _, persist := range []bool{false, true} {
		b.Run(fmt.Sprintf("file_storage=%v", persist), func(b *testing.B) {
			got := make(chan time.Time, 1)
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				_, _ = io.Copy(io.Discard, r.Body)
				w.WriteHeader(http.StatusNoContent)
				got <- time.Now()
			}))
			defer srv.Close()
			p := webhookPolicy("p", srv.URL, "reload")
			cfg := createDefaultConfig()
			cfg.Policies = []PolicyConfig{p}
			cfg.Guardrails.Budget = 1 << 30
			host := component.Host(componenttest.NewNopHost())
			if persist {
				f := filestorage.NewFactory()
				scfg := f.CreateDefaultConfig().(*filestorage.Config)
				scfg.Directory = b.TempDir()
				ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), scfg)
				if err != nil {
					b.Fatal(err)
				}
				if err := ext.Start(context.Background(), host); err != nil {
					b.Fatal(err)
				}
				defer func() { _ = ext.Shutdown(context.Background()) }()
				id := component.MustNewID("file_storage")
				cfg.Storage = &id
				host = hosttest.Host{Host: host, Ext: map[component.ID]component.Component{id: ext}}
			}
			exp, err := NewFactory().CreateLogs(context.Background(), exportertestSettings(), cfg)
			if err != nil {
				b.Fatal(err)
			}
			if err := exp.Start(context.Background(), host); err != nil {
				b.Fatal(err)
			}
			defer func() { _ = exp.Shutdown(context.Background()) }()
			lat := make([]time.Duration, 0, b.N)
			b.ResetTimer()
			for i := range b.N {
				ld := incidentLogs(incident(fmt.Sprintf("inc-%d", i), attrs.StateOpened, attrs.SeverityAlert))
				t0 := time.Now()
				if err := exp.ConsumeLogs(context.Background(), ld); err != nil {
					b.Fatal(err)
				}
				lat = append(lat, (<-got).Sub(t0))
			}
			b.StopTimer()
			slices.Sort(lat)
			b.ReportMetric(float64(lat[len(lat)/2].Microseconds()), "p50-µs")
			b.ReportMetric(float64(lat[len(lat)*99/100].Microseconds()), "p99-µs")
		})
	}
}
