package tlscorrelator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/certpulse/certpulse/internal/attrs"
)

// incidentAttrs returns the attributes of every incident record, in order
// (of one reason, when given).
func (h *harness) incidentAttrs(reason ...attrs.Reason) []pcommon.Map {
	var out []pcommon.Map
	for _, ld := range h.sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				for k := 0; k < sls.At(j).LogRecords().Len(); k++ {
					lr := sls.At(j).LogRecords().At(k)
					if lr.EventName() == attrs.EventIncident && (len(reason) == 0 || attrStr(lr.Attributes(), attrs.ReasonKey) == string(reason[0])) {
						out = append(out, lr.Attributes())
					}
				}
			}
		}
	}
	return out
}

func attrStr(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

// TestIncidentTimeline: the incident record carries the fault's start, the
// first action sent, fixed (the first healthy result on every endpoint
// after it, announced at once as an update) and the durations on its
// resolution; and what was served when last healthy.
func TestIncidentTimeline(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	p := func(at time.Duration, v string, r attrs.Reason, chain string) probe {
		return probe{at: at, service: "api", server: "a.example.com", vantage: v, reason: r, chain: chain, leaf: leafA, spki: spkiA}
	}
	h.feed(p(0, "eu", attrs.ReasonOK, chainA), p(time.Second, "us", attrs.ReasonOK, chainA),
		p(30*time.Second, "eu", attrs.ReasonMissingIntermediate, chainB))
	recs := h.incidentAttrs(attrs.ReasonMissingIntermediate)
	require.Len(t, recs, 1)
	opened := recs[0]
	assert.Equal(t, attrs.StateOpened, attrs.State(attrStr(opened, attrs.IncidentState)))
	assert.Equal(t, t0.Add(30*time.Second).Format(time.RFC3339Nano), attrStr(opened, attrs.IncidentFaultAt))
	assert.Equal(t, chainA, attrStr(opened, attrs.EnrichLastGoodChain), "the chain served when last healthy")
	assert.Equal(t, spkiA, attrStr(opened, attrs.EnrichLastGoodSPKI))
	id := attrStr(opened, attrs.IncidentID)

	// Another vantage fails too; then the exporter acts.
	h.feed(p(31*time.Second, "us", attrs.ReasonMissingIntermediate, chainB),
		event{at: 40 * time.Second, typ: "remediation", service: "api", incident: id, stage: "sent", job: id + ":rollback:1"})
	// One vantage healthy is not fixed; both are.
	h.feed(p(45*time.Second, "eu", attrs.ReasonOK, chainA))
	n := len(h.incidentAttrs(attrs.ReasonMissingIntermediate))
	h.feed(p(46*time.Second, "us", attrs.ReasonOK, chainA))
	recs = h.incidentAttrs(attrs.ReasonMissingIntermediate)
	require.Len(t, recs, n+1, "fixed is announced at once")
	fixed := recs[len(recs)-1]
	assert.Equal(t, attrs.StateUpdated, attrs.State(attrStr(fixed, attrs.IncidentState)))
	assert.Equal(t, t0.Add(46*time.Second).Format(time.RFC3339Nano), attrStr(fixed, attrs.IncidentFixedAt))
	assert.Equal(t, t0.Add(40*time.Second).Format(time.RFC3339Nano), attrStr(fixed, attrs.IncidentActedAt))

	for i := 2; i <= 3; i++ {
		at := time.Duration(45+30*i) * time.Second
		h.feed(p(at, "eu", attrs.ReasonOK, chainA), p(at+time.Second, "us", attrs.ReasonOK, chainA))
	}
	recs = h.incidentAttrs(attrs.ReasonMissingIntermediate)
	res := recs[len(recs)-1]
	require.Equal(t, attrs.StateResolved, attrs.State(attrStr(res, attrs.IncidentState)))
	ttd, _ := res.Get(attrs.IncidentTimeToDetect)
	tta, _ := res.Get(attrs.IncidentTimeToAct)
	ttf, _ := res.Get(attrs.IncidentTimeToFix)
	auto, _ := res.Get(attrs.IncidentAutomated)
	assert.Equal(t, 0.0, ttd.Double(), "opened at the first failure (certificate faults need no corroboration)")
	assert.Equal(t, 10.0, tta.Double())
	assert.Equal(t, 16.0, ttf.Double(), "fault at 30s, fixed at 46s")
	assert.True(t, auto.Bool())
	assert.NotEmpty(t, attrStr(res, attrs.IncidentResolvedAt))
}

// A failure after fixed means the fix did not hold: fixed starts over, and
// without an action nothing is announced early.
func TestFixedStartsOverOnFailure(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	p := func(at time.Duration, r attrs.Reason) probe {
		return probe{at: at, service: "api", server: "a.example.com", vantage: "eu", reason: r, chain: chainA, leaf: leafA, spki: spkiA}
	}
	h.feed(p(0, attrs.ReasonExpiredLeaf), p(30*time.Second, attrs.ReasonOK))
	assert.Len(t, h.incidentAttrs(), 1, "no action: no early announcement")
	h.feed(p(60*time.Second, attrs.ReasonExpiredLeaf))
	for i := 3; i <= 5; i++ {
		h.feed(p(time.Duration(30*i)*time.Second, attrs.ReasonOK))
	}
	recs := h.incidentAttrs()
	res := recs[len(recs)-1]
	require.Equal(t, attrs.StateResolved, attrs.State(attrStr(res, attrs.IncidentState)))
	assert.Equal(t, t0.Add(90*time.Second).Format(time.RFC3339Nano), attrStr(res, attrs.IncidentFixedAt))
	ttf, _ := res.Get(attrs.IncidentTimeToFix)
	assert.Equal(t, 90.0, ttf.Double())
	_, acted := res.Get(attrs.IncidentTimeToAct)
	assert.False(t, acted)
	auto, _ := res.Get(attrs.IncidentAutomated)
	assert.False(t, auto.Bool())
}
