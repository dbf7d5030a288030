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

// checkpoint writes the changed parts of the state (bucketSet.take: at
// most maxBucketsPerCheckpoint buckets of a kind changed in bulk, unless
// flush at shutdown; every bucket when all); it returns the size of the
// whole persisted state after the write.
func (e *engine) checkpoint(ctx context.Context, c storage.Client, all, flush bool) (int, error) {
	var ops []*storage.Operation
	sizes := map[string]int{}
	add := func(k string, v any) error {
		b, err := json.Marshal(v)
		if err != nil {
			return err
		}
		sizes[k] = len(b)
		ops = append(ops, storage.SetOperation(k, b))
		return nil
	}
	if err := add(keyMeta, meta{Version: stateVersion, Watermark: e.watermark}); err != nil {
		return 0, err
	}
	if e.dirtyInc || all {
		if err := add(keyIncidents, e.incidents); err != nil {
			return 0, err
		}
	}
	if e.dirtyOutbox || all {
		recs := make([]outboxRecord, 0, len(e.outbox))
		for _, o := range e.outbox {
			recs = append(recs, outboxRecord{Seq: o.seq, Inc: o.tr.inc, State: o.tr.state, Prev: o.tr.prev, At: o.tr.at})
		}
		if err := add(keyOutbox, recs); err != nil {
			return 0, err
		}
	}
	// The services of the one-value form go in the same batch as every
	// service bucket.
	legacy := e.legacySvc
	if legacy {
		ops = append(ops, storage.DeleteOperation(keyServices))
		sizes[keyServices] = 0
	}
	wEp := e.dirtyEp.take(all, flush)
	if err := addBuckets(endpointBuckets, e.endpoints, &wEp, add, &ops, sizes); err != nil {
		return 0, err
	}
	wSvc := e.dirtySvc.take(all || legacy, flush)
	if err := addBuckets(serviceBuckets, e.services, &wSvc, add, &ops, sizes); err != nil {
		return 0, err
	}
	if err := c.Batch(ctx, ops...); err != nil {
		return 0, fmt.Errorf("persisting correlator state: %w", err)
	}
	e.dirtyInc, e.dirtyOutbox, e.legacySvc = false, false, false
	e.dirtyEp.written(&wEp)
	e.dirtySvc.written(&wSvc)
	if e.storedSizes == nil {
		e.storedSizes = map[string]int{}
	}
	for k, n := range sizes {
		e.storedBytes += n - e.storedSizes[k]
		if n == 0 {
			delete(e.storedSizes, k)
		} else {
			e.storedSizes[k] = n
		}
	}
	return e.storedBytes, nil
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
	}
	if e.services == nil {
		e.services = map[string]*serviceState{}
	}
	for i := 4; i < len(ops); i += 2 {
		if err := restoreBucket(ops[i], e.endpoints); err != nil {
			return err
		}
		if err := restoreBucket(ops[i+1], e.services); err != nil {
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

// restoreBucket adds a bucket's entries to m.
func restoreBucket[V any](op *storage.Operation, m map[string]V) error {
	if op.Value == nil {
		return nil
	}
	var b map[string]V
	if err := json.Unmarshal(op.Value, &b); err != nil {
		return fmt.Errorf("correlator %s: %w", op.Key, err)
	}
	for k, v := range b {
		m[k] = v
	}
	return nil
}
