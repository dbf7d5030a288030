package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/certpulse/certpulse/internal/attrs"
)

const (
	keyMeta      = "meta"
	keyIncidents = "incidents"
	// keyServices held every service in one value before services were
	// bucketed; restore still reads it, the next checkpoint deletes it.
	keyServices  = "services"
	keyOutbox    = "outbox"
	stateVersion = 1
)

// outboxRecord is the persisted form of an outbox entry.
type outboxRecord struct {
	Seq   uint64      `json:"seq"`
	Inc   incident    `json:"incident"`
	State attrs.State `json:"state"`
	Prev  attrs.State `json:"prev,omitempty"`
	At    time.Time   `json:"at"`
}

type meta struct {
	Version   int       `json:"version"`
	Watermark time.Time `json:"watermark"`
}

// pendingWrite is a checkpoint prepared under the correlator's lock and
// written outside it: the operations, the size of each key written, and
// what it clears, to mark again should the write fail.
type pendingWrite struct {
	codec                    *stateCodec
	ops                      []*storage.Operation
	sizes                    map[string]int
	inc, outbox, legacySvc   bool
	outboxSeq                uint64
	endpoints, services      [numBuckets]bool
	urgentEp, urgentServices [numBuckets]bool
}

// checkpoint prepares, writes and commits a checkpoint in one go; it
// returns the size of the whole persisted state after the write.
func (e *engine) checkpoint(ctx context.Context, c storage.Client, all, flush bool) (int, error) {
	w, err := e.prepare(all, flush)
	if err != nil {
		return 0, err
	}
	err = w.write(ctx, c)
	e.commit(w, err)
	return e.storedBytes, err
}

// prepare marshals the changed parts of the state (bucketSet.take: at
// most maxBucketsPerCheckpoint buckets of a kind changed in bulk, unless
// flush at shutdown; every bucket when all) and marks them clean; commit
// marks them dirty again if the write fails.
func (e *engine) prepare(all, flush bool) (*pendingWrite, error) {
	if e.codec == nil {
		c, err := newStateCodec()
		if err != nil {
			return nil, err
		}
		e.codec = c
	}
	w := &pendingWrite{codec: e.codec, sizes: map[string]int{}}
	add := func(k string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		w.sizes[k] = len(b)
		w.ops = append(w.ops, storage.SetOperation(k, b))
		return nil
	}
	if err := add(keyMeta, meta{Version: stateVersion, Watermark: e.watermark}); err != nil {
		return nil, err
	}
	if e.dirtyInc || all {
		if err := add(keyIncidents, e.incidents); err != nil {
			return nil, err
		}
	}
	if e.dirtyOutbox || all {
		recs := make([]outboxRecord, 0, len(e.outbox))
		for _, o := range e.outbox {
			recs = append(recs, outboxRecord{Seq: o.seq, Inc: o.tr.inc, State: o.tr.state, Prev: o.tr.prev, At: o.tr.at})
		}
		if err := add(keyOutbox, recs); err != nil {
			return nil, err
		}
	}
	// The services of the one-value form go in the same batch as every
	// service bucket.
	if e.legacySvc {
		w.ops = append(w.ops, storage.DeleteOperation(keyServices))
		w.sizes[keyServices] = 0
	}
	w.endpoints = e.dirtyEp.take(all, flush)
	if err := addBuckets(endpointBuckets, e.endpoints, &w.endpoints, add, &w.ops, w.sizes); err != nil {
		return nil, err
	}
	w.services = e.dirtySvc.take(all || e.legacySvc, flush)
	if err := addBuckets(serviceBuckets, e.services, &w.services, add, &w.ops, w.sizes); err != nil {
		return nil, err
	}
	// Every outbox entry up to outboxSeq is in this write, or was
	// persisted by an earlier one (the outbox is written whenever an entry
	// joins it).
	w.inc, w.outbox, w.legacySvc, w.outboxSeq = e.dirtyInc, e.dirtyOutbox, e.legacySvc, e.outboxSeq
	w.urgentEp, w.urgentServices = e.dirtyEp.urgent, e.dirtySvc.urgent
	e.dirtyInc, e.dirtyOutbox, e.legacySvc = false, false, false
	e.dirtyEp.written(&w.endpoints)
	e.dirtySvc.written(&w.services)
	return w, nil
}

// write compresses the prepared values and runs the operations in one
// batch (no lock held: CPU and disk I/O); sizes become the sizes written.
func (w *pendingWrite) write(ctx context.Context, c storage.Client) error {
	for _, op := range w.ops {
		if op.Type == storage.Set {
			op.Value = w.codec.pack(op.Value)
			w.sizes[op.Key] = len(op.Value)
		}
	}
	if err := c.Batch(ctx, w.ops...); err != nil {
		return fmt.Errorf("persisting correlator state: %w", err)
	}
	return nil
}

