package tlscorrelator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// edgeWin is a tlsedge window record as the connector emits it.
type edgeWin struct {
	at                  time.Duration
	service, node       string
	hs, failed, resumed int64
	reasons             map[string]int64
}

func (w edgeWin) appendTo(ld plog.Logs) {
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(attrs.ServiceName, w.service)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(attrs.EventEdgeWindow)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(w.at)))
	a := lr.Attributes()
	a.PutStr(attrs.EdgeNode, w.node)
	a.PutStr(attrs.EdgeWindowStart, t0.Add(w.at-2*time.Second).Format(time.RFC3339Nano))
	a.PutInt(attrs.EdgeHandshakes, w.hs)
	a.PutInt(attrs.EdgeHandshakesFailed, w.failed)
	a.PutInt(attrs.EdgeHandshakesResumed, w.resumed)
	m := a.PutEmptyMap(attrs.EdgeFailureReasons)
	for r, n := range w.reasons {
		m.PutInt(r, n)
	}
}

func TestJudgeEdge(t *testing.T) {
	cfg := createDefaultConfig().Edge
	for _, tc := range []struct {
		name              string
		wins              []edgeWindow
		judged, failing   bool
		degraded, healthy []string
	}{
		{"too few handshakes", []edgeWindow{{Node: "a", HS: 50, Failed: 50}}, false, false, nil, nil},
		{"99.6% succeed", []edgeWindow{{Node: "a", HS: 1000, Failed: 4, Resumed: 800}}, true, false, nil, []string{"a"}},
		{"99.4% of 1000 succeed: not confidently below", []edgeWindow{{Node: "a", HS: 1000, Failed: 6, Resumed: 800}}, true, false, nil, []string{"a"}},
		{"98.5% of 1000 succeed", []edgeWindow{{Node: "a", HS: 1000, Failed: 15, Resumed: 800}}, true, true, nil, []string{"a"}},
		{"99.4% of 100000 succeed", []edgeWindow{{Node: "a", HS: 100000, Failed: 600, Resumed: 80000}}, true, true, nil, []string{"a"}},
		{"refused offers and junk are not judged", []edgeWindow{{Node: "a", HS: 1000, Failed: 100, Resumed: 800, Reasons: map[string]int64{"protocol_mismatch": 50, "cipher_mismatch": 20, "not_tls": 30}}}, true, false, nil, []string{"a"}},
		{"one node low on resumption", []edgeWindow{{Node: "a", HS: 100, Resumed: 80}, {Node: "b", HS: 100, Resumed: 70}, {Node: "c", HS: 100, Resumed: 10}}, true, false, []string{"c"}, []string{"a", "b"}},
		{"every node low: not a key sync problem", []edgeWindow{{Node: "a", HS: 100, Resumed: 10}, {Node: "b", HS: 100, Resumed: 5}}, true, false, []string{"a", "b"}, nil},
		{"a node with too few handshakes is not judged", []edgeWindow{{Node: "a", HS: 100, Resumed: 80}, {Node: "c", HS: 10, Resumed: 0}}, true, false, nil, []string{"a"}},
	} {
		v := judgeEdge(tc.wins, cfg)
		assert.Equal(t, tc.judged, v.judged, tc.name)
		assert.Equal(t, tc.failing, v.failing, tc.name)
		assert.Equal(t, tc.degraded, v.degraded, tc.name)
		assert.Equal(t, tc.healthy, v.healthy, tc.name)
	}
}

