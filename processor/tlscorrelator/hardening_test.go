package tlscorrelator

import (
	"context"
	"errors"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/sdk/metric/metricdata"
	"go.opentelemetry.io/otel/sdk/metric/metricdata/metricdatatest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/processor/tlscorrelator/internal/metadatatest"
)

// TestFutureTimestampDoesNotBlind: a vantage whose clock runs 10 minutes
// ahead must not make every later record "late", nor lose its records:
// they are passed on marked certpulse.clock_ahead (and counted as future)
// without being correlated; records on time keep working, and the incident
// they open resolves on time.
func TestFutureTimestampDoesNotBlind(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	res := func(at time.Duration, v string, reason attrs.Reason) probe {
		return probe{at: at, service: "api", server: "a.example.com", vantage: v, reason: reason, chain: chainA, leaf: leafA, spki: spkiA}
	}
	// Ten minutes ahead of the wall clock, whatever t0 is.
	ahead := time.Now().Add(10 * time.Minute).Sub(t0)
	for i := 0; i < 10; i++ {
		at := time.Duration(i) * 30 * time.Second
		reason := attrs.ReasonExpiredLeaf
		if i >= 5 {
			reason = attrs.ReasonOK
		}
		ld := plog.NewLogs()
		res(ahead+at, "skewed", attrs.ReasonExpiredLeaf).appendTo(ld)
		require.NoError(t, h.proc.ConsumeLogs(context.Background(), ld))
		require.Equal(t, 1, ld.LogRecordCount(), "a record from the future is passed on")
		v, _ := ld.ResourceLogs().At(0).ScopeLogs().At(0).LogRecords().At(0).Attributes().Get(attrs.ClockAhead)
		require.True(t, v.Bool())
		h.feed(res(at, "eu", reason))
	}
	assert.Equal(t, []string{"opened/ticket", "resolved/ticket"}, states(h.incidents()), "the on-time vantage opens and resolves; the skewed one (still failing) is not correlated")
}

// flakyConsumer refuses the first `refuse` batches, then records like a sink.
type flakyConsumer struct {
	consumertest.LogsSink
	mu     sync.Mutex
	refuse int
}

func (f *flakyConsumer) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	f.mu.Lock()
	if f.refuse > 0 {
		f.refuse--
		f.mu.Unlock()
		return errors.New("queue full")
	}
	f.mu.Unlock()
	return f.LogsSink.ConsumeLogs(ctx, ld)
}

func startWith(t *testing.T, cfg *Config, next consumer.Logs, host component.Host) processor.Logs {
	t.Helper()
	require.NoError(t, cfg.Validate())
	p, err := NewFactory().CreateLogs(context.Background(), newSettings(), cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), host))
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })
	return p
}

func batchOf(items ...appender) plog.Logs {
	ld := plog.NewLogs()
	for _, it := range items {
		it.appendTo(ld)
	}
	return ld
}

func transitionsIn(sink *consumertest.LogsSink) []string {
	h := &harness{sink: sink}
	return states(h.incidents())
}

// TestRefusedTransitionIsReemitted: when the next consumer refuses the batch
// that carries an incident transition, the error goes back (so the records
// are retried) and the transition is announced with the next batch.
func TestRefusedTransitionIsReemitted(t *testing.T) {
	next := &flakyConsumer{refuse: 1}
	p := startWith(t, createDefaultConfig(), next, componenttest.NewNopHost())
	bad := probe{at: 0, service: "api", server: "a.example.com", vantage: "eu", reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA}
	require.Error(t, p.ConsumeLogs(context.Background(), batchOf(bad)), "the refusal is returned")
	other := probe{at: time.Second, service: "other", server: "b.example.com", vantage: "eu", chain: chainB, leaf: leafB, spki: spkiB}
	require.NoError(t, p.ConsumeLogs(context.Background(), batchOf(other)))
	assert.Equal(t, []string{"opened/ticket"}, transitionsIn(&next.LogsSink), "the refused transition is announced once, with the next batch")
	require.NoError(t, p.ConsumeLogs(context.Background(), batchOf(probe{at: 2 * time.Second, service: "other", server: "b.example.com", vantage: "eu", chain: chainB, leaf: leafB, spki: spkiB})))
	assert.Equal(t, []string{"opened/ticket"}, transitionsIn(&next.LogsSink), "and not again")
}

// TestRefusedTransitionIsReemittedOnTick: with no further batch, the
// checkpoint tick re-emits what was refused.
func TestRefusedTransitionIsReemittedOnTick(t *testing.T) {
	next := &flakyConsumer{refuse: 1}
	cfg := createDefaultConfig()
	cfg.CheckpointInterval = 50 * time.Millisecond
	p := startWith(t, cfg, next, componenttest.NewNopHost())
	bad := probe{at: 0, service: "api", server: "a.example.com", vantage: "eu", reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA}
	require.Error(t, p.ConsumeLogs(context.Background(), batchOf(bad)))
	require.Eventually(t, func() bool { return len(transitionsIn(&next.LogsSink)) == 1 }, 5*time.Second, 20*time.Millisecond)
}

