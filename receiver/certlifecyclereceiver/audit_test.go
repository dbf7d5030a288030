package certlifecyclereceiver

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/attrs"
	rec "github.com/certpulse/certpulse/internal/records"
)

// The remediation exporter's audit event, as rec.Audit writes it, comes
// back from this receiver's parse and records unchanged: the one audit
// contract holds end to end (the audit trail and the correlator read what
// the exporter wrote).
func TestAuditEventRoundTrip(t *testing.T) {
	now := time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.UTC)
	lim := limits{maxField: 512, maxList: 100, maxPEM: 32 << 10, maxClockSkew: 5 * time.Minute}
	long := make([]byte, 3000)
	for i := range long {
		long[i] = 'x'
	}
	cases := []rec.Audit{
		{Time: now, Outcome: attrs.OutcomeSent, Service: "pay", Environment: "prod", IncidentID: "inc-1",
			Key: "inc-1:reissue:1", Attestation: "v1=abc", ID: "executed/p/reissue/1/1", Message: "executed reissue: ok"},
		{Time: now, Outcome: attrs.OutcomeBrakeEngaged, Service: rec.AuditSource, ID: "brake/1", Message: "brake"},
		{Time: now, Outcome: attrs.OutcomeInconclusive, Service: "pay", IncidentID: "inc-2", ID: "x/2", Message: string(long)},
	}
	for _, in := range cases {
		body, err := in.Event()
		require.NoError(t, err)
		h := http.Header{}
		h.Set("Content-Type", "application/json")
		events, perr := parseRequest(h, body, lim, 10, now)
		require.Nil(t, perr, "%+v", perr)
		ld := buildLogs(events, make([]bool, len(events)), now)
		require.Equal(t, 1, ld.LogRecordCount())
		rl := ld.ResourceLogs().At(0)
		out, err := rec.DecodeAudit(rl.Resource().Attributes(), rl.ScopeLogs().At(0).LogRecords().At(0))
		require.NoError(t, err)
		want := in
		if len(want.Message) > 2000 {
			want.Message = want.Message[:2000]
		}
		assert.True(t, want.Time.Equal(out.Time), "time %v != %v", out.Time, want.Time)
		out.Time = want.Time
		assert.Equal(t, want, out)
	}
}

func TestAuditEventRejectsUnknownOutcome(t *testing.T) {
	a := rec.Audit{Time: time.Now(), Outcome: "fixed-ish", Service: "pay", ID: "1"}
	_, err := a.Event()
	require.ErrorContains(t, err, "unknown outcome")
}
