package tlscorrelator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/attrs"
)

// lastResolution returns the resolution of the last resolved transition.
func (h *harness) lastResolution() string {
	res := ""
	for _, r := range logtestRecords(h.sink) {
		if r.EventName() == attrs.EventIncident && attrs.State(r.Attr(attrs.IncidentState)) == attrs.StateResolved {
			res = r.Attr(attrs.IncidentResolution)
		}
	}
	return res
}

// TestNodesIncidentsEndWhenTheNodeSetChanges: with `nodes: all`, an
// incident on an endpoint that is no longer probed because the name's node
// set changed resolves within a round, instead of waiting 24 h for the idle
// expiry: the node-less endpoint of a failed resolution once the name
// resolves again, and a failing node once it has left DNS.
func TestNodesIncidentsEndWhenTheNodeSetChanges(t *testing.T) {
	p := func(at time.Duration, vantage, node string, reason attrs.Reason) probe {
		return probe{at: at, service: "api", server: "a.example.com", vantage: vantage, node: node, reason: reason, chain: chainA, leaf: leafA, spki: spkiA}
	}
	t.Run("DNS recovers", func(t *testing.T) {
		h := newHarness(t, createDefaultConfig())
		var items []appender
		for i := 0; i < 3; i++ { // the name does not resolve, from both vantages
			items = append(items, p(time.Duration(i)*30*time.Second, "eu", "", attrs.ReasonDNSFailure), p(time.Duration(i)*30*time.Second, "us", "", attrs.ReasonDNSFailure))
		}
		h.feed(items...)
		require.Equal(t, "opened", h.incidents()[0].state, "a dns_failure incident on a.example.com:443")
		items = nil
		for i := 3; i < 5; i++ { // resolved again: every node healthy
			for _, v := range []string{"eu", "us"} {
				items = append(items, p(time.Duration(i)*30*time.Second, v, "10.0.0.1:443", attrs.ReasonOK), p(time.Duration(i)*30*time.Second, v, "10.0.0.2:443", attrs.ReasonOK))
			}
		}
		h.feed(items...)
		incs := h.incidents()
		assert.Equal(t, "resolved", incs[len(incs)-1].state, "the node-less endpoint is no longer probed: its incident ends")
	})
	t.Run("a failing node leaves DNS", func(t *testing.T) {
		h := newHarness(t, createDefaultConfig())
		var items []appender
		for i := 0; i < 3; i++ { // node 2 serves the wrong certificate
			at := time.Duration(i) * 30 * time.Second
			items = append(items, p(at, "eu", "10.0.0.1:443", attrs.ReasonOK), p(at, "eu", "10.0.0.2:443", attrs.ReasonHostnameMismatch))
		}
		h.feed(items...)
		require.Equal(t, "opened", h.incidents()[0].state)
		// The usual fix: node 2 is taken out of DNS; node 1 goes on.
		h.feed(p(90*time.Second, "eu", "10.0.0.1:443", attrs.ReasonOK), p(120*time.Second, "eu", "10.0.0.1:443", attrs.ReasonOK))
		incs := h.incidents()
		assert.Equal(t, "resolved", incs[len(incs)-1].state, "node 2 left the name: its incident ends")
		assert.Equal(t, "retired", h.lastResolution(), "recorded as retired, not healthy")
	})
	t.Run("a node that only missed a round is not retired", func(t *testing.T) {
		h := newHarness(t, createDefaultConfig())
		h.feed(p(0, "eu", "10.0.0.1:443", attrs.ReasonOK), p(0, "eu", "10.0.0.2:443", attrs.ReasonHostnameMismatch),
			p(30*time.Second, "eu", "10.0.0.1:443", attrs.ReasonOK), p(30*time.Second, "eu", "10.0.0.2:443", attrs.ReasonHostnameMismatch),
			p(60*time.Second, "eu", "10.0.0.1:443", attrs.ReasonOK)) // node 2's result of this round is late
		for _, i := range h.incidents() {
			assert.NotEqual(t, "resolved", i.state)
		}
	})
}