// TestEdgeFailureRate: real clients fail above the threshold after a
// deploy: one handshake_failure_rate incident, impact the failing share,
// resolved once the window is healthy again. With a probe incident open for
// the service, the edge signal joins it instead (one incident, not two).
func TestEdgeFailureRate(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	var items []appender
	items = append(items, event{at: 0, typ: "deployed", service: "shop", job: "deploy-7"})
	for i := 1; i <= 10; i++ { // 2% failing, unknown_ca, from 1 minute after the deploy
		items = append(items, edgeWin{at: time.Duration(i) * 15 * time.Second, service: "shop", node: "n1", hs: 50, failed: 1, reasons: map[string]int64{"unknown_ca": 1}})
	}
	for i := 11; i <= 40; i++ { // healthy; the failures age out of the 5m window
		items = append(items, edgeWin{at: time.Duration(i) * 15 * time.Second, service: "shop", node: "n1", hs: 50})
	}
	h.feed(items...)
	var got []inc
	for _, x := range h.incidents() {
		if x.reason == string(attrs.ReasonHandshakeFailureRate) {
			got = append(got, x)
		}
	}
	require.NotEmpty(t, got)
	assert.Equal(t, "opened", got[0].state)
	assert.Equal(t, "deploy-7", got[0].job, "joined with the deploy it followed")
	assert.Equal(t, "alert", got[0].severity)
	assert.InDelta(t, 0.02, got[0].impact, 0.001, "impact is the failing share")
	assert.Equal(t, "resolved", got[len(got)-1].state)
	opened := 0
	for _, x := range got {
		if x.state == "opened" {
			opened++
		}
	}
	assert.Equal(t, 1, opened)

	// A probe incident for the service first: the edge signal joins it.
	h2 := newHarness(t, createDefaultConfig())
	items = nil
	for i := 0; i < 3; i++ {
		items = append(items, probe{at: time.Duration(i) * 20 * time.Second, service: "shop", vantage: "v1", chain: chainA, leaf: leafA, spki: spkiA})
	}
	items = append(items, probe{at: time.Minute, service: "shop", vantage: "v1", reason: attrs.ReasonMissingIntermediate, chain: chainB, leaf: leafB, spki: spkiB})
	for i := 5; i <= 12; i++ {
		items = append(items, edgeWin{at: time.Duration(i) * 15 * time.Second, service: "shop", node: "n1", hs: 50, failed: 5, reasons: map[string]int64{"unknown_ca": 5}})
	}
	h2.feed(items...)
	var edgeOpened, joined int
	for _, x := range h2.incidents() {
		if x.reason == string(attrs.ReasonHandshakeFailureRate) {
			edgeOpened++
		}
		if x.probeReason == string(attrs.ReasonMissingIntermediate) || x.reason == string(attrs.ReasonMissingIntermediate) {
			if x.state == "updated" && x.impact >= 0.1 {
				joined++
			}
		}
	}
	assert.Equal(t, 0, edgeOpened, "no second incident")
	assert.Equal(t, 1, joined, "the probe incident updated once with the measured share")
}

// TestEdgeResumptionDegraded: node c resumes 10% while a and b resume 80%:
// one resumption_degraded incident naming c; resolved when c recovers.
func TestEdgeResumptionDegraded(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	var items []appender
	for i := 1; i <= 8; i++ {
		at := time.Duration(i) * 15 * time.Second
		items = append(items, edgeWin{at: at, service: "shop", node: "a", hs: 40, resumed: 32},
			edgeWin{at: at, service: "shop", node: "b", hs: 40, resumed: 32},
			edgeWin{at: at, service: "shop", node: "c", hs: 40, resumed: 4})
	}
	for i := 9; i <= 40; i++ {
		at := time.Duration(i) * 15 * time.Second
		for _, n := range []string{"a", "b", "c"} {
			items = append(items, edgeWin{at: at, service: "shop", node: n, hs: 40, resumed: 32})
		}
	}
	h.feed(items...)
	var states []string
	for _, x := range h.incidents() {
		if x.reason == string(attrs.ReasonResumptionDegraded) {
			states = append(states, x.state)
			if x.state == "opened" {
				assert.Equal(t, "ticket", x.severity)
			}
		}
	}
	require.NotEmpty(t, states)
	assert.Equal(t, "opened", states[0])
	assert.Equal(t, "resolved", states[len(states)-1])
}

func TestEdgeConfigValidate(t *testing.T) {
	for _, mut := range []func(*EdgeConfig){
		func(c *EdgeConfig) { c.Window = 0 },
		func(c *EdgeConfig) { c.MinHandshakes = 0 },
		func(c *EdgeConfig) { c.SuccessBelow = 1.5 },
		func(c *EdgeConfig) { c.ResumptionBelow = 0 },
	} {
		cfg := createDefaultConfig()
		mut(&cfg.Edge)
		err := cfg.Validate()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "edge:")
	}
}

