package tlscorrelator

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
)

// TestSplitKey: an endpoint key reads back into its parts, a service
// holding "|" included; nameKey drops the node.
func TestSplitKey(t *testing.T) {
	for _, tc := range []struct {
		name, key                      string
		service, ep, rest, nameK, node string
		ok                             bool
	}{
		{name: "plain", key: "shop|a.example.com:443|default|eu", service: "shop", ep: "a.example.com:443", rest: "default|eu", nameK: "shop|a.example.com:443|default|eu", ok: true},
		{name: "node", key: "shop|a.example.com:443@10.0.0.7|default|eu", service: "shop", ep: "a.example.com:443@10.0.0.7", rest: "default|eu", nameK: "shop|a.example.com:443|default|eu", node: "10.0.0.7", ok: true},
		{name: "service with |", key: "pay|ments|a.example.com:443|default|eu", service: "pay|ments", ep: "a.example.com:443", rest: "default|eu", nameK: "pay|ments|a.example.com:443|default|eu", ok: true},
		{name: "service with | and a node", key: "a|b|h:443@n@1|p|v", service: "a|b", ep: "h:443@n@1", rest: "p|v", nameK: "a|b|h:443|p|v", node: "n@1", ok: true},
		{name: "empty parts", key: "|h:443||", service: "", ep: "h:443", rest: "|", nameK: "|h:443||", ok: true},
		{name: "not a key", key: "shop|h:443", nameK: "shop|h:443"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			service, ep, rest, ok := splitKey(tc.key)
			require.Equal(t, tc.ok, ok)
			if ok {
				assert.Equal(t, []string{tc.service, tc.ep, tc.rest}, []string{service, ep, rest})
			}
			name, node := nameKey(tc.key)
			assert.Equal(t, tc.nameK, name)
			assert.Equal(t, tc.node, node)
		})
	}
}

// TestServiceWithBarExpires: an endpoint of a service named with "|" is
// forgotten by its own service when it expires (its leaf leaves the
// service's soonest expiry); before, the key was split at its first "|".
func TestServiceWithBarExpires(t *testing.T) {
	c, err := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
	require.NoError(t, err)
	ld := plog.NewLogs()
	na := t0.Add(30 * 24 * time.Hour)
	probe{service: "pay|ments", server: "a.example.com", vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA, notAfter: na}.appendTo(ld)
	probe{service: "pay|ments", server: "b.example.com", vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA, notAfter: na.Add(time.Hour)}.appendTo(ld)
	require.NoError(t, c.consumeLogs(context.Background(), ld))
	svc := c.eng.services["pay|ments"]
	require.NotNil(t, svc)
	require.Len(t, svc.Leaves, 2)
	// b is probed again, a is not: a expires.
	later := t0.Add(c.cfg.IdleTimeout - time.Minute)
	ld = plog.NewLogs()
	probe{at: later.Sub(t0), service: "pay|ments", server: "b.example.com", vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA, notAfter: na.Add(time.Hour)}.appendTo(ld)
	require.NoError(t, c.consumeLogs(context.Background(), ld))
	c.eng.expire(t0.Add(c.cfg.IdleTimeout + time.Minute))
	require.Len(t, c.eng.endpoints, 1)
	assert.Equal(t, map[string]int64{"b.example.com:443": na.Add(time.Hour).Unix()}, svc.Leaves, "the expired endpoint's leaf left its service")
}

// TestUnkeyableProbePassedOn: a probe record whose endpoint could not be
// read back from its key ("|" in its profile) is passed on, not
// correlated.
func TestUnkeyableProbePassedOn(t *testing.T) {
	sink := new(consumertest.LogsSink)
	c, err := newCorrelator(createDefaultConfig(), newSettings(), sink)
	require.NoError(t, err)
	ld := plog.NewLogs()
	probe{service: "shop", server: "a.example.com", vantage: "eu", profile: "x|y", chain: chainA, leaf: leafA, spki: spkiA}.appendTo(ld)
	require.NoError(t, c.consumeLogs(context.Background(), ld))
	assert.Empty(t, c.eng.endpoints)
	assert.Equal(t, 1, sink.LogRecordCount())
}
