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

// take returns the endpoint and service buckets written since the last
// take.
func (c *countingClient) take() (buckets int, services int) {
	for k := range c.writes {
		if strings.HasPrefix(k, string(endpointBuckets)) {
			buckets++
		}
		if strings.HasPrefix(k, string(serviceBuckets)) {
			services++
		}
	}
	c.writes = map[string]int{}
	return buckets, services
}

// TestCheckpointWritesOnlyChanges: healthy endpoints probed again rewrite
// next to nothing (their times and their services' are persisted once a
// slot); a failing one rewrites its own bucket and its service's; a
// restart restores what changed.
// counted is a correlator and the counting store its checkpoints go to
// (not set as its client: the tests checkpoint by hand or set it).
func counted(t *testing.T) (*correlator, *countingClient) {
	t.Helper()
	c, err := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	return c, &countingClient{memClient: memClient{m: map[string][]byte{}}, writes: map[string]int{}}
}

// fleet is one round of n healthy probes at at, over 50 services, with
// endpoint failing (an index, or -1) on an expired leaf.
func fleet(n int, at time.Duration, failing int) plog.Logs {
	ld := plog.NewLogs()
	for i := range n {
		p := probe{at: at, service: fmt.Sprintf("svc-%d", i%50), server: fmt.Sprintf("h%d.example.com", i), vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA}
		if i == failing {
			p.reason, p.chain = attrs.ReasonExpiredLeaf, chainB
		}
		p.appendTo(ld)
	}
	return ld
}

func TestCheckpointWritesOnlyChanges(t *testing.T) {
	c, mem := counted(t)
	ctx := context.Background()
	round := func(at time.Duration, failing int) {
		t.Helper()
		if err := c.consumeLogs(ctx, fleet(1000, at, failing)); err != nil {
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
	if b != maxBucketsPerCheckpoint || svc < 1 || svc > maxBucketsPerCheckpoint {
		t.Fatalf("first checkpoint: %d endpoint buckets, %d service buckets; want %d (of the nearly all %d dirty) and 1-%d of the services'", b, svc, maxBucketsPerCheckpoint, numBuckets, maxBucketsPerCheckpoint)
	}
	if total := drain(b); total < 200 {
		t.Fatalf("first %d checkpoints: %d buckets, want nearly all %d", numBuckets/maxBucketsPerCheckpoint, total, numBuckets)
	}
	round(time.Minute, -1)
	mem.take()
	round(90*time.Second, -1)
	// A bucket's slot (6 h, offset per bucket) may end in any minute: a
	// bucket or two, never the state.
	const few = numBuckets / 20
	if b, svc := mem.take(); b > few || svc > 1 {
		t.Errorf("healthy again: %d endpoint and %d service buckets written; want at most %d and 1", b, svc, few)
	}
	round(2*time.Minute, 7)
	if b, svc := mem.take(); b < 1 || b > few || svc != 1 {
		t.Errorf("one endpoint failing: %d endpoint and %d service buckets written; want its bucket and its service's (with the incident)", b, svc)
	}
	round(3*time.Minute+time.Duration(c.eng.seenSlot())*time.Second, 7)
	b, svc = mem.take()
	if total := drain(b); total < 200 {
		t.Errorf("a new seen slot: %d endpoint buckets written, want nearly all", total)
	}
	if svc < 1 {
		t.Errorf("a new seen slot: no service bucket written")
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
	if len(e.services) != 50 || len(e.services["svc-7"].Leaves) != 20 {
		t.Errorf("restored %d services, svc-7 with %d leaves; want 50, and 20", len(e.services), len(e.services["svc-7"].Leaves))
	}
}

// TestCheckpointFlushAtShutdown: a checkpoint writes at most
// maxBucketsPerCheckpoint buckets; the one at shutdown writes every dirty
// bucket, and a restart restores every endpoint.
func TestCheckpointFlushAtShutdown(t *testing.T) {
	c, mem := counted(t)
	ctx := context.Background()
	c.client = mem
	if err := c.consumeLogs(ctx, fleet(2000, 0, -1)); err != nil {
		t.Fatal(err)
	}
	if err := c.persist(ctx, false); err != nil {
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
