package remediationexporter

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

func TestTrailBehind(t *testing.T) {
	for _, c := range []struct {
		name       string
		ends, read map[int32]int64
		want       []int32
	}{
		{"no partitions (no topic yet)", nil, nil, nil},
		{"every partition empty", map[int32]int64{0: 0, 1: 0}, map[int32]int64{0: 0, 1: 0}, nil},
		{"nothing after the lookback", map[int32]int64{0: 7}, map[int32]int64{0: 7}, nil},
		{"one partition behind", map[int32]int64{0: 7, 1: 3}, map[int32]int64{0: 7, 1: 2}, []int32{1}},
		{"read past the end at start (written since)", map[int32]int64{0: 7}, map[int32]int64{0: 9}, nil},
		{"a partition not read at all", map[int32]int64{0: 7, 2: 1}, map[int32]int64{0: 7}, []int32{2}},
		{"sorted", map[int32]int64{5: 1, 0: 1, 3: 1}, map[int32]int64{}, []int32{0, 3, 5}},
	} {
		t.Run(c.name, func(t *testing.T) {
			assert.Equal(t, c.want, trailBehind(c.ends, c.read))
		})
	}
}

// trailCluster is a Kafka protocol broker on 127.0.0.1 with topics of 6
// partitions.
func trailCluster(t *testing.T, topics ...string) (*kfake.Cluster, *kgo.Client) {
	t.Helper()
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(tb.FreePort(t)), kfake.SeedTopics(6, topics...))
	require.NoError(t, err)
	t.Cleanup(c.Close)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.RecordPartitioner(kgo.ManualPartitioner()),
		kgo.ProducerBatchMaxBytes(16<<20), kgo.MaxBufferedRecords(100_000))
	require.NoError(t, err)
	t.Cleanup(cl.Close)
	return c, cl
}

// edgeMessage is one Kafka message as an agent's kafka exporter publishes
// the edge signal: a batch of normalized handshake records of one service.
func edgeMessage(service string, n int, at time.Time) []byte {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr("service.name", service)
	rl.Resource().Attributes().PutStr("deployment.environment.name", "prod")
	lrs := rl.ScopeLogs().AppendEmpty().LogRecords()
	for i := range n {
		lr := lrs.AppendEmpty()
		lr.SetTimestamp(pcommon.NewTimestampFromTime(at.Add(time.Duration(i) * time.Millisecond)))
		lr.SetEventName("certpulse.edge.handshake")
		lr.Body().SetStr("TLSv1.3 TLS_AES_128_GCM_SHA256 shop.example.com from 203.0.113.7")
		a := lr.Attributes()
		a.PutStr(attrs.EdgeProxy, "nginx")
		a.PutStr(attrs.EdgeListener, "10.0.0.5:443")
		a.PutStr(attrs.EdgeLog, "access")
		a.PutStr(attrs.EdgeConnection, "10.0.0.5:443#"+strconv.Itoa(i))
		a.PutInt(attrs.EdgeConnectionRequests, 1)
		a.PutBool(attrs.EdgeHandshake, true)
		a.PutStr(attrs.EdgeOutcome, "success")
		a.PutStr(attrs.EdgeClientClass, "chrome")
		a.PutStr(attrs.EdgeClientCiphers, "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256")
		a.PutStr(attrs.EdgeClientGroups, "X25519MLKEM768:x25519:secp256r1")
		a.PutStr("tls.protocol.version", "1.3")
		a.PutStr("tls.cipher", "TLS_AES_128_GCM_SHA256")
		a.PutStr("server.address", "shop.example.com")
		a.PutStr(attrs.EdgeNode, "10.0.0.5:443")
	}
	b, _ := (&plog.ProtoMarshaler{}).MarshalLogs(ld)
	return b
}

// fillEdge publishes messages of perMessage edge records over the topic's
// partitions, ending now.
func fillEdge(t *testing.T, cl *kgo.Client, topic string, messages, perMessage int) int64 {
	t.Helper()
	now := time.Now()
	var size int64
	msg := edgeMessage("shop", perMessage, now)
	recs := make([]*kgo.Record, 0, 1000)
	for i := range messages {
		recs = append(recs, &kgo.Record{Topic: topic, Partition: int32(i % 6), Value: msg, Timestamp: now.Add(-time.Duration(messages-i) * time.Millisecond)})
		size += int64(len(msg))
		if len(recs) == cap(recs) || i == messages-1 {
			require.NoError(t, cl.ProduceSync(context.Background(), recs...).FirstErr())
			recs = recs[:0]
		}
	}
	return size
}

// publishTrail publishes the audit events a sink received to topic, on the
// incident's partition, as the agents' kafka exporter does.
func publishTrail(t *testing.T, cl *kgo.Client, topic string, partition int32, recs []plog.LogRecord) {
	t.Helper()
	b, err := (&plog.ProtoMarshaler{}).MarshalLogs(auditLogs(t, recs))
	require.NoError(t, err)
	require.NoError(t, cl.ProduceSync(context.Background(), &kgo.Record{Topic: topic, Partition: partition, Value: b}).FirstErr())
}

