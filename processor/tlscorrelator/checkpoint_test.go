package tlscorrelator

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// countingClient counts the keys each Batch writes.
type countingClient struct {
	memClient
	writes map[string]int
}

func (c *countingClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	for _, op := range ops {
		if op.Type == storage.Set {
			c.writes[op.Key]++
		}
	}
	return c.memClient.Batch(ctx, ops...)
}

func (c *countingClient) take() (buckets int, services bool) {
	for k := range c.writes {
		if strings.HasPrefix(k, "endpoints/") {
			buckets++
		}
		if k == keyServices {
			services = true
		}
	}
	c.writes = map[string]int{}
	return buckets, services
}

// TestCheckpointWritesOnlyChanges: healthy endpoints probed again rewrite
// next to nothing (their times are persisted once a slot, services' every
// svcSlowCheckpoints); a failing one rewrites its own bucket; a restart
// restores what changed.
func TestCheckpointWritesOnlyChanges(t *testing.T) {
	c, err := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mem := &countingClient{memClient: memClient{m: map[string][]byte{}}, writes: map[string]int{}}
	round := func(at time.Duration, failing int) {
		t.Helper()
		ld := plog.NewLogs()
		for i := 0; i < 1000; i++ {
			p := probe{at: at, service: fmt.Sprintf("svc-%d", i%50), server: fmt.Sprintf("h%d.example.com", i), vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA}
			if i == failing {
				p.reason, p.chain = attrs.ReasonExpiredLeaf, chainB
			}
			p.appendTo(ld)
		}
		if err := c.consumeLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
		if _, err := c.eng.checkpoint(ctx, mem, false, false); err != nil {
			t.Fatal(err)
		}
	}
	// drain runs the checkpoints that write the dirty buckets left over,
	// and returns how many buckets were written in all.
	drain := func(first int) int {
		t.Helper()
		total := first
		for range numBuckets/maxBucketsPerCheckpoint - 1 {
			if _, err := c.eng.checkpoint(ctx, mem, false, false); err != nil {
				t.Fatal(err)
			}
			b, _ := mem.take()
			if b > maxBucketsPerCheckpoint {
				t.Fatalf("a checkpoint wrote %d buckets, at most %d", b, maxBucketsPerCheckpoint)
			}
			total += b
		}
		return total
	}
	round(0, -1)
	b, svc := mem.take()
	if b != maxBucketsPerCheckpoint || !svc {
		t.Fatalf("first checkpoint: %d buckets, services %v; want %d (of the nearly all %d dirty) and the services", b, svc, maxBucketsPerCheckpoint, numBuckets)
	}
	if total := drain(b); total < 200 {
		t.Fatalf("first %d checkpoints: %d buckets, want nearly all %d", numBuckets/maxBucketsPerCheckpoint, total, numBuckets)
	}
	// (the services' seen times are written at the first checkpoint that
	// follows svcSlowCheckpoints without: the drain's)
	round(time.Minute, -1)
	mem.take()
	round(90*time.Second, -1)
	// A bucket's slot (6 h, offset per bucket) may end in any minute: a
	// bucket or two, never the state.
	const few = numBuckets / 20
	if b, svc := mem.take(); b > few || svc {
		t.Errorf("healthy again: %d buckets written, services %v; want at most %d and no services", b, svc, few)
	}
	round(2*time.Minute, 7)
	if b, svc := mem.take(); b < 1 || b > few || !svc {
		t.Errorf("one endpoint failing: %d buckets written, services %v; want its bucket (and the services, with the incident)", b, svc)
	}
	for i := 0; i < svcSlowCheckpoints; i++ {
		round(time.Duration(3+i)*time.Minute, 7)
	}
	if _, svc := mem.take(); !svc {
		t.Errorf("services' times never written in %d checkpoints", svcSlowCheckpoints)
	}
	round(time.Duration(3+svcSlowCheckpoints)*time.Minute+time.Duration(c.eng.seenSlot())*time.Second, 7)
	if b, _ := mem.take(); drain(b) < 200 {
		t.Errorf("a new seen slot: %d buckets written, want nearly all", b)
	}
	e := newEngine(c.cfg)
	if err := e.restore(ctx, &mem.memClient); err != nil {
		t.Fatal(err)
	}
	if len(e.endpoints) != 1000 {
		t.Fatalf("restored %d endpoints, want 1000", len(e.endpoints))
	}
	failing := 0
	for _, ep := range e.endpoints {
		if ep.LastReason == attrs.ReasonExpiredLeaf {
			failing++
		}
	}
	if failing != 1 {
		t.Errorf("restored %d failing endpoints, want 1", failing)
	}
}

// TestCheckpointFlushAtShutdown: a checkpoint writes at most
// maxBucketsPerCheckpoint buckets; the one at shutdown writes every dirty
// bucket, and a restart restores every endpoint.
func TestCheckpointFlushAtShutdown(t *testing.T) {
	c, err := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	mem := &countingClient{memClient: memClient{m: map[string][]byte{}}, writes: map[string]int{}}
	c.client = mem
	ld := plog.NewLogs()
	for i := range 2000 {
		probe{at: 0, service: fmt.Sprintf("svc-%d", i%50), server: fmt.Sprintf("h%d.example.com", i), vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA}.appendTo(ld)
	}
	if err := c.consumeLogs(ctx, ld); err != nil {
		t.Fatal(err)
	}
	c.mu.Lock()
	err = c.checkpointLocked(ctx, false)
	c.mu.Unlock()
	if err != nil {
		t.Fatal(err)
	}
	if b, _ := mem.take(); b != maxBucketsPerCheckpoint {
		t.Fatalf("a checkpoint wrote %d buckets, want %d", b, maxBucketsPerCheckpoint)
	}
	if err := c.shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if b, _ := mem.take(); b < 200 {
		t.Fatalf("shutdown wrote %d buckets, want the rest of the nearly %d dirty", b, numBuckets)
	}
	e := newEngine(c.cfg)
	if err := e.restore(ctx, &mem.memClient); err != nil {
		t.Fatal(err)
	}
	if len(e.endpoints) != 2000 {
		t.Fatalf("restored %d endpoints, want 2000", len(e.endpoints))
	}
}

// TestSeenSlotsComeDueByBucket: with 100,000 healthy endpoints probed each
// minute, the seen times that come due in a minute fill at most a couple
// of buckets (a bucket's endpoints share its phase), not every bucket (a
// phase per endpoint made nearly all 256 buckets, the whole state, due at
// every checkpoint once there are more endpoints than minutes in a slot).
func TestSeenSlotsComeDueByBucket(t *testing.T) {
	e := newEngine(createDefaultConfig())
	slot := e.seenSlot()
	for _, now := range []int64{1_796_557_363, 1_796_557_363 + slot/3, 1_796_557_363 + slot/2 + 17} {
		due := map[int]bool{}
		for i := range 100_000 {
			key := fmt.Sprintf("svc-%d|t%d.example.com:443|default|eu", i%500, i)
			b := bucketOf(key)
			if persistChanged(&endpointState{LastSeen: now - 60}, &endpointState{LastSeen: now}, slot, seenPhase(b, slot)) {
				due[b] = true
			}
		}
		if len(due) > 2 {
			t.Errorf("at %d: %d buckets due in one minute, want at most 2", now, len(due))
		}
	}
}