// failingStorage is a storage extension whose client fails writes while
// `fail` is set: a full disk.
type failingStorage struct {
	component.StartFunc
	component.ShutdownFunc
	fail   *atomic.Bool
	client *failingClient
}

func (s *failingStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	s.client = &failingClient{memClient: memClient{m: map[string][]byte{}}, fail: s.fail}
	return s.client, nil
}

type failingClient struct {
	memClient
	fail *atomic.Bool
}

func (c *failingClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	if c.fail.Load() {
		for _, op := range ops {
			if op.Type == storage.Set {
				return errors.New("no space left on device")
			}
		}
	}
	return c.memClient.Batch(ctx, ops...)
}

// TestPersistFailureFailsBatch: a transition is never announced before it is
// persisted; when the write fails the batch fails (the queue before the
// processor retries it), and once storage works the transition goes out.
func TestPersistFailureFailsBatch(t *testing.T) {
	fail := &atomic.Bool{}
	fail.Store(true)
	id := component.MustNewID("file_storage")
	host := hosttest.With(map[component.ID]component.Component{id: &failingStorage{fail: fail}})
	cfg := createDefaultConfig()
	cfg.Storage = &id
	next := &flakyConsumer{}
	p := startWith(t, cfg, next, host)
	bad := probe{at: 0, service: "api", server: "a.example.com", vantage: "eu", reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA}
	err := p.ConsumeLogs(context.Background(), batchOf(bad))
	require.Error(t, err)
	assert.Contains(t, err.Error(), "no space left on device")
	assert.Empty(t, transitionsIn(&next.LogsSink), "nothing announced before it is persisted")
	fail.Store(false)
	require.NoError(t, p.ConsumeLogs(context.Background(), batchOf(bad)))
	assert.Equal(t, []string{"opened/ticket"}, transitionsIn(&next.LogsSink))
}

// TestExpiredIncidentResolves: an open incident whose endpoints send no data
// for idle_timeout is dropped from state with a `resolved` transition
// (resolution: expired), so tlscorrelator_incidents_open goes back to 0 and
// downstream alerts resolve. tlscorrelator_state_bytes is the last snapshot's
// size, not a running total.
func TestExpiredIncidentResolves(t *testing.T) {
	tt := componenttest.NewTelemetry()
	t.Cleanup(func() { _ = tt.Shutdown(context.Background()) })
	cfg := createDefaultConfig()
	cfg.CheckpointInterval = 20 * time.Millisecond
	cfg.IdleTimeout = 10 * time.Minute
	next := &flakyConsumer{}
	id := component.MustNewID("file_storage")
	mem := &failingStorage{fail: &atomic.Bool{}}
	host := hosttest.With(map[component.ID]component.Component{id: mem})
	cfg.Storage = &id
	p, err := NewFactory().CreateLogs(context.Background(), metadatatest.NewSettings(tt), cfg, next)
	require.NoError(t, err)
	require.NoError(t, p.Start(context.Background(), host))
	t.Cleanup(func() { _ = p.Shutdown(context.Background()) })

	bad := probe{at: 0, service: "api", server: "a.example.com", vantage: "eu", reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA}
	require.NoError(t, p.ConsumeLogs(context.Background(), batchOf(bad)))
	metadatatest.AssertEqualTlscorrelatorIncidentsOpen(t, tt, []metricdata.DataPoint[int64]{{Value: 1, Attributes: attribute.NewSet(attribute.String("reason", "expired_leaf"), attribute.String("service", "api"), attribute.String("severity", "ticket"))}}, metricdatatest.IgnoreTimestamp())
	// Time moves on (another service's records) past idle_timeout.
	later := probe{at: 2 * time.Hour, service: "other", server: "b.example.com", vantage: "eu", chain: chainB, leaf: leafB, spki: spkiB}
	require.NoError(t, p.ConsumeLogs(context.Background(), batchOf(later)))
	require.Eventually(t, func() bool { return len(transitionsIn(&next.LogsSink)) == 2 }, 5*time.Second, 10*time.Millisecond)
	assert.Equal(t, []string{"opened/ticket", "resolved/ticket"}, transitionsIn(&next.LogsSink))
	var resolution string
	for _, r := range logtest.Named(logtestRecords(&next.LogsSink), attrs.EventIncident) {
		if attrs.State(r.Attr(attrs.IncidentState)) == attrs.StateResolved {
			resolution = r.Attr(attrs.IncidentResolution)
		}
	}
	assert.Equal(t, "expired", resolution)
	metadatatest.AssertEqualTlscorrelatorIncidentsOpen(t, tt, []metricdata.DataPoint[int64]{{Value: 0, Attributes: attribute.NewSet(attribute.String("reason", "expired_leaf"), attribute.String("service", "api"), attribute.String("severity", "ticket"))}}, metricdatatest.IgnoreTimestamp())

	// state_bytes: the size of the persisted state, however many
	// checkpoints wrote it.
	require.NoError(t, p.Shutdown(context.Background())) // a last checkpoint
	stored := 0
	for _, v := range mem.client.m {
		stored += len(v)
	}
	m, err := tt.GetMetric("otelcol_tlscorrelator_state_bytes")
	require.NoError(t, err)
	assert.Equal(t, int64(stored), m.Data.(metricdata.Sum[int64]).DataPoints[0].Value, "state_bytes is the stored size, not a running total")
}