// TestAuditTrailHoldsUntilRead: gateway A acted on an incident; its audit
// trail sits in Kafka behind a backlog. Gateway B starts and gets the
// incident at once: it must not act until the trail is read up to where it
// ended at start, and then counts A's attempt (cooldown, no repeated key).
// Without the hold B acts before it has read A's attempt and calls the
// webhook again with A's idempotency key.
func TestAuditTrailHoldsUntilRead(t *testing.T) {
	const topic = "certpulse-logs" // the backlog makes the race visible
	hook := newHookServer(t)
	cfgA := testConfig(webhookPolicy("p", hook.URL, "reload"))
	trailA := auditSink(t, cfgA)
	a := startExporter(t, cfgA, nopHost())
	inc := incident("inc-1", attrs.StateOpened, attrs.SeverityAlert)
	a.send(t, inc)
	require.Len(t, hook.calls(), 1)
	require.Eventually(t, func() bool { return len(decisions(trailA)) >= 2 }, 5*time.Second, 10*time.Millisecond)

	cluster, cl := trailCluster(t, topic)
	fillEdge(t, cl, topic, 20_000, 20)
	publishTrail(t, cl, topic, 3, auditRecords(trailA))

	cfgB := testConfig(webhookPolicy("p", hook.URL, "reload"))
	cfgB.AuditTrail = configoptional.Some(AuditTrailConfig{Brokers: cluster.ListenAddrs(), Topic: topic, Lookback: time.Hour})
	b := startExporter(t, cfgB, nopHost())
	require.NoError(t, b.r.push(context.Background(), incidentLogs(inc)))
	require.Eventually(t, b.r.trailCaughtUp, 30*time.Second, 10*time.Millisecond)
	b.r.waitIdle()
	assert.Equal(t, []string{hook.calls()[0]}, hook.calls(), "B repeated A's action")
	b.r.mu.Lock()
	defer b.r.mu.Unlock()
	assert.Equal(t, 1, b.r.st.incident("inc-1").Attempts, "A's attempt counts on B")
}

// TestAuditTrailNoTopic: a topic that does not exist yet (nothing audited
// anywhere) is read at once; remediation does not wait for it.
func TestAuditTrailNoTopic(t *testing.T) {
	hook := newHookServer(t)
	cluster, _ := trailCluster(t, "other")
	cfg := testConfig(webhookPolicy("p", hook.URL, "reload"))
	cfg.AuditTrail = configoptional.Some(AuditTrailConfig{Brokers: cluster.ListenAddrs(), Topic: "certpulse-audit"})
	e := startExporter(t, cfg, nopHost())
	require.Eventually(t, e.r.trailCaughtUp, 10*time.Second, 10*time.Millisecond)
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	assert.Len(t, hook.calls(), 1)
}

// TestAuditTrailCatchUp measures how long a starting gateway takes to read
// the audit trail at start with the edge signal in Kafka: reading the
// agents' shared topic (everything they publish) against the audit topic
// (only remediation events). CERTPULSE_CATCHUP_MESSAGES sets the backlog
// (default 1,000 messages of 100 edge records; docs/performance.md has the
// full run).
func TestAuditTrailCatchUp(t *testing.T) {
	messages := 1_000
	if v := os.Getenv("CERTPULSE_CATCHUP_MESSAGES"); v != "" {
		var err error
		messages, err = strconv.Atoi(v)
		require.NoError(t, err)
	}
	const perMessage = 100
	hook := newHookServer(t)
	cfgA := testConfig(webhookPolicy("p", hook.URL, "reload"))
	trailA := auditSink(t, cfgA)
	a := startExporter(t, cfgA, nopHost())
	for i := range 20 {
		a.send(t, incident(fmt.Sprintf("inc-%d", i), attrs.StateOpened, attrs.SeverityAlert))
	}
	a.r.waitIdle()
	require.Eventually(t, func() bool { return len(decisions(trailA)) >= 40 }, 10*time.Second, 10*time.Millisecond)

	cluster, cl := trailCluster(t, "certpulse-logs", "certpulse-audit")
	size := fillEdge(t, cl, "certpulse-logs", messages, perMessage)
	for i, rec := range auditRecords(trailA) {
		for _, topic := range []string{"certpulse-logs", "certpulse-audit"} {
			publishTrail(t, cl, topic, int32(i%6), []plog.LogRecord{rec})
		}
	}
	for _, topic := range []string{"certpulse-logs", "certpulse-audit"} {
		cfg := testConfig(webhookPolicy("p", hook.URL, "reload"))
		cfg.AuditTrail = configoptional.Some(AuditTrailConfig{Brokers: cluster.ListenAddrs(), Topic: topic})
		start := time.Now()
		e := startExporter(t, cfg, nopHost())
		require.Eventually(t, e.r.trailCaughtUp, 10*time.Minute, time.Millisecond)
		took := time.Since(start)
		e.r.mu.Lock()
		learned := 0
		for i := range 20 {
			if e.r.st.incident(fmt.Sprintf("inc-%d", i)).Attempts == 1 {
				learned++
			}
		}
		e.r.mu.Unlock()
		assert.Equal(t, 20, learned, "%s: every attempt learned before remediation may act", topic)
		t.Logf("audit_trail.topic %s: caught up in %v (backlog: %d edge records in %d messages, %.0f MB, on the shared topic)",
			topic, took.Round(time.Millisecond), messages*perMessage, messages, float64(size)/1e6)
	}
}

// TestAuditTrailUnreachableShutsDown: with the brokers unreachable the
// trail is never read and remediation holds; a decision waiting for it
// does not hold up shutdown until its deadline.
func TestAuditTrailUnreachableShutsDown(t *testing.T) {
	hook := newHookServer(t)
	cfg := testConfig(webhookPolicy("p", hook.URL, "reload"))
	cfg.AuditTrail = configoptional.Some(AuditTrailConfig{Brokers: []string{fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))}, Topic: "certpulse-audit"})
	f := NewFactory()
	exp, err := f.CreateLogs(context.Background(), exportertestSettings(), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), nopHost()))
	require.NoError(t, exp.ConsumeLogs(context.Background(), incidentLogs(incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))))
	time.Sleep(200 * time.Millisecond)
	assert.Empty(t, hook.calls(), "acted before the trail was read")
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	require.NoError(t, exp.Shutdown(ctx))
	assert.NoError(t, ctx.Err(), "shutdown waited for its deadline")
}
