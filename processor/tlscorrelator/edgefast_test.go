package tlscorrelator

import (
	"context"
	"math"
	"math/rand"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/trigger"
	"github.com/certpulse/certpulse/processor/tlscorrelator/internal/metadata"
)

func TestBinomTail(t *testing.T) {
	for _, tc := range []struct {
		n, k int64
		p    float64
		want float64
	}{
		{10, 0, 0.1, 1},
		{5, 5, 0.5, 1.0 / 32},
		{5, 6, 0.5, 0},
		{20, 5, 0.01, 1.368e-6}, // C(20,5) 0.01^5 0.99^15 + ...
		{1000, 10, 0.01, 0.54},
	} {
		got := binomTail(tc.n, tc.k, tc.p)
		assert.InEpsilon(t, tc.want+1e-300, got+1e-300, 0.05, "P(X >= %d | %d, %v)", tc.k, tc.n, tc.p)
	}
}

func TestJudgeFast(t *testing.T) {
	cfg := createDefaultConfig().Edge.Fast
	now := t0.Add(time.Hour)
	win := func(node string, hs int64, reasons map[string]int64) edgeWindow {
		w := edgeWindow{End: now.Unix(), Begin: now.Unix() - 2, Node: node, HS: hs, Reasons: reasons}
		for _, n := range reasons {
			w.Failed += n
		}
		return w
	}
	clean := []edgeWindow{{End: now.Unix() - 60, Node: "a", HS: 1000}}
	withBase := func(base []edgeWindow, recent ...edgeWindow) []edgeWindow {
		return append(append([]edgeWindow(nil), base...), recent...)
	}
	uca := func(n int64) map[string]int64 { return map[string]int64{"unknown_ca": n} }
	for _, tc := range []struct {
		name             string
		base             []edgeWindow
		recent           []edgeWindow
		ep               fastEpisode
		judged, failing  bool
		started, cleared bool
		nodes            []string
	}{
		{"no baseline: not judged as a step", []edgeWindow{{End: now.Unix() - 60, Node: "a", HS: 40}}, []edgeWindow{win("a", 10, uca(10))}, fastEpisode{}, true, false, false, false, nil},
		{"every client of a node failing", clean, []edgeWindow{win("a", 5, uca(5)), win("b", 20, nil)}, fastEpisode{}, true, true, true, false, []string{"a"}},
		{"a handful is too few", clean, []edgeWindow{win("a", 4, uca(4))}, fastEpisode{}, false, false, false, false, nil},
		{"a fifth of the clients", clean, []edgeWindow{win("a", 100, uca(25))}, fastEpisode{}, true, true, true, false, []string{"a"}},
		{"the usual share", []edgeWindow{{End: now.Unix() - 60, Node: "a", HS: 1000, Failed: 20, Reasons: uca(20)}}, []edgeWindow{win("a", 100, uca(3))}, fastEpisode{}, true, false, false, false, nil},
		{"scanners' offers do not count", clean, []edgeWindow{win("a", 60, map[string]int64{"protocol_mismatch": 30, "cipher_mismatch": 10, "not_tls": 10})}, fastEpisode{}, true, false, false, false, nil},
		{"spread over nodes: the service's step", clean, []edgeWindow{win("a", 10, uca(3)), win("b", 10, uca(3)), win("c", 10, uca(3))}, fastEpisode{}, true, true, true, false, []string{"a", "b", "c"}},
		{"5 of 20 is chance at a 1% baseline", []edgeWindow{{End: now.Unix() - 60, Node: "a", HS: 1000, Failed: 10, Reasons: uca(10)}}, []edgeWindow{win("a", 20, uca(5))}, fastEpisode{}, true, false, false, false, nil},
		{"a high baseline needs a step above it", []edgeWindow{{End: now.Unix() - 60, Node: "a", HS: 1000, Failed: 300, Reasons: uca(300)}}, []edgeWindow{win("a", 100, uca(40))}, fastEpisode{}, true, false, false, false, nil},
		{"above a high baseline", []edgeWindow{{End: now.Unix() - 60, Node: "a", HS: 1000, Failed: 300, Reasons: uca(300)}}, []edgeWindow{win("a", 100, uca(60))}, fastEpisode{}, true, true, true, false, []string{"a"}},
		{"episode: healthy again", clean, []edgeWindow{win("a", 20, nil)}, fastEpisode{Since: now.Unix() - 30, Base: 0.001, Share: 1, Nodes: []string{"a"}}, true, false, false, true, nil},
		{"episode of a fifth: 20 clean handshakes could be chance", clean, []edgeWindow{win("a", 20, nil)}, fastEpisode{Since: now.Unix() - 30, Base: 0.001, Share: 0.2, Nodes: []string{"a"}}, true, true, false, false, []string{"a"}},
		{"episode of a fifth: 40 clean handshakes are not", clean, []edgeWindow{win("a", 40, nil)}, fastEpisode{Since: now.Unix() - 30, Base: 0.001, Share: 0.2, Nodes: []string{"a"}}, true, false, false, true, nil},
		{"a step in the newest windows, after successes", clean, []edgeWindow{win("a", 10, nil), win("a", 10, nil), win("a", 10, nil), {End: now.Unix() + 2, Begin: now.Unix(), Node: "a", HS: 6, Failed: 6, Reasons: uca(6)}}, fastEpisode{}, true, true, true, false, []string{"a"}},
		{"episode: too quiet to tell", clean, []edgeWindow{win("a", 2, nil)}, fastEpisode{Since: now.Unix() - 30, Base: 0.001, Nodes: []string{"a"}}, false, true, false, false, []string{"a"}},
		{"episode: still elevated", clean, []edgeWindow{win("a", 100, uca(15))}, fastEpisode{Since: now.Unix() - 30, Base: 0.001, Nodes: []string{"a"}}, true, true, false, false, []string{"a"}},
		{"episode: expired after a quiet edge.window, a new step starts", clean, []edgeWindow{win("a", 10, uca(10))}, fastEpisode{Since: now.Unix() - 600, Last: now.Unix() - 400, Base: 0.001, Share: 1, Nodes: []string{"a"}}, true, true, true, false, []string{"a"}},
		{"episode: the baseline is frozen", []edgeWindow{{End: now.Unix() - 60, Node: "a", HS: 100, Failed: 100, Reasons: uca(100)}}, []edgeWindow{win("a", 10, uca(10))}, fastEpisode{Since: now.Unix() - 30, Base: 0.001, Nodes: []string{"a"}}, true, true, false, false, []string{"a"}},
	} {
		v := judgeFast(withBase(tc.base, tc.recent...), tc.recent, tc.ep, cfg, 5*time.Minute, now)
		assert.Equal(t, tc.judged, v.judged, "%s: judged", tc.name)
		assert.Equal(t, tc.failing, v.failing, "%s: failing", tc.name)
		assert.Equal(t, tc.started, v.started, "%s: started", tc.name)
		assert.Equal(t, tc.cleared, v.cleared, "%s: cleared", tc.name)
		assert.Equal(t, tc.nodes, v.episode.Nodes, "%s: nodes", tc.name)
		if tc.started {
			var since int64
			for _, w := range tc.recent {
				if w.Failed > 0 && (since == 0 || w.Start() < since) {
					since = w.Start()
				}
			}
			assert.Equal(t, since, v.episode.Since, "%s: since the first failing window began", tc.name)
		}
	}
}

