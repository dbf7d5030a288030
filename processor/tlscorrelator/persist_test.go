package tlscorrelator

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// blockingClient holds every Batch until release is closed, once entered
// has been signalled.
type blockingClient struct {
	memClient
	entered chan struct{}
	release chan struct{}
}

func (c *blockingClient) Batch(ctx context.Context, ops ...*storage.Operation) error {
	select {
	case c.entered <- struct{}{}:
	default:
	}
	<-c.release
	return c.memClient.Batch(ctx, ops...)
}

// TestRecordsFlowWhileCheckpointWrites: the correlator does not hold its
// lock while a checkpoint is on disk: records are processed while a slow
// write is under way.
func TestRecordsFlowWhileCheckpointWrites(t *testing.T) {
	c, err := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	bc := &blockingClient{memClient: memClient{m: map[string][]byte{}}, entered: make(chan struct{}, 1), release: make(chan struct{})}
	c.client = bc
	ctx := context.Background()
	ticked := make(chan struct{})
	go func() { defer close(ticked); c.tick(ctx) }()
	<-bc.entered
	done := make(chan error, 1)
	go func() {
		done <- c.consumeLogs(ctx, batchOf(probe{at: 0, service: "api", server: "a.example.com", vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA}))
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		close(bc.release)
		t.Fatal("a healthy record waited for the checkpoint's write")
	}
	close(bc.release)
	<-ticked
}

// TestTransitionWaitsForItsCheckpoint: a transition queued while a
// checkpoint is being written is not in that write, so it is not taken
// for sending when that write lands, only after the next one.
func TestTransitionWaitsForItsCheckpoint(t *testing.T) {
	e := newEngine(createDefaultConfig())
	mem := &memClient{m: map[string][]byte{}}
	ctx := context.Background()
	e.out = append(e.out, transition{inc: incident{ID: "first"}, state: attrs.StateOpened})
	e.queue()
	w, err := e.prepare(false, false)
	if err != nil {
		t.Fatal(err)
	}
	e.out = append(e.out, transition{inc: incident{ID: "second"}, state: attrs.StateOpened})
	e.queue() // meanwhile, under the lock
	e.commit(w, w.write(ctx, mem))
	if got := e.takeOutbox(e.persistedSeq); len(got) != 1 || got[0].tr.inc.ID != "first" {
		t.Fatalf("after the first write took %d entries, want the first only", len(got))
	}
	if _, err := e.checkpoint(ctx, mem, false, false); err != nil {
		t.Fatal(err)
	}
	if got := e.takeOutbox(e.persistedSeq); len(got) != 1 || got[0].tr.inc.ID != "second" {
		t.Fatalf("after the second write took %d entries, want the second", len(got))
	}
}

type errClient struct{ memClient }

func (c *errClient) Batch(context.Context, ...*storage.Operation) error {
	return errors.New("no space left on device")
}

// TestFailedWriteMarksDirtyAgain: what a failed checkpoint was to write
// (buckets, urgent or not, incidents, outbox) is written by the next.
func TestFailedWriteMarksDirtyAgain(t *testing.T) {
	c, err := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	ld := plog.NewLogs()
	for i := range 100 {
		p := probe{at: 0, service: fmt.Sprintf("svc-%d", i%10), server: fmt.Sprintf("h%d.example.com", i), vantage: "eu", chain: chainA, leaf: leafA, spki: spkiA}
		if i == 3 {
			p.reason = attrs.ReasonExpiredLeaf
		}
		p.appendTo(ld)
	}
	if err := c.consumeLogs(ctx, ld); err != nil {
		t.Fatal(err)
	}
	e := c.eng
	marks := func() [4][numBuckets]bool {
		return [4][numBuckets]bool{e.dirtyEp.dirty, e.dirtyEp.urgent, e.dirtySvc.dirty, e.dirtySvc.urgent}
	}
	before := marks()
	if !e.dirtyInc || !e.dirtyOutbox {
		t.Fatalf("an incident opened, yet incidents dirty %v, outbox dirty %v", e.dirtyInc, e.dirtyOutbox)
	}
	if _, err := e.checkpoint(ctx, &errClient{}, false, false); err == nil {
		t.Fatal("a failed write returned no error")
	}
	if marks() != before || !e.dirtyInc || !e.dirtyOutbox || e.persistedSeq != 0 {
		t.Fatalf("after a failed write: not everything is dirty again (incidents %v, outbox %v, persisted seq %d)", e.dirtyInc, e.dirtyOutbox, e.persistedSeq)
	}
	mem := &memClient{m: map[string][]byte{}}
	if _, err := e.checkpoint(ctx, mem, false, true); err != nil {
		t.Fatal(err)
	}
	r := newEngine(c.cfg)
	if err := r.restore(ctx, mem); err != nil {
		t.Fatal(err)
	}
	if len(r.endpoints) != 100 || len(r.services) != 10 || len(r.incidents) != 1 || len(r.outbox) != 0 {
		t.Errorf("restored %d endpoints, %d services, %d incidents, %d outbox entries; want 100, 10, 1 and none (sent and accepted)", len(r.endpoints), len(r.services), len(r.incidents), len(r.outbox))
	}
}