func logtestRecords(sink *consumertest.LogsSink) []logtest.Record {
	var out []logtest.Record
	for _, ld := range sink.AllLogs() {
		out = append(out, logtest.Records(ld)...)
	}
	return out
}

// TestRemediationHoldFollowsTheExportersSequence replays the remediation
// exporter's audit sequences (testbed/gateway's TestBrakeKeepsPagesFiring
// runs the real exporter in the loop): an action under way holds the
// incident through the Alertmanager post and the probes after it; a
// remediation a guardrail stops before anything matches starts no hold; one
// that matched and was stopped at the last moment (the budget spent) ends
// the hold it started; a decision superseded by another's keeps that one's.
func TestRemediationHoldFollowsTheExportersSequence(t *testing.T) {
	bad := func(at time.Duration) probe {
		return probe{at: at, service: "api", server: "a.example.com", vantage: "eu", reason: attrs.ReasonExpiredLeaf, chain: chainA, leaf: leafA, spki: spkiA}
	}
	rem := func(at time.Duration, id, stage, job string) event {
		return event{at: at, typ: "remediation", service: "api", incident: id, stage: stage, job: job}
	}
	cases := []struct {
		name  string
		audit func(id string) []appender
		want  []string
	}{
		{"action sent: held", func(id string) []appender {
			return []appender{rem(10*time.Second, id, "sent", ""), // the page
				rem(11*time.Second, id, "matched", ""), rem(12*time.Second, id, "verified", ""), rem(13*time.Second, id, "sent", id+":reload:1")}
		}, []string{"opened/ticket", "suppressed/ticket"}},
		{"brake engaged before: skipped alone, no hold", func(id string) []appender {
			return []appender{rem(10*time.Second, id, "sent", ""), rem(11*time.Second, id, "skipped", "")}
		}, []string{"opened/ticket"}},
		{"budget spent at the last moment: matched then skipped, the hold ends", func(id string) []appender {
			return []appender{rem(10*time.Second, id, "sent", ""), rem(11*time.Second, id, "matched", ""), rem(12*time.Second, id, "skipped", "")}
		}, []string{"opened/ticket"}},
		{"no approval server: skipped with its key, the hold ends", func(id string) []appender {
			return []appender{rem(11*time.Second, id, "matched", ""), rem(12*time.Second, id, "verified", ""), rem(13*time.Second, id, "skipped", id+":pin:1")}
		}, []string{"opened/ticket"}},
		{"a page that failed to post starts nothing", func(id string) []appender {
			return []appender{rem(10*time.Second, id, "failed", "")}
		}, []string{"opened/ticket"}},
		{"superseded: the other decision's action holds", func(id string) []appender {
			return []appender{rem(11*time.Second, id, "matched", ""), rem(12*time.Second, id, "matched", ""), rem(13*time.Second, id, "verified", ""),
				rem(14*time.Second, id, "sent", id+":reload:1"), rem(15*time.Second, id, "superseded", "")}
		}, []string{"opened/ticket", "suppressed/ticket"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			h := newHarness(t, createDefaultConfig())
			h.feed(bad(0))
			id := h.incidents()[0].id
			h.feed(append(c.audit(id), bad(30*time.Second), bad(60*time.Second), bad(90*time.Second))...)
			assert.Equal(t, c.want, states(h.incidents()))
		})
	}
}

// TestRenewalFailedSeverityFromTheSoonestLeaf: a failed renewal pages when a
// leaf the service serves expires within renewal_overdue, whichever
// endpoint reported last.
func TestRenewalFailedSeverityFromTheSoonestLeaf(t *testing.T) {
	h := newHarness(t, createDefaultConfig())
	soon := probe{at: 0, service: "api", server: "a.example.com", vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA, notAfter: t0.Add(48 * time.Hour)}
	later := probe{at: time.Second, service: "api", server: "b.example.com", vantage: "eu", chain: chainB, leaf: leafB, spki: spkiB, notAfter: t0.Add(80 * 24 * time.Hour)}
	h.feed(soon, later, event{at: time.Minute, typ: "renewal_failed", service: "api", job: "acme-9"})
	incs := h.incidents()
	require.NotEmpty(t, incs)
	assert.Equal(t, "renewal_failed", incs[len(incs)-1].reason)
	assert.Equal(t, "page", incs[len(incs)-1].severity, "a.example.com's leaf expires in 2 days")
}