// hubHost is a host with a certpulse_trigger extension whose events are
// recorded.
type hubHost struct {
	component.Host
	hub    *trigger.Hub
	mu     sync.Mutex
	events []trigger.Event
}

type hubExt struct {
	component.StartFunc
	component.ShutdownFunc
	hub *trigger.Hub
}

func (x hubExt) Hub() *trigger.Hub { return x.hub }

var triggerID = component.MustNewID("certpulse_trigger")

func newHubHost() *hubHost {
	h := &hubHost{Host: componenttest.NewNopHost(), hub: trigger.NewHub()}
	h.hub.Subscribe(func(ev trigger.Event) {
		h.mu.Lock()
		defer h.mu.Unlock()
		h.events = append(h.events, ev)
	})
	return h
}

func (h *hubHost) GetExtensions() map[component.ID]component.Component {
	return map[component.ID]component.Component{triggerID: hubExt{hub: h.hub}}
}

func (h *hubHost) fired() []trigger.Event {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]trigger.Event(nil), h.events...)
}

// TestEdgeFastDetects: a node's clients begin failing after two minutes
// of clean traffic: handshake_failure_rate opens at the first window with
// a handful of failures (not minutes later), the service's probes are
// triggered once, the failing probe's reason code joins the incident at
// once, and the incident resolves within a window of the fix.
func TestEdgeFastDetects(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Trigger = &triggerID
	host := newHubHost()
	h := newHarnessWithHost(t, cfg, host)
	at := func(s int) time.Duration { return time.Duration(s) * time.Second }
	for s := 2; s <= 120; s += 2 {
		h.feed(edgeWin{at: at(s), service: "shop", node: "n1", hs: 10}, edgeWin{at: at(s), service: "shop", node: "n2", hs: 10})
	}
	assert.Empty(t, h.incidents(), "clean traffic")
	h.feed(edgeWin{at: at(122), service: "shop", node: "n1", hs: 10, failed: 10, reasons: map[string]int64{"unknown_ca": 10}},
		edgeWin{at: at(122), service: "shop", node: "n2", hs: 10})
	got := h.incidents()
	require.Len(t, got, 1, "opened at the first failing window")
	assert.Equal(t, "opened", got[0].state)
	assert.Equal(t, string(attrs.ReasonHandshakeFailureRate), got[0].reason)
	assert.Equal(t, []trigger.Event{{Type: trigger.EdgeFailures, Service: "shop"}}, host.fired())

	edgeID := got[0].id
	assert.Contains(t, lastSummary(t, h), "real clients failing since 10:02:00 UTC on 1 node (n1): 10 of 10 handshakes since the step (unknown_ca 10 in the last 10s), 0.1% usually")

	// The triggered probe fails: its reason code joins the incident at
	// once; the probe's own incident (corroborated or not) then takes the
	// edge signal in (one incident, not two: the edge one resolves as
	// joined).
	h.feed(probe{at: at(123), service: "shop", server: "shop.example.com", vantage: "v1", reason: attrs.ReasonMissingIntermediate, chain: "c2"})
	byID := func(id string) []inc {
		var out []inc
		for _, x := range h.incidents() {
			if x.id == id {
				out = append(out, x)
			}
		}
		return out
	}
	edge := byID(edgeID)
	require.Len(t, edge, 2)
	assert.Equal(t, "updated", edge[1].state)
	assert.Equal(t, string(attrs.ReasonMissingIntermediate), edge[1].probeReason)
	assert.Contains(t, summaryOf(t, h, edgeID), "; probe: missing_intermediate on shop.example.com:443")

	for s := 124; s <= 130; s += 2 {
		h.feed(edgeWin{at: at(s), service: "shop", node: "n1", hs: 10, failed: 10, reasons: map[string]int64{"unknown_ca": 10}},
			edgeWin{at: at(s), service: "shop", node: "n2", hs: 10})
	}
	assert.Len(t, host.fired(), 1, "one trigger per episode")
	edge = byID(edgeID)
	assert.Equal(t, "resolved", edge[len(edge)-1].state, "joined into the probe's incident")
	var probeInc []inc
	for _, x := range h.incidents() {
		if x.id != edgeID {
			probeInc = append(probeInc, x)
		}
	}
	require.NotEmpty(t, probeInc)
	assert.Equal(t, string(attrs.ReasonMissingIntermediate), probeInc[0].reason)

	// Fixed: the recent span turns clean; the step is over at once (a
	// fresh episode would trigger again), the probes resolve theirs.
	for s := 132; s <= 146; s += 2 {
		h.feed(edgeWin{at: at(s), service: "shop", node: "n1", hs: 10}, edgeWin{at: at(s), service: "shop", node: "n2", hs: 10})
	}
	for s := 150; s <= 156; s += 2 {
		h.feed(probe{at: at(s), service: "shop", server: "shop.example.com", vantage: "v1", reason: attrs.ReasonOK, chain: "c1"})
	}
	h.feed(edgeWin{at: at(160), service: "shop", node: "n1", hs: 10, failed: 10, reasons: map[string]int64{"unknown_ca": 10}})
	assert.Len(t, host.fired(), 2, "a new step after the fix triggers again")
}

