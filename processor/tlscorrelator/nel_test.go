package tlscorrelator

import (
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/trigger"
)

// nelRep is a NEL report record as the nel receiver emits it.
type nelRep struct {
	at              time.Duration
	service, typ    string
	reason          attrs.Reason
	family, version string
}

func (n nelRep) appendTo(ld plog.Logs) {
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(attrs.ServiceName, n.service)
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(attrs.EventNELReport)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(n.at)))
	a := lr.Attributes()
	a.PutStr(attrs.NELType, n.typ)
	a.PutStr(attrs.ServerAddress, "shop.example.com")
	if n.reason != "" {
		a.PutStr(attrs.ReasonKey, string(n.reason))
	}
	a.PutStr(attrs.UserAgentName, n.family)
	a.PutStr(attrs.UserAgentVersion, n.version)
}

func dateInvalid(at time.Duration, family, version string) nelRep {
	return nelRep{at: at, service: "shop", typ: "tls.cert.date_invalid", reason: attrs.ReasonExpiredLeaf, family: family, version: version}
}

func TestJudgeNEL(t *testing.T) {
	cfg := NELConfig{Window: 5 * time.Minute, MinReports: 3}
	for _, tc := range []struct {
		name             string
		hits             []nelHit
		failing          bool
		clients, summary string
	}{
		{"none", nil, false, "", ""},
		{"two: below min_reports", []nelHit{{Type: "tls.cert.date_invalid", Client: "chrome 156", N: 2}}, false, "chrome", "tls.cert.date_invalid 2 (chrome 156)"},
		{"three", []nelHit{{Type: "tls.cert.date_invalid", Client: "chrome 156", N: 2}, {Type: "tls.cert.date_invalid", Client: "firefox 128", N: 1}}, true,
			"chrome,firefox", "tls.cert.date_invalid 3 (chrome 156, firefox 128)"},
		{"types by count", []nelHit{{Type: "tcp.reset", Client: "chrome 120", N: 1}, {Type: "tls.cert.authority_invalid", Client: "safari 17", N: 4}}, true,
			"chrome,safari", "tls.cert.authority_invalid 4 (safari 17), tcp.reset 1 (chrome 120)"},
	} {
		v := judgeNEL(tc.hits, cfg)
		assert.Equal(t, tc.failing, v.failing, tc.name)
		assert.Equal(t, tc.clients, v.clients, tc.name)
		assert.Equal(t, tc.summary, v.summary, tc.name)
	}
}

func TestAddNELHit(t *testing.T) {
	var hits []nelHit
	for i := int64(0); i < 5; i++ {
		hits = addNELHit(hits, nelHit{First: 100 + i*10, Last: 100 + i*10, Type: "tls.failed", Client: "chrome 1", N: 1}, 30)
	}
	require.Len(t, hits, 2, "grouped by span of the bucket")
	assert.Equal(t, int64(3), hits[0].N)
	hits = addNELHit(hits, nelHit{First: 150, Last: 150, Type: "tls.failed", Client: "firefox 1", N: 1}, 30)
	assert.Len(t, hits, 3, "another client is another group")
	for i := 0; i < 2*maxNELHits; i++ {
		hits = addNELHit(hits, nelHit{First: int64(1000 + i*100), Last: int64(1000 + i*100), Type: "tls.failed", N: 1}, 30)
	}
	assert.Len(t, hits, maxNELHits, "bounded")
}

func TestMergeClients(t *testing.T) {
	assert.Equal(t, "chrome,firefox,java", mergeClients("firefox,java", "chrome,java"))
	assert.Equal(t, "chrome", mergeClients("", "chrome"))
	assert.Equal(t, "", mergeClients("", ""))
}

