package certlifecyclereceiver // import "github.com/certpulse/certpulse/receiver/certlifecyclereceiver"

import (
	"container/list"
	"sync"
	"time"
)

// seenIDs remembers delivered event ids (source + id, as CloudEvents defines
// uniqueness) for a window, bounded in entries; the oldest go first.
type seenIDs struct {
	mu     sync.Mutex
	window time.Duration
	max    int
	order  *list.List // of seenEntry, oldest first
	index  map[string]*list.Element
}

type seenEntry struct {
	key string
	at  time.Time
}

func newSeenIDs(window time.Duration, maxEntries int) *seenIDs {
	return &seenIDs{window: window, max: maxEntries, order: list.New(), index: map[string]*list.Element{}}
}

func dedupKey(e *Event) string { return e.Source + "\x00" + e.ID }

// seen reports whether key was delivered within the window.
func (s *seenIDs) seen(key string, now time.Time) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.expire(now)
	_, ok := s.index[key]
	return ok
}

// add records delivered keys.
func (s *seenIDs) add(keys []string, now time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		if el, ok := s.index[k]; ok {
			s.order.Remove(el)
		}
		s.index[k] = s.order.PushBack(seenEntry{k, now})
		for s.order.Len() > s.max {
			old := s.order.Remove(s.order.Front()).(seenEntry)
			delete(s.index, old.key)
		}
	}
}

func (s *seenIDs) expire(now time.Time) {
	for f := s.order.Front(); f != nil; f = s.order.Front() {
		e := f.Value.(seenEntry)
		if now.Sub(e.at) < s.window {
			return
		}
		s.order.Remove(f)
		delete(s.index, e.key)
	}
}

func (s *seenIDs) len() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.order.Len()
}