func summaryOf(t *testing.T, h *harness, id string) string {
	t.Helper()
	var last string
	for _, r := range logtestRecords(h.sink) {
		if r.EventName() == attrs.EventIncident && r.Attr(attrs.IncidentID) == id {
			last = r.Body().AsString()
		}
	}
	return last
}

func lastSummary(t *testing.T, h *harness) string {
	t.Helper()
	var last string
	for _, r := range logtestRecords(h.sink) {
		if r.EventName() == attrs.EventIncident {
			last = r.Body().AsString()
		}
	}
	return last
}

// TestEdgeFastBackground: hours of steady traffic with realistic noise,
// replayed through the processor in accelerated event time (2 s windows
// from 3 nodes of each service, a daily traffic curve, legacy clients,
// clients with stale trust stores, scanner bursts of junk and odd offers,
// stray alerts): the step detector opens nothing. The short form runs in
// `go test`; CERTPULSE_FP_HOURS sets the hours (docs/performance.md).
func TestEdgeFastBackground(t *testing.T) {
	hours := 1.0
	if v := envFloat("CERTPULSE_FP_HOURS"); v > 0 {
		hours = v
	}
	const services, nodes = 10, 3
	cfg := createDefaultConfig()
	cfg.Trigger = &triggerID
	host := newHubHost()
	var opened, windows, handshakes int64
	// Only the incident records are kept: hours of windows would not fit.
	sink := consumerFunc(func(ld plog.Logs) {
		for _, r := range logtest.Records(ld) {
			if r.EventName() == attrs.EventIncident && r.Attr(attrs.IncidentState) == string(attrs.StateOpened) {
				opened++
				t.Logf("opened: %s", r.Body().AsString())
			}
		}
	})
	p, err := NewFactory().CreateLogs(context.Background(), processortest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), host))
	defer func() { _ = p.Shutdown(context.Background()) }()
	rng := rand.New(rand.NewSource(7))
	type svc struct{ rate, legacy, stale float64 }
	ss := make([]svc, services)
	for i := range ss {
		// 0.5-25 handshakes a second per node, 0.1-0.4% legacy clients
		// (protocol_mismatch), 0-0.3% stale trust stores (unknown_ca).
		ss[i] = svc{rate: 0.5 + 24.5*rng.Float64(), legacy: 0.001 + 0.003*rng.Float64(), stale: 0.003 * rng.Float64()}
	}
	steps := int(hours * 3600 / 2)
	for i := 1; i <= steps; i++ {
		at := time.Duration(i) * 2 * time.Second
		day := 0.55 + 0.45*math.Sin(2*math.Pi*at.Hours()/24)
		ld := plog.NewLogs()
		for s, sv := range ss {
			for n := 0; n < nodes; n++ {
				hs := poisson(rng, 2*sv.rate*day)
				w := edgeWin{at: at, service: "svc-" + string(rune('a'+s)), node: "n" + string(rune('1'+n)), reasons: map[string]int64{}}
				for k := int64(0); k < hs; k++ {
					switch x := rng.Float64(); {
					case x < sv.legacy:
						w.reasons["protocol_mismatch"]++
					case x < sv.legacy+sv.stale:
						w.reasons["unknown_ca"]++
					}
				}
				// A scanner about every 20 minutes per node: junk, odd
				// offers, sometimes an alert or two.
				if rng.Float64() < 2.0/1200 {
					w.reasons["not_tls"] += 5 + rng.Int63n(40)
					w.reasons["protocol_mismatch"] += rng.Int63n(20)
					w.reasons["cipher_mismatch"] += rng.Int63n(20)
					w.reasons["handshake_failure"] += rng.Int63n(3)
				}
				w.hs = hs
				for r, c := range w.reasons {
					w.failed += c
					if r != "protocol_mismatch" && r != "unknown_ca" {
						w.hs += c // the scanner's connections come on top
					}
				}
				if w.hs == 0 {
					continue
				}
				windows++
				handshakes += w.hs
				w.appendTo(ld)
			}
		}
		require.NoError(t, p.ConsumeLogs(context.Background(), ld))
	}
	t.Logf("%.1f h of background on %d services x %d nodes: %d windows, %d handshakes; steps detected (probes triggered): %d; incidents opened: %d",
		hours, services, nodes, windows, handshakes, len(host.fired()), opened)
	assert.Empty(t, host.fired(), "the background triggered probes")
	assert.Zero(t, opened, "the background opened incidents")
}

