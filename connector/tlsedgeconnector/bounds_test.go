package tlsedgeconnector

import (
	"context"
	"fmt"
	"testing"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// seriesOf counts the data points of each metric in the latest emission.
func seriesOf(ms *consumertest.MetricsSink) map[string]int {
	out := map[string]int{}
	all := ms.AllMetrics()
	last := all[len(all)-1]
	for i := 0; i < last.ResourceMetrics().Len(); i++ {
		sms := last.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			for k := 0; k < sms.At(j).Metrics().Len(); k++ {
				m := sms.At(j).Metrics().At(k)
				out[m.Name()] += m.Sum().DataPoints().Len()
			}
		}
	}
	return out
}

// TestClientDrivenSeriesBounded: what clients choose (junk HTTP methods
// with early data, rotating SNIs, offers) cannot grow the series beyond
// the bounds; with max_server_names 10 and max_series 100.
func TestClientDrivenSeriesBounded(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.MaxSeries = 100
	cfg.MaxServerNames = 10
	ms := new(consumertest.MetricsSink)
	mc := newMetricsConnector(connectortest.NewNopSettings(NewFactory().Type()), cfg, ms)
	ctx := context.Background()
	var recs []map[string]any
	for i := 0; i < 1000; i++ {
		// 1,000 distinct methods, each a new connection with early data.
		recs = append(recs, access(i, 1, attrs.TLSEarlyData, "true", "http.request.method", fmt.Sprintf("JUNK%d", i),
			attrs.ServerAddress, fmt.Sprintf("n%d.example", i), attrs.TLSCipher, []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384"}[i%2],
			attrs.TLSProtocolVersion, []string{"1.3", "TLSv1.3"}[i%2], "http.response.status_code", fmt.Sprint(200+i%300),
			attrs.TLSCurve, "X25519", attrs.EdgeClientGroups, fmt.Sprintf("P256:X25519:0x%04x", 0x1000+i)))
	}
	if err := mc.ConsumeLogs(ctx, stamped(nginxLogs(recs...))); err != nil {
		t.Fatal(err)
	}
	if err := mc.flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := seriesOf(ms)
	for name, max := range map[string]int{
		"tlsedge.handshakes":                110, // max_series plus a tenth
		"tlsedge.early_data.non_idempotent": 101,
		"tlsedge.hello_retries":             101,
	} {
		if got[name] > max || got[name] == 0 {
			t.Errorf("%s: %d series from 1,000 client-driven combinations, want 1..%d", name, got[name], max)
		}
	}
	if got := methodLabel("JUNK7"); got != "_OTHER" {
		t.Errorf("methodLabel(JUNK7) = %q", got)
	}
}

// TestIdleSeriesForgotten: a series that stopped moving is no longer
// emitted after series_idle; the others are.
func TestIdleSeriesForgotten(t *testing.T) {
	cfg := createDefaultConfig()
	ms := new(consumertest.MetricsSink)
	mc := newMetricsConnector(connectortest.NewNopSettings(NewFactory().Type()), cfg, ms)
	ctx := context.Background()
	send := func(ld plog.Logs) {
		t.Helper()
		if err := mc.ConsumeLogs(ctx, stamped(ld)); err != nil {
			t.Fatal(err)
		}
	}
	send(nginxLogs(access(1, 1, attrs.ServerAddress, "old.example")))
	// Age the first series past series_idle.
	for _, c := range mc.c.handshakes {
		c.last = c.last.Add(-2 * cfg.SeriesIdle)
	}
	send(nginxLogs(access(2, 1, attrs.ServerAddress, "new.example")))
	if err := mc.flush(ctx); err != nil {
		t.Fatal(err)
	}
	if n := seriesOf(ms)["tlsedge.handshakes"]; n != 1 {
		t.Errorf("%d handshake series emitted, want 1 (the idle one forgotten)", n)
	}
}
