package records

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// full is an incident with every field set, at the precision the record
// keeps (OpenedAt and NotAfter to the second).
func full() Incident {
	t0 := time.Date(2026, 12, 2, 10, 2, 7, 0, time.UTC)
	return Incident{
		ID: "a1b2c3", State: attrs.StateResolved, PrevState: attrs.StateEscalated, Severity: attrs.SeverityPage,
		Reason: attrs.ReasonMissingIntermediate, ReasonSide: attrs.SideServer, ProbeReason: attrs.ReasonMissingIntermediate,
		Service: "checkout", Environment: "prod", Owner: "payments", Criticality: "high", Region: "eu-west-1",
		Impact: 0.75, Endpoints: []string{"a.example:443", "b.example:443"}, Targets: []string{"a.example@10.0.0.1:443"},
		Vantages: []string{"node-1", "node-2"}, Profiles: []string{"default", "openssl"},
		Summary: "[page] resolved missing_intermediate on checkout", Recurring: true, Flaps: 3, Corroborated: true,
		SuppressedBy: "maintenance", Failures: 12, JobID: "deploy-7", Artifact: "v1.2.3",
		Time: t0.Add(5 * time.Minute), Observed: t0.Add(5*time.Minute + time.Millisecond),
		OpenedAt: t0.Add(30 * time.Second), Resolution: "healthy",
		FaultAt: t0.Add(123 * time.Millisecond), ActedAt: t0.Add(40 * time.Second), FixedAt: t0.Add(90 * time.Second), ResolvedAt: t0.Add(5 * time.Minute),
		LastGoodChain: "c0ffee", LastGoodSPKI: "spki-old", Chain: "chain", LeafHash: "leaf", SPKI: "spki", NotAfter: t0.Add(90 * 24 * time.Hour),
		EdgeShare: 0.25, EdgeHandshakes: 400, EdgeNodes: []string{"edge-1"},
	}
}

func roundTrip(t *testing.T, in Incident) Incident {
	t.Helper()
	ld := plog.NewLogs()
	AppendIncident(ld, "scope", &in)
	out, bad := DecodeIncidents(ld)
	require.Empty(t, bad)
	require.Len(t, out, 1)
	return out[0]
}

func TestIncidentRoundTrip(t *testing.T) {
	minimal := Incident{ID: "x", State: attrs.StateOpened, Severity: attrs.SeverityTicket, Reason: attrs.ReasonExpiredLeaf, Service: "s", Time: time.Unix(1, 0).UTC()}
	for name, in := range map[string]Incident{"full": full(), "minimal": minimal} {
		t.Run(name, func(t *testing.T) {
			out := roundTrip(t, in)
			// Times come back in UTC and compare by instant.
			assert.Equal(t, in, out)
		})
	}
}

func TestAppendIncidentWire(t *testing.T) {
	in := full()
	ld := plog.NewLogs()
	AppendIncident(ld, "scope", &in)
	rl := ld.ResourceLogs().At(0)
	res := rl.Resource().Attributes()
	for k, want := range map[string]string{attrs.ServiceName: "checkout", attrs.DeploymentEnv: "prod", attrs.Severity: "page", attrs.CloudRegion: "eu-west-1"} {
		v, ok := res.Get(k)
		require.True(t, ok, k)
		assert.Equal(t, want, v.AsString(), k)
	}
	lr := rl.ScopeLogs().At(0).LogRecords().At(0)
	assert.Equal(t, "scope", rl.ScopeLogs().At(0).Scope().Name())
	assert.Equal(t, plog.SeverityNumberInfo, lr.SeverityNumber(), "a resolution is info")
	a := lr.Attributes()
	str := func(k string) string { v, _ := a.Get(k); return v.AsString() }
	num := func(k string) float64 { v, _ := a.Get(k); return v.Double() }
	assert.Equal(t, "2026-12-02T10:02:37Z", str(attrs.IncidentOpenedAt), "opened_at to the second")
	assert.Equal(t, "2026-12-02T10:02:07.123Z", str(attrs.IncidentFaultAt), "the timeline to the nanosecond")
	assert.InDelta(t, 29.877, num(attrs.IncidentTimeToDetect), 1e-9)
	assert.InDelta(t, 10.0, num(attrs.IncidentTimeToAct), 1e-9)
	assert.InDelta(t, 89.877, num(attrs.IncidentTimeToFix), 1e-9)
	v, _ := a.Get(attrs.IncidentEndpointCount)
	assert.EqualValues(t, 2, v.Int())
	v, _ = a.Get(attrs.IncidentAutomated)
	assert.True(t, v.Bool())

	// Severity numbers by tier while open.
	for sev, want := range map[attrs.SeverityLevel]plog.SeverityNumber{attrs.SeverityPage: plog.SeverityNumberFatal, attrs.SeverityAlert: plog.SeverityNumberError, attrs.SeverityTicket: plog.SeverityNumberWarn, attrs.SeverityInfo: plog.SeverityNumberWarn} {
		in := Incident{ID: "x", State: attrs.StateOpened, Severity: sev, Service: "s"}
		ld := plog.NewLogs()
		AppendIncident(ld, "scope", &in)
		assert.Equal(t, want, ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).SeverityNumber(), sev)
	}
}

