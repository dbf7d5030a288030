package tlscorrelator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/attrs"
)

// TestNodePropagationLag: one vantage probes three nodes of a name; after a
// renewal, node c keeps serving the old chain. Past propagation_grace that
// is one propagation_lag incident naming c; the first node to get the new
// chain is an unexpected change (no lifecycle event says so), but c
// catching up is not; the incident resolves once c serves the new chain.
func TestNodePropagationLag(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.PropagationGrace = 2 * time.Minute
	h := newHarness(t, cfg)
	node := func(at time.Duration, n, chain, leaf, spki string, lag bool) probe {
		p := probe{at: at, service: "api", vantage: "v1", chain: chain, leaf: leaf, spki: spki, node: n}
		if lag {
			p.lagging, p.ref = true, chainB
		}
		return p
	}
	var items []appender
	for i := 0; i < 3; i++ { // before: all serve A
		at := time.Duration(i) * 30 * time.Second
		items = append(items, node(at, "a", chainA, leafA, spkiA, false), node(at, "b", chainA, leafA, spkiA, false), node(at, "c", chainA, leafA, spkiA, false))
	}
	// The renewal reaches a and b; c lags for 4 minutes.
	for i := 3; i < 12; i++ {
		at := time.Duration(i) * 30 * time.Second
		items = append(items, node(at, "a", chainB, leafB, spkiB, false), node(at, "b", chainB, leafB, spkiB, false), node(at, "c", chainA, leafA, spkiA, true))
	}
	h.feed(items...)
	var lag []inc
	for _, x := range h.incidents() {
		if x.reason == string(attrs.ReasonPropagationLag) {
			lag = append(lag, x)
		}
	}
	require.NotEmpty(t, lag, "%+v", h.incidents())
	require.Equal(t, attrs.StateOpened, attrs.State(lag[0].state))
	require.Equal(t, 1, lag[0].endpoints, "only c lags")
	// c catches up.
	items = nil
	for i := 12; i < 18; i++ {
		at := time.Duration(i) * 30 * time.Second
		items = append(items, node(at, "a", chainB, leafB, spkiB, false), node(at, "b", chainB, leafB, spkiB, false), node(at, "c", chainB, leafB, spkiB, false))
	}
	h.feed(items...)
	var resolved, unexpectedOnC bool
	for _, x := range h.incidents() {
		if x.reason == string(attrs.ReasonPropagationLag) && attrs.State(x.state) == attrs.StateResolved {
			resolved = true
		}
	}
	for _, x := range h.incidents() {
		if x.reason == string(attrs.ReasonUnexpectedCertChange) && x.endpoints > 2 {
			unexpectedOnC = true
		}
	}
	require.True(t, resolved, "%+v", h.incidents())
	require.False(t, unexpectedOnC, "c catching up is not an unexpected change: %+v", h.incidents())
}