// commit accounts for a written checkpoint, or marks what it was to write
// dirty again when the write failed (err), for the next checkpoint.
func (e *engine) commit(w *pendingWrite, err error) {
	if err != nil {
		e.dirtyInc = e.dirtyInc || w.inc
		e.dirtyOutbox = e.dirtyOutbox || w.outbox
		e.legacySvc = e.legacySvc || w.legacySvc
		e.dirtyEp.unwritten(&w.endpoints, &w.urgentEp)
		e.dirtySvc.unwritten(&w.services, &w.urgentServices)
		return
	}
	e.persistedSeq = max(e.persistedSeq, w.outboxSeq)
	if e.storedSizes == nil {
		e.storedSizes = map[string]int{}
	}
	for k, n := range w.sizes {
		e.storedBytes += n - e.storedSizes[k]
		if n == 0 {
			delete(e.storedSizes, k)
		} else {
			e.storedSizes[k] = n
		}
	}
}

// addBuckets adds the writes of the buckets w of m's entries: a bucket
// left empty is deleted.
func addBuckets[V any](kind bucketKind, m map[string]V, w *[numBuckets]bool, add func(string, any) error, ops *[]*storage.Operation, sizes map[string]int) error {
	some := false
	for _, x := range w {
		some = some || x
	}
	if !some {
		return nil
	}
	var buckets [numBuckets]map[string]V
	for k, v := range m {
		b := bucketOf(k)
		if !w[b] {
			continue
		}
		if buckets[b] == nil {
			buckets[b] = map[string]V{}
		}
		buckets[b][k] = v
	}
	for b := range numBuckets {
		if !w[b] {
			continue
		}
		if buckets[b] == nil {
			*ops = append(*ops, storage.DeleteOperation(kind.key(b)))
			sizes[kind.key(b)] = 0
			continue
		}
		if err := add(kind.key(b), buckets[b]); err != nil {
			return err
		}
	}
	return nil
}

// restore loads the state written by checkpoint.
func (e *engine) restore(ctx context.Context, c storage.Client) error {
	ops := []*storage.Operation{storage.GetOperation(keyMeta), storage.GetOperation(keyIncidents), storage.GetOperation(keyServices), storage.GetOperation(keyOutbox)}
	for b := range numBuckets {
		ops = append(ops, storage.GetOperation(endpointBuckets.key(b)), storage.GetOperation(serviceBuckets.key(b)))
	}
	if err := c.Batch(ctx, ops...); err != nil {
		return fmt.Errorf("reading correlator state: %w", err)
	}
	e.storedSizes, e.storedBytes = map[string]int{}, 0
	for _, op := range ops {
		if len(op.Value) > 0 {
			e.storedSizes[op.Key] = len(op.Value)
			e.storedBytes += len(op.Value)
		}
	}
	if ops[0].Value == nil {
		return nil // fresh
	}
	r, err := newStateReader(maxStateValue)
	if err != nil {
		return err
	}
	defer r.close()
	// The buckets are decompressed one at a time, below.
	for _, op := range ops[:4] {
		if op.Value, err = r.unpack(op.Key, op.Value); err != nil {
			return err
		}
	}
	var m meta
	if err := json.Unmarshal(ops[0].Value, &m); err != nil {
		return fmt.Errorf("correlator state meta: %w", err)
	}
	if m.Version != stateVersion {
		return fmt.Errorf("correlator state version %d, this build reads %d", m.Version, stateVersion)
	}
	e.watermark = m.Watermark
	if v := ops[1].Value; v != nil {
		if err := json.Unmarshal(v, &e.incidents); err != nil {
			return fmt.Errorf("correlator incidents: %w", err)
		}
	}
	if v := ops[2].Value; v != nil {
		if err := json.Unmarshal(v, &e.services); err != nil {
			return fmt.Errorf("correlator services: %w", err)
		}
		e.legacySvc = true
	}
	if v := ops[3].Value; v != nil {
		var recs []outboxRecord
		if err := json.Unmarshal(v, &recs); err != nil {
			return fmt.Errorf("correlator outbox: %w", err)
		}
		for _, r := range recs {
			e.outbox = append(e.outbox, &outboxEntry{seq: r.Seq, tr: transition{inc: r.Inc, state: r.State, prev: r.Prev, at: r.At}})
			e.outboxSeq = max(e.outboxSeq, r.Seq)
		}
		e.persistedSeq = e.outboxSeq
	}
	if e.services == nil {
		e.services = map[string]*serviceState{}
	}
	for i := 4; i < len(ops); i += 2 {
		if err := restoreBucket(r, ops[i], e.endpoints); err != nil {
			return err
		}
		if err := restoreBucket(r, ops[i+1], e.services); err != nil {
			return err
		}
	}
	for k, ep := range e.endpoints {
		e.indexNode(k)
		e.fps.share(ep)
	}
	e.fps.base = len(e.fps.m)
	if e.incidents == nil {
		e.incidents = map[string]*incident{}
	}
	return nil
}

// restoreBucket adds a bucket's entries to m, and lets go of its value.
func restoreBucket[V any](r *stateReader, op *storage.Operation, m map[string]V) error {
	if op.Value == nil {
		return nil
	}
	v, err := r.unpack(op.Key, op.Value)
	op.Value = nil
	if err != nil {
		return err
	}
	var b map[string]V
	if err := json.Unmarshal(v, &b); err != nil {
		return fmt.Errorf("correlator %s: %w", op.Key, err)
	}
	for k, v := range b {
		m[k] = v
	}
	return nil
}