func TestDurations(t *testing.T) {
	t0 := time.Unix(1000, 0)
	for _, c := range []struct {
		name                string
		inc                 Incident
		detect, act, fix    time.Duration
		okDet, okAct, okFix bool
	}{
		{"open: none", Incident{State: attrs.StateOpened, FaultAt: t0, OpenedAt: t0}, 0, 0, 0, false, false, false},
		{"resolved without a fault time", Incident{State: attrs.StateResolved, OpenedAt: t0}, 0, 0, 0, false, false, false},
		{"expired: no fix", Incident{State: attrs.StateResolved, FaultAt: t0, OpenedAt: t0.Add(time.Second), Resolution: "expired"}, time.Second, 0, 0, true, false, false},
		{"fixed by hand: resolved time", Incident{State: attrs.StateResolved, FaultAt: t0, OpenedAt: t0.Add(time.Second), ResolvedAt: t0.Add(time.Minute), Resolution: "healthy"}, time.Second, 0, time.Minute, true, false, true},
		{"acted and fixed", Incident{State: attrs.StateResolved, FaultAt: t0, OpenedAt: t0.Add(time.Second), ActedAt: t0.Add(3 * time.Second), FixedAt: t0.Add(9 * time.Second), ResolvedAt: t0.Add(time.Minute), Resolution: "healthy"}, time.Second, 2 * time.Second, 9 * time.Second, true, true, true},
		{"clock skew clamps to 0", Incident{State: attrs.StateResolved, FaultAt: t0.Add(time.Second), OpenedAt: t0, Resolution: "healthy", ResolvedAt: t0}, 0, 0, 0, true, false, true},
	} {
		t.Run(c.name, func(t *testing.T) {
			d, a, f, od, oa, of := c.inc.Durations()
			assert.Equal(t, []any{c.detect, c.act, c.fix, c.okDet, c.okAct, c.okFix}, []any{d, a, f, od, oa, of})
		})
	}
}

func TestDecodeIncidentErrors(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(a pcommon.Map)
		want string
	}{
		{"no id", func(a pcommon.Map) { a.Remove(attrs.IncidentID) }, "certpulse.incident.id missing"},
		{"unknown state", func(a pcommon.Map) { a.PutStr(attrs.IncidentState, "exploded") }, `unknown state "exploded"`},
		{"unknown previous state", func(a pcommon.Map) { a.PutStr(attrs.IncidentPrevState, "x") }, `unknown state "x"`},
		{"unknown severity", func(a pcommon.Map) { a.PutStr(attrs.Severity, "sev1") }, `unknown severity "sev1"`},
		{"endpoints not a list", func(a pcommon.Map) { a.PutStr(attrs.IncidentEndpoints, "a:443") }, "not a list"},
		{"impact not a number", func(a pcommon.Map) { a.PutStr(attrs.Impact, "high") }, "not a number"},
		{"bad time", func(a pcommon.Map) { a.PutStr(attrs.IncidentOpenedAt, "yesterday") }, "not an RFC 3339 time"},
		{"flaps not an integer", func(a pcommon.Map) { a.PutDouble(attrs.IncidentFlaps, 1.5) }, "not an integer"},
		{"recurring not a bool", func(a pcommon.Map) { a.PutStr(attrs.IncidentRecurring, "yes") }, "not a bool"},
	} {
		t.Run(c.name, func(t *testing.T) {
			in := full()
			ld := plog.NewLogs()
			AppendIncident(ld, "scope", &in)
			c.edit(ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes())
			out, bad := DecodeIncidents(ld)
			assert.Empty(t, out)
			require.Len(t, bad, 1)
			assert.ErrorContains(t, bad[0], c.want)
		})
	}
	// Other records are not incident records, and not errors.
	ld := plog.NewLogs()
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().SetEventName(attrs.EventProbeResult)
	out, bad := DecodeIncidents(ld)
	assert.Empty(t, out)
	assert.Empty(t, bad)
}

// A gateway layout may move routing keys from the resource to the record.
func TestDecodeIncidentRoutingKeysOnRecord(t *testing.T) {
	in := full()
	ld := plog.NewLogs()
	AppendIncident(ld, "scope", &in)
	rl := ld.ResourceLogs().At(0)
	rec := rl.ScopeLogs().At(0).LogRecords().At(0).Attributes()
	rl.Resource().Attributes().Range(func(k string, v pcommon.Value) bool {
		if k != attrs.Severity {
			v.CopyTo(rec.PutEmpty(k))
		}
		return true
	})
	rl.Resource().Attributes().Clear()
	out, bad := DecodeIncidents(ld)
	require.Empty(t, bad)
	assert.Equal(t, in, out[0])
}
