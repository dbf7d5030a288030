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

// checkpoint writes the dirty parts of the state; it returns the size of
// the whole persisted state after the write.
func (e *engine) checkpoint(ctx context.Context, c storage.Client, all bool) (int, error) {
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
	var dirty [numBuckets]bool
	for b := range e.dirtyBuckets {
		dirty[b] = e.dirtyBuckets[b] || all
	}
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
	e.dirtyBuckets = [numBuckets]bool{}
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
