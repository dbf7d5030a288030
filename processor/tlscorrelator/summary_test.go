package tlscorrelator

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
)

// TestOpenIncidentsSnapshot: the periodic snapshot counts the open
// incidents by group (with the remediation state), and a group that closed
// gets a 0 once.
func TestOpenIncidentsSnapshot(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.CheckpointInterval = 50 * time.Millisecond
	cfg.OpenIncidentsInterval = 100 * time.Millisecond
	h := newHarness(t, cfg)
	now := time.Since(t0)
	fail := func(at time.Duration, svc string) probe {
		return probe{at: now + at, service: svc, server: svc + ".example.com", vantage: "v1", reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA}
	}
	h.feed(fail(0, "api"), fail(0, "web"))
	snapshot := func() map[string]string {
		out := map[string]string{}
		for _, ld := range h.sink.AllLogs() {
			for _, r := range logtest.Named(logtest.Records(ld), attrs.EventOpenIncidents) {
				svc, _ := r.Resource.Attributes().Get(attrs.ServiceName)
				out[svc.Str()+"/"+r.Attr(attrs.IncidentRemediation)] = r.Attr(attrs.OpenIncidents)
			}
		}
		return out
	}
	require.Eventually(t, func() bool { s := snapshot(); return s["api/none"] == "1" && s["web/none"] == "1" }, 5*time.Second, 20*time.Millisecond, "%v", snapshot())
	// api recovers (resolve_after healthy results): its group drops to 0.
	for i := 1; i <= 3; i++ {
		p := fail(time.Duration(i)*time.Second, "api")
		p.reason = attrs.ReasonOK
		h.feed(p)
	}
	require.Eventually(t, func() bool { s := snapshot(); return s["api/none"] == "0" && s["web/none"] == "1" }, 5*time.Second, 20*time.Millisecond, "%v", snapshot())

	// The brake, from the remediation exporter's audit events.
	brake := func() string {
		v := ""
		for _, ld := range h.sink.AllLogs() {
			for _, r := range logtest.Named(logtest.Records(ld), attrs.EventRemediationBrake) {
				v = r.Attr(attrs.RemediationBrake)
			}
		}
		return v
	}
	h.feed(event{at: now + 5*time.Second, typ: attrs.LifecycleRemediation, service: "certpulse-remediation", stage: "brake_engaged"})
	require.Eventually(t, func() bool { return brake() == "1" }, 5*time.Second, 20*time.Millisecond)
	h.feed(event{at: now + 6*time.Second, typ: attrs.LifecycleRemediation, service: "certpulse-remediation", stage: "brake_released"})
	require.Eventually(t, func() bool { return brake() == "0" }, 5*time.Second, 20*time.Millisecond)
}