// TestNELOpensIncident: three failure reports of real browsers open one
// handshake_failure_rate incident naming the browsers, the service's probes
// are triggered once, the triggered probe's reason joins it at once and the
// probe's incident then takes it in (one incident: the NEL one resolves as
// joined, the probe's carries the clients failing and the reports).
func TestNELOpensIncident(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Trigger = &triggerID
	host := newHubHost()
	h := newHarnessWithHost(t, cfg, host)
	h.feed(dateInvalid(time.Second, "chrome", "156"), dateInvalid(2*time.Second, "chrome", "156"),
		nelRep{at: 2 * time.Second, service: "shop", typ: "ok", reason: attrs.ReasonOK, family: "chrome", version: "156"},
		nelRep{at: 2 * time.Second, service: "shop", typ: "http.error", family: "chrome", version: "156"})
	assert.Empty(t, h.incidents(), "two failures (and a success, an HTTP error) are below min_reports")
	h.feed(dateInvalid(3*time.Second, "firefox", "128"))
	got := h.incidents()
	require.Len(t, got, 1)
	assert.Equal(t, "opened", got[0].state)
	assert.Equal(t, string(attrs.ReasonHandshakeFailureRate), got[0].reason)
	a := h.incidentAttrs()[0]
	assert.Equal(t, "chrome,firefox", attrStr(a, attrs.ClientsFailing))
	assert.Equal(t, "3", attrStr(a, attrs.IncidentUserReports))
	assert.Contains(t, summaryOf(t, h, got[0].id), "real browsers reported 3 failed requests in the last 5m0s: tls.cert.date_invalid 3 (chrome 156, firefox 128)")
	assert.Equal(t, []trigger.Event{{Type: trigger.EdgeFailures, Service: "shop"}}, host.fired())
	assert.Positive(t, got[0].impact)
	nelID := got[0].id

	h.feed(dateInvalid(4*time.Second, "chrome", "156"))
	assert.Len(t, host.fired(), 1, "one trigger per episode")

	// The triggered probe: expired. Its incident opens at once and takes
	// the NEL incident in.
	h.feed(probe{at: 5 * time.Second, service: "shop", server: "shop.example.com", vantage: "v1", reason: attrs.ReasonExpiredLeaf, chain: chainB, leaf: leafB, spki: spkiB})
	var nel, probeInc []map[string]string
	for _, a := range h.incidentAttrs() {
		m := map[string]string{}
		a.Range(func(k string, v pcommon.Value) bool { m[k] = v.AsString(); return true })
		if m[attrs.IncidentID] == nelID {
			nel = append(nel, m)
		} else {
			probeInc = append(probeInc, m)
		}
	}
	require.NotEmpty(t, nel)
	last := nel[len(nel)-1]
	assert.Equal(t, "resolved", last[attrs.IncidentState])
	assert.Equal(t, "joined", last[attrs.IncidentResolution])
	var carried bool
	for _, m := range probeInc {
		if m[attrs.ReasonKey] == string(attrs.ReasonExpiredLeaf) && m[attrs.ClientsFailing] == "chrome,firefox" && m[attrs.IncidentUserReports] == "4" {
			carried = true
		}
	}
	assert.True(t, carried, "the probe's incident carries the browsers: %v", probeInc)

	// More reports: they update the probe's incident, no new one.
	before := len(h.incidents())
	for i := 0; i < 8; i++ {
		h.feed(dateInvalid(time.Duration(10+i)*time.Second, "safari", "17"))
	}
	for _, x := range h.incidents()[before:] {
		assert.NotEqual(t, nelID, x.id)
		assert.NotEqual(t, "opened", x.state)
	}
}

// TestNELResolvesUnobserved: no report for a whole window resolves it.
func TestNELResolvesUnobserved(t *testing.T) {
	e := newEngine(createDefaultConfig())
	for i := 1; i <= 3; i++ {
		ld := plog.NewLogs()
		dateInvalid(time.Duration(i)*time.Second, "chrome", "156").appendTo(ld)
		e.nelReport(recordOf(t, ld))
	}
	inc := e.incidents[fingerprint(attrs.ReasonHandshakeFailureRate, "shop", identityNEL)]
	require.NotNil(t, inc)
	require.True(t, inc.open())
	e.expire(t0.Add(4 * time.Minute))
	assert.True(t, inc.open(), "reports within the window")
	e.expire(t0.Add(6 * time.Minute))
	assert.Equal(t, attrs.StateResolved, inc.State)
	assert.Equal(t, "unobserved", inc.Resolution)
	assert.True(t, strings.HasPrefix(inc.Detail, "real browsers reported 3"))
}
