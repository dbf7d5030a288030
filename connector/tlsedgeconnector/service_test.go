package tlsedgeconnector

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/certpulse/certpulse/internal/attrs"
)

func record(sni, listener string, failure bool) pcommon.Map {
	m := pcommon.NewMap()
	if failure {
		_ = m.FromRaw(map[string]any{attrs.EdgeProxy: "nginx", attrs.EdgeLog: "error", attrs.EdgeListener: listener, attrs.EdgeTLSFailure: "no shared cipher", "client.address": "203.0.113.9"})
		return m
	}
	raw := access(1, 1)
	raw[attrs.ServerAddress], raw[attrs.EdgeListener] = sni, listener
	delete(raw, attrs.EdgeConnection)
	delete(raw, attrs.EdgeConnectionRequests)
	_ = m.FromRaw(raw)
	return m
}

// TestServiceAttribution: a client-chosen SNI never names a service, and
// failures logged without SNI are judged with the successes of the
// population they belong to.
func TestServiceAttribution(t *testing.T) {
	shared := []ServiceConfig{{Name: "shop", ServerNames: []string{"shop.example"}}, {Name: "api", ServerNames: []string{"api.example"}}}
	for _, tc := range []struct {
		name         string
		services     []ServiceConfig
		before       []pcommon.Map // records first seen
		rec          pcommon.Map
		want, listen string
	}{
		{name: "no mapping: an outsider's SNI is not a service", rec: record("attacker-chosen.example", "10.0.0.5:443", false), want: "10.0.0.5:443"},
		{name: "no mapping: the SNI-less failure goes with those successes", before: []pcommon.Map{record("www.example", "10.0.0.5:443", false)}, rec: record("", "10.0.0.5:443", true), want: "10.0.0.5:443"},
		{name: "mapped name", services: shared, rec: record("shop.example", "10.0.0.5:443", false), want: "shop"},
		{name: "unmapped name on a mapped service's listener: the listener's", services: shared, rec: record("evil.example", "10.0.0.5:443", false), want: "10.0.0.5:443"},
		{name: "SNI-less failure, listener serves one mapped service: that service", services: shared, before: []pcommon.Map{record("shop.example", "10.0.0.6:443", false)}, rec: record("", "10.0.0.6:443", true), want: "shop"},
		{name: "SNI-less failure, listener shared by two: the listener's", services: shared, before: []pcommon.Map{record("shop.example", "10.0.0.5:443", false), record("api.example", "10.0.0.5:443", false)}, rec: record("", "10.0.0.5:443", true), want: "10.0.0.5:443"},
		{name: "a success on a shared listener also counts for the listener", services: shared, before: []pcommon.Map{record("shop.example", "10.0.0.5:443", false)}, rec: record("api.example", "10.0.0.5:443", false), want: "api", listen: "10.0.0.5:443"},
		{name: "listener mapped in the config", services: []ServiceConfig{{Name: "edge", Listeners: []string{"10.0.0.7:443"}}}, rec: record("", "10.0.0.7:443", true), want: "edge"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			cfg.Services = tc.services
			tr := newTracker(cfg)
			now := time.Now()
			for _, b := range tc.before {
				tr.observe(pcommon.NewMap(), b, now)
			}
			o := tr.observe(pcommon.NewMap(), tc.rec, now)
			if o.service != tc.want || o.alsoListener != tc.listen {
				t.Errorf("service %q (also %q), want %q (also %q)", o.service, o.alsoListener, tc.want, tc.listen)
			}
		})
	}
}

// TestScannersDoNotMakeAFailingPopulation: on a listener two mapped
// services share, 200 SNI-less scanner failures against 1,000 successes
// are 17% of the listener's handshakes, not 100% of a population of their
// own.
func TestScannersDoNotMakeAFailingPopulation(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Services = []ServiceConfig{{Name: "shop", ServerNames: []string{"shop.example"}}, {Name: "api", ServerNames: []string{"api.example"}}}
	lc := newLogsConnector(connectortest.NewNopSettings(NewFactory().Type()), cfg, nil)
	now := time.Now()
	for i := 0; i < 1000; i++ {
		sni := []string{"shop.example", "api.example"}[i%2]
		o := lc.tracker.observe(pcommon.NewMap(), record(sni, "10.0.0.5:443", false), now)
		lc.window(&o)
	}
	for i := 0; i < 200; i++ {
		o := lc.tracker.observe(pcommon.NewMap(), record("", "10.0.0.5:443", true), now)
		lc.window(&o)
	}
	var lw *window
	for k, w := range lc.windows {
		if k.service == "10.0.0.5:443" {
			lw = w
		}
	}
	if lw == nil || lw.failed != 200 || lw.handshakes < 1100 {
		t.Fatalf("listener window %+v, want 200 failures among the listener's handshakes", lw)
	}
	if share := float64(lw.failed) / float64(lw.handshakes); share > 0.2 {
		t.Errorf("failing share %.2f", share)
	}
}
