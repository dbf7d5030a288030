package tlscorrelator

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

func TestBucketSetTake(t *testing.T) {
	const m = maxBucketsPerCheckpoint
	set := func(bs ...int) (w [numBuckets]bool) {
		for _, b := range bs {
			w[b] = true
		}
		return w
	}
	span := func(from, n int) []int {
		var bs []int
		for i := range n {
			bs = append(bs, (from+i)%numBuckets)
		}
		return bs
	}
	tests := []struct {
		name        string
		dirty       []int
		urgent      []int
		cursor      int
		all, flush  bool
		want        []int
		wantCursor  int
		wantWritten int
	}{
		{name: "nothing dirty", want: nil},
		{name: "a few dirty", dirty: []int{3, 200}, want: []int{3, 200}},
		{name: "bulk: the cap, the cursor moves to the first left", dirty: span(0, 100), want: span(0, m), wantCursor: m},
		{name: "bulk from the cursor, wrapping", dirty: span(0, numBuckets), cursor: 250, want: span(250, m), wantCursor: (250 + m) % numBuckets},
		{name: "urgent ones do not count against the cap", dirty: span(0, 100), urgent: []int{90, 91}, want: append(span(0, m), 90, 91), wantCursor: m},
		{name: "flush writes every dirty one", dirty: span(10, 100), flush: true, want: span(10, 100)},
		{name: "all writes every bucket", dirty: []int{1}, all: true, want: span(0, numBuckets)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := bucketSet{cursor: tt.cursor}
			for _, b := range tt.dirty {
				s.mark(b)
			}
			for _, b := range tt.urgent {
				s.markUrgent(b)
			}
			w := s.take(tt.all, tt.flush)
			if w != set(tt.want...) {
				t.Errorf("took %v, want %v", on(w), tt.want)
			}
			if tt.wantCursor != 0 && s.cursor != tt.wantCursor {
				t.Errorf("cursor %d, want %d", s.cursor, tt.wantCursor)
			}
			s.written(&w)
			for _, b := range tt.want {
				if s.dirty[b] || s.urgent[b] {
					t.Fatalf("bucket %d still dirty after it was written", b)
				}
			}
			left := map[int]bool{}
			for _, b := range tt.dirty {
				left[b] = !w[b]
			}
			for b, l := range left {
				if l != s.dirty[b] {
					t.Errorf("bucket %d: dirty %v after the write, want %v", b, s.dirty[b], l)
				}
			}
		})
	}
}

func on(w [numBuckets]bool) []int {
	var bs []int
	for b, x := range w {
		if x {
			bs = append(bs, b)
		}
	}
	return bs
}

// TestRestoreServicesOneValue: state written before services were bucketed
// (every service in the "services" value) is restored, and the next
// checkpoint moves it into service buckets and deletes the old value.
func TestRestoreServicesOneValue(t *testing.T) {
	ctx := context.Background()
	mem := &memClient{m: map[string][]byte{}}
	old := map[string]*serviceState{}
	for _, n := range []string{"pay", "shop", "search"} {
		old[n] = &serviceState{LastSeen: time.Unix(1_796_557_363, 0).UTC(), Owner: "team-" + n, Leaves: map[string]int64{n + ".example.com:443": 1_800_000_000}}
	}
	put := func(k string, v any) {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		mem.m[k] = b
	}
	put(keyMeta, meta{Version: stateVersion, Watermark: time.Unix(1_796_557_363, 0)})
	put(keyServices, old)
	e := newEngine(createDefaultConfig())
	if err := e.restore(ctx, mem); err != nil {
		t.Fatal(err)
	}
	if len(e.services) != 3 || e.services["shop"].Owner != "team-shop" {
		t.Fatalf("restored %d services, shop's owner %q", len(e.services), e.services["shop"].Owner)
	}
	if _, err := e.checkpoint(ctx, mem, false, false); err != nil {
		t.Fatal(err)
	}
	if _, ok := mem.m[keyServices]; ok {
		t.Errorf("the one-value services are still stored after a checkpoint")
	}
	var got []string
	for k := range mem.m {
		if strings.HasPrefix(k, string(serviceBuckets)) {
			got = append(got, k)
		}
	}
	if len(got) == 0 {
		t.Fatalf("no service buckets written")
	}
	e2 := newEngine(createDefaultConfig())
	if err := e2.restore(ctx, mem); err != nil {
		t.Fatal(err)
	}
	if len(e2.services) != 3 || e2.services["search"].Leaves["search.example.com:443"] != 1_800_000_000 {
		t.Errorf("after the move: %d services, search %+v", len(e2.services), e2.services["search"])
	}
	if e2.legacySvc {
		t.Errorf("restored from buckets, yet marked as the one-value form")
	}
}
