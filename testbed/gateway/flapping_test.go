package gateway

import (
	"context"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/certpulse/certpulse/exporter/remediationexporter"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/logtest"
	"github.com/certpulse/certpulse/processor/tlscorrelator"
)

// tee hands every batch to the remediation exporter and keeps a copy.
type tee struct {
	next consumer.Logs
	mu   sync.Mutex
	recs []logtest.Record
}

func (t *tee) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (t *tee) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	cp := plog.NewLogs()
	ld.CopyTo(cp)
	t.mu.Lock()
	t.recs = append(t.recs, logtest.Records(cp)...)
	t.mu.Unlock()
	return t.next.ConsumeLogs(ctx, ld)
}

// TestFlappingEndpointNoRemediationLoop: an endpoint healthy and broken on
// alternate probes for 30 minutes of event time (a probe every 30 s),
// through the real correlator into the real remediation exporter with a
// short cooldown: one incident, its flaps counted, and at most
// max_attempts webhook calls.
func TestFlappingEndpointNoRemediationLoop(t *testing.T) {
	var mu sync.Mutex
	calls := 0
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		mu.Lock()
		calls++
		mu.Unlock()
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	ctx := context.Background()

	rf := remediationexporter.NewFactory()
	rcfg := rf.CreateDefaultConfig().(*remediationexporter.Config)
	rcfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	rcfg.Guardrails.Cooldown = 50 * time.Millisecond // wall clock: the 30 minutes are replayed in seconds
	rcfg.Guardrails.MaxAttempts = 3
	verify := false
	rcfg.Policies = []remediationexporter.PolicyConfig{{Name: "reload", Reasons: []string{string(attrs.ReasonExpiredLeaf)}, Verify: &verify,
		Actions: []remediationexporter.ActionConfig{{Name: "reload", Type: "webhook", Operation: "reload", URL: hook.URL, HMACSecret: actionHMAC}}}}
	require.NoError(t, rcfg.Validate())
	exp, err := rf.CreateLogs(ctx, exportertest.NewNopSettings(rf.Type()), rcfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(ctx, componenttest.NewNopHost()))
	defer func() { _ = exp.Shutdown(ctx) }()
	out := &tee{next: exp}

	cf := tlscorrelator.NewFactory()
	ccfg := cf.CreateDefaultConfig()
	proc, err := cf.CreateLogs(ctx, processortest.NewNopSettings(cf.Type()), ccfg, out)
	require.NoError(t, err)
	require.NoError(t, proc.Start(ctx, componenttest.NewNopHost()))
	defer func() { _ = proc.Shutdown(ctx) }()

	t0 := time.Now().Add(-31 * time.Minute)
	for i := 0; i < 60; i++ {
		reason := attrs.ReasonExpiredLeaf
		if i%2 == 1 {
			reason = attrs.ReasonOK
		}
		ld := plog.NewLogs()
		rl := ld.ResourceLogs().AppendEmpty()
		rl.Resource().Attributes().PutStr(attrs.ServiceName, "flappy")
		rl.Resource().Attributes().PutStr(attrs.Vantage, "v1")
		lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
		lr.SetEventName(attrs.EventProbeResult)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(t0.Add(time.Duration(i) * 30 * time.Second)))
		a := lr.Attributes()
		a.PutStr(attrs.ServerAddress, "flappy.example.com")
		a.PutInt(attrs.ServerPort, 443)
		a.PutStr(attrs.ClientProfile, "default")
		a.PutStr(attrs.ReasonKey, string(reason))
		a.PutStr(attrs.ChainSHA256, "cafe")
		a.PutStr(attrs.TLSServerHash, "CAFE")
		a.PutStr(attrs.SPKISHA256, "c2Fmzq==")
		require.NoError(t, proc.ConsumeLogs(ctx, ld))
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)

	out.mu.Lock()
	ids := map[string]bool{}
	states := map[string]int{}
	flaps := int64(0)
	for _, r := range out.recs {
		if r.EventName() != attrs.EventIncident {
			continue
		}
		ids[r.Attr(attrs.IncidentID)] = true
		states[r.Attr(attrs.IncidentState)]++
		if v, ok := r.Attributes().Get(attrs.IncidentFlaps); ok && v.Int() > flaps {
			flaps = v.Int()
		}
	}
	out.mu.Unlock()
	mu.Lock()
	n := calls
	mu.Unlock()
	t.Logf("30 min of flapping (60 probes): incidents %d, transitions %v, flaps counted %d, webhook calls %d (max_attempts 3)", len(ids), states, flaps, n)
	require.Len(t, ids, 1, "one incident")
	require.LessOrEqual(t, n, 3, "no remediation loop")
	require.Positive(t, flaps, "flaps counted")
}
