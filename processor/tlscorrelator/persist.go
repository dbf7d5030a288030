package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"context"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/certpulse/certpulse/internal/attrs"
)

// Endpoint state is persisted in numBuckets buckets by key hash, so a
// checkpoint writes only the buckets that changed; incidents and services
// are small and written whole.
const numBuckets = 256

const (
	keyMeta      = "meta"
	keyIncidents = "incidents"
	keyServices  = "services"
	keyOutbox    = "outbox"
	stateVersion = 1
)

func bucketOf(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % numBuckets)
}

func bucketKey(b int) string { return "endpoints/" + strconv.Itoa(b) }

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

// svcSlowCheckpoints: services whose last-seen times alone moved are
// written every this many checkpoints (a minute at the default 10s).
const svcSlowCheckpoints = 6

// maxBucketsPerCheckpoint bounds the endpoint buckets one checkpoint
// writes (1/8 of the state); the others stay dirty for the next ones, taken
// round-robin, so every change is written within numBuckets/this
// checkpoints. A start with 100,000 new endpoints made every bucket dirty
// at every checkpoint for a whole interval: the whole state (37 MB of
// JSON) rewritten every 10 s, and the bbolt file, whose pages stay mapped
// in the agent's memory, grown to three times the state.
const maxBucketsPerCheckpoint = numBuckets / 8

// checkpoint writes the dirty parts of the state, at most
// maxBucketsPerCheckpoint endpoint buckets unless flush (at shutdown) or
// all (every bucket, dirty or not); it returns the size of the whole
// persisted state after the write.
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
	writeSvc := e.dirtySvc || e.dirtyInc || all || (e.svcTouched && e.svcSkipped+1 >= svcSlowCheckpoints)
	if writeSvc {
		if err := add(keyServices, e.services); err != nil {
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
	var buckets [numBuckets]map[string]*endpointState
	dirty := e.bucketsToWrite(all, flush)
	for k, ep := range e.endpoints {
		b := bucketOf(k)
		if !dirty[b] {
			continue
		}
		if buckets[b] == nil {
			buckets[b] = map[string]*endpointState{}
		}
		buckets[b][k] = ep
	}
	for b := 0; b < numBuckets; b++ {
		if !dirty[b] {
			continue
		}
		if buckets[b] == nil {
			ops = append(ops, storage.DeleteOperation(bucketKey(b)))
			sizes[bucketKey(b)] = 0
			continue
		}
		if err := add(bucketKey(b), buckets[b]); err != nil {
			return 0, err
		}
	}
	if err := c.Batch(ctx, ops...); err != nil {
		return 0, fmt.Errorf("persisting correlator state: %w", err)
	}
	e.dirtyInc, e.dirtyOutbox = false, false
	if writeSvc {
		e.dirtySvc, e.svcTouched, e.svcSkipped = false, false, 0
	} else {
		e.svcSkipped++
	}
	for b := range dirty {
		if dirty[b] {
			e.dirtyBuckets[b] = false
		}
	}
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

// bucketsToWrite picks the buckets a checkpoint writes: the dirty ones
// from the round-robin cursor on, at most maxBucketsPerCheckpoint unless
// flush; every bucket when all.
func (e *engine) bucketsToWrite(all, flush bool) (dirty [numBuckets]bool) {
	n := 0
	for i := range numBuckets {
		b := (e.bucketCursor + i) % numBuckets
		if !all && !e.dirtyBuckets[b] {
			continue
		}
		if !all && !flush && n == maxBucketsPerCheckpoint {
			e.bucketCursor = b // the next checkpoint starts here
			return dirty
		}
		dirty[b] = true
		n++
	}
	return dirty
}

// restore loads the state written by checkpoint.
func (e *engine) restore(ctx context.Context, c storage.Client) error {
	ops := []*storage.Operation{storage.GetOperation(keyMeta), storage.GetOperation(keyIncidents), storage.GetOperation(keyServices), storage.GetOperation(keyOutbox)}
	for b := 0; b < numBuckets; b++ {
		ops = append(ops, storage.GetOperation(bucketKey(b)))
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
	for _, op := range ops[4:] {
		if op.Value == nil {
			continue
		}
		var b map[string]*endpointState
		if err := json.Unmarshal(op.Value, &b); err != nil {
			return fmt.Errorf("correlator %s: %w", op.Key, err)
		}
		for k, v := range b {
			e.endpoints[k] = v
			e.indexNode(k)
		}
	}
	if e.incidents == nil {
		e.incidents = map[string]*incident{}
	}
	if e.services == nil {
		e.services = map[string]*serviceState{}
	}
	return nil
}