type consumerFunc func(plog.Logs)

func (f consumerFunc) ConsumeLogs(_ context.Context, ld plog.Logs) error { f(ld); return nil }
func (consumerFunc) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func envFloat(k string) float64 {
	v, _ := strconv.ParseFloat(os.Getenv(k), 64)
	return v
}

// poisson draws from Poisson(l) (normal approximation above 30).
func poisson(rng *rand.Rand, l float64) int64 {
	if l > 30 {
		return max(0, int64(math.Round(l+math.Sqrt(l)*rng.NormFloat64())))
	}
	L, k, p := math.Exp(-l), int64(0), 1.0
	for {
		p *= rng.Float64()
		if p <= L {
			return k
		}
		k++
	}
}

// TestEdgeNotTLSIsNotJudged: junk on the port (a scanner, plain HTTP) is
// no client failing: it moves neither the 5-minute share nor the step.
func TestEdgeNotTLSIsNotJudged(t *testing.T) {
	v := judgeEdge([]edgeWindow{{Node: "a", HS: 1000, Failed: 100, Reasons: map[string]int64{"not_tls": 99, "unknown_ca": 1}}}, createDefaultConfig().Edge)
	assert.True(t, v.judged)
	assert.False(t, v.failing, "99 junk connections and 1 failure among 901 handshakes")
	assert.Equal(t, int64(901), v.handshakes)
	assert.False(t, strings.Contains(v.topReasons, "not_tls"))
}

func TestFastConfigValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*FastConfig)
		err  string
	}{
		{"default", func(*FastConfig) {}, ""},
		{"off", func(f *FastConfig) { f.Window = 0; f.Reasons = nil }, ""},
		{"window beyond half of edge.window", func(f *FastConfig) { f.Window = 3 * time.Minute }, "edge::fast"},
		{"no reasons", func(f *FastConfig) { f.Reasons = nil }, "edge::fast"},
		{"unknown reason", func(f *FastConfig) { f.Reasons = []attrs.Reason{"bogus"} }, `"bogus" is not a failing reason code`},
		{"share", func(f *FastConfig) { f.MinShare = 1.5 }, "edge::fast"},
	} {
		cfg := createDefaultConfig()
		tc.mod(&cfg.Edge.Fast)
		err := cfg.Validate()
		if tc.err == "" {
			assert.NoError(t, err, tc.name)
		} else if assert.Error(t, err, tc.name) {
			assert.Contains(t, err.Error(), tc.err, tc.name)
		}
	}
}
