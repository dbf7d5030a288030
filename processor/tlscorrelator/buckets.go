package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"hash/fnv"
	"strconv"
)

// Endpoint and service state are persisted in numBuckets buckets each, by
// key hash, so a checkpoint writes only the buckets that changed.
const numBuckets = 256

// maxBucketsPerCheckpoint bounds the buckets of one kind a checkpoint
// writes (1/8 of the state) when they changed in bulk; the others stay
// dirty for the next ones, taken round-robin, so every change is written
// within numBuckets/this checkpoints. A start with 100,000 new endpoints
// made every bucket dirty at every checkpoint for a whole interval: the
// whole state (37 MB of JSON) rewritten every 10 s, and the bbolt file,
// whose pages stay mapped in the agent's memory, grown to three times the
// state.
const maxBucketsPerCheckpoint = numBuckets / 8

func bucketOf(key string) int {
	h := fnv.New32a()
	_, _ = h.Write([]byte(key))
	return int(h.Sum32() % numBuckets)
}

// bucketKind names a kind of bucketed state and its storage key prefix.
type bucketKind string

const (
	endpointBuckets bucketKind = "endpoints/"
	serviceBuckets  bucketKind = "services/"
)

func (k bucketKind) key(b int) string { return string(k) + strconv.Itoa(b) }

// bucketSet is which buckets of one kind changed since they were written.
// A bulk change (new entries, seen times) waits its turn under
// maxBucketsPerCheckpoint; an urgent one (what a restart must not lose: a
// lifecycle event, an incident's service) is written at the next
// checkpoint.
type bucketSet struct {
	dirty, urgent [numBuckets]bool
	// cursor: where the next checkpoint starts looking for dirty buckets.
	cursor int
}

func (s *bucketSet) mark(b int) { s.dirty[b] = true }

func (s *bucketSet) markUrgent(b int) { s.dirty[b], s.urgent[b] = true, true }

// take picks the buckets a checkpoint writes: every bucket when all; every
// dirty one when flush (at shutdown); else every urgent one and the other
// dirty ones from the round-robin cursor on, at most
// maxBucketsPerCheckpoint of those.
func (s *bucketSet) take(all, flush bool) (w [numBuckets]bool) {
	n := 0
	for i := range numBuckets {
		b := (s.cursor + i) % numBuckets
		switch {
		case all, s.urgent[b]:
			w[b] = true
		case !s.dirty[b]:
		case flush || n < maxBucketsPerCheckpoint:
			w[b] = true
			n++
		default:
			if n == maxBucketsPerCheckpoint {
				s.cursor = b // the next checkpoint starts here
				n++
			}
		}
	}
	return w
}

// written clears the buckets a checkpoint wrote.
func (s *bucketSet) written(w *[numBuckets]bool) {
	for b := range w {
		if w[b] {
			s.dirty[b], s.urgent[b] = false, false
		}
	}
}

// unwritten marks the buckets of a failed write dirty again, urgent as
// they were.
func (s *bucketSet) unwritten(w, urgent *[numBuckets]bool) {
	for b := range w {
		if w[b] {
			s.dirty[b] = true
			s.urgent[b] = s.urgent[b] || urgent[b]
		}
	}
}