// TestEdgeWindowsStaySmall: a service's remembered windows are merged per
// node into about ten buckets of edge.window, not one per interval.
func TestEdgeWindowsStaySmall(t *testing.T) {
	cfg := createDefaultConfig()
	e := newEngine(cfg)
	for i := 0; i < 400; i++ { // 100 minutes of 15s windows from two nodes
		for _, n := range []string{"a", "b"} {
			r := &record{kind: kindEdge, service: "shop", time: t0.Add(time.Duration(i) * 15 * time.Second),
				edge: edgeWindow{End: t0.Add(time.Duration(i) * 15 * time.Second).Unix(), Node: n, HS: 10, Resumed: 8}}
			e.edgeWindow(r)
		}
	}
	wins := e.services["shop"].Edge
	assert.LessOrEqual(t, len(wins), 24, "windows kept")
	var hs int64
	for _, w := range wins {
		hs += w.HS
	}
	// Everything inside the last 5 minutes (give or take one bucket).
	assert.InDelta(t, 2*20*10, hs, 2*2*10)
}

// TestEdgeIncidentsResolveWhenNoLongerObserved: the bad node is drained and
// the rest of the traffic is too thin to judge (a trickle under
// min_handshakes, or one judged node for resumption): after an edge window
// of that the edge incidents resolve as unobserved, instead of staying
// open until the 24 h idle expiry. With no edge data at all, the tick
// does the same.
func TestEdgeIncidentsResolveWhenNoLongerObserved(t *testing.T) {
	t.Run("failure rate, a trickle", func(t *testing.T) {
		h := newHarness(t, createDefaultConfig())
		var items []appender
		for i := 1; i <= 8; i++ {
			items = append(items, edgeWin{at: time.Duration(i) * 15 * time.Second, service: "shop", node: "n1", hs: 50, failed: 25, reasons: map[string]int64{"unknown_ca": 25}})
		}
		for i := 9; i <= 60; i++ { // n1 drained: n2 sees 1 handshake in 15 s
			items = append(items, edgeWin{at: time.Duration(i) * 15 * time.Second, service: "shop", node: "n2", hs: 1})
		}
		h.feed(items...)
		states := h.statesOf(attrs.ReasonHandshakeFailureRate)
		assert.Equal(t, []string{"opened", "resolved"}, states)
		assert.Equal(t, "unobserved", h.lastResolution())
	})
	t.Run("resumption, one node left", func(t *testing.T) {
		h := newHarness(t, createDefaultConfig())
		var items []appender
		for i := 1; i <= 8; i++ {
			at := time.Duration(i) * 15 * time.Second
			items = append(items, edgeWin{at: at, service: "shop", node: "a", hs: 40, resumed: 32}, edgeWin{at: at, service: "shop", node: "c", hs: 40, resumed: 4})
		}
		for i := 9; i <= 60; i++ { // c drained: only a is judged
			items = append(items, edgeWin{at: time.Duration(i) * 15 * time.Second, service: "shop", node: "a", hs: 40, resumed: 32})
		}
		h.feed(items...)
		states := h.statesOf(attrs.ReasonResumptionDegraded)
		assert.Equal(t, []string{"opened", "resolved"}, states)
	})
	t.Run("no edge data at all: the tick", func(t *testing.T) {
		e := newEngine(createDefaultConfig())
		for i := 1; i <= 8; i++ {
			ld := plog.NewLogs()
			edgeWin{at: time.Duration(i) * 15 * time.Second, service: "shop", node: "n1", hs: 50, failed: 25}.appendTo(ld)
			e.edgeWindow(recordOf(t, ld))
		}
		inc := e.incidents[fingerprint(attrs.ReasonHandshakeFailureRate, "shop", "edge")]
		require.NotNil(t, inc)
		require.True(t, inc.open())
		e.expire(t0.Add(10 * time.Minute)) // the windows aged out: unjudged from here
		e.expire(t0.Add(15*time.Minute + time.Second))
		assert.Equal(t, attrs.StateResolved, inc.State)
		assert.Equal(t, "unobserved", inc.Resolution)
	})
}

// recordOf extracts the one record of ld as the correlator does.
func recordOf(t *testing.T, ld plog.Logs) *record {
	t.Helper()
	rl := ld.ResourceLogs().At(0)
	r := extract(rl.Resource().Attributes(), rl.ScopeLogs().At(0).LogRecords().At(0))
	return &r
}

// statesOf lists the states of reason's incident transitions, in order.
func (h *harness) statesOf(reason attrs.Reason) []string {
	var out []string
	for _, x := range h.incidents() {
		if x.reason == string(reason) {
			out = append(out, x.state)
		}
	}
	return out
}
