package tlscorrelator

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/klauspost/compress/zstd"
	"go.opentelemetry.io/collector/consumer/consumertest"
)

// checkpointed is a correlator that saw 1,000 endpoints of 50 services,
// all on one chain, and the state it checkpointed in full.
func checkpointed(t *testing.T) (*correlator, *memClient) {
	t.Helper()
	c, err := newCorrelator(createDefaultConfig(), newSettings(), consumertest.NewNop())
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if err := c.consumeLogs(ctx, fleet(1000, 0, -1)); err != nil {
		t.Fatal(err)
	}
	mem := &memClient{m: map[string][]byte{}}
	if _, err := c.eng.checkpoint(ctx, mem, true, true); err != nil {
		t.Fatal(err)
	}
	return c, mem
}

// restored is a new engine restored from mem.
func restored(t *testing.T, mem *memClient) (*engine, error) {
	t.Helper()
	e := newEngine(createDefaultConfig())
	return e, e.restore(context.Background(), mem)
}

func stateJSON(t *testing.T, e *engine) string {
	t.Helper()
	b, err := json.Marshal([]any{e.endpoints, e.services, e.incidents, e.watermark})
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// TestCheckpointCompressed: the buckets are written as zstd frames, a
// fraction of their JSON, and restore reads back the same state.
func TestCheckpointCompressed(t *testing.T) {
	c, mem := checkpointed(t)
	var stored, frames, buckets int
	for k, v := range mem.m {
		stored += len(v)
		if strings.HasPrefix(k, string(endpointBuckets)) || strings.HasPrefix(k, string(serviceBuckets)) {
			buckets++
			if bytes.HasPrefix(v, zstdMagic) {
				frames++
			}
		}
	}
	if buckets == 0 || frames != buckets {
		t.Fatalf("%d of %d buckets written compressed", frames, buckets)
	}
	raw, err := json.Marshal(c.eng.endpoints)
	if err != nil {
		t.Fatal(err)
	}
	if stored*3 > len(raw) {
		t.Errorf("state written in %d bytes, its endpoints' JSON alone %d: want under a third", stored, len(raw))
	}
	if c.eng.storedBytes != stored {
		t.Errorf("storedBytes %d, written %d", c.eng.storedBytes, stored)
	}
	e, err := restored(t, mem)
	if err != nil {
		t.Fatal(err)
	}
	if len(e.endpoints) != 1000 || stateJSON(t, e) != stateJSON(t, c.eng) {
		t.Errorf("restored state differs from the checkpointed one (%d endpoints)", len(e.endpoints))
	}
	if e.storedBytes != stored {
		t.Errorf("restored storedBytes %d, stored %d", e.storedBytes, stored)
	}
}

// TestRestoreUncompressedState: state written before compression (plain
// JSON values) is read as it is.
func TestRestoreUncompressedState(t *testing.T) {
	c, mem := checkpointed(t)
	dec, err := zstd.NewReader(nil)
	if err != nil {
		t.Fatal(err)
	}
	defer dec.Close()
	for k, v := range mem.m {
		if bytes.HasPrefix(v, zstdMagic) {
			if mem.m[k], err = dec.DecodeAll(v, nil); err != nil {
				t.Fatal(err)
			}
		}
	}
	e, err := restored(t, mem)
	if err != nil {
		t.Fatal(err)
	}
	if stateJSON(t, e) != stateJSON(t, c.eng) {
		t.Error("state restored from plain JSON differs")
	}
}

// TestRestoreDamagedState: a damaged frame fails restore with an error
// naming the key; nothing panics.
func TestRestoreDamagedState(t *testing.T) {
	for _, tc := range []struct {
		name   string
		damage func([]byte) []byte
	}{
		{"truncated", func(v []byte) []byte { return v[:len(v)/2] }},
		{"bit flipped", func(v []byte) []byte { v = bytes.Clone(v); v[len(v)/2] ^= 0x40; return v }},
		{"magic only", func([]byte) []byte { return bytes.Clone(zstdMagic) }},
		{"trailing garbage", func(v []byte) []byte { return append(bytes.Clone(v), 1, 2, 3) }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, mem := checkpointed(t)
			key := endpointBuckets.key(bucketOf("svc-0|h0.example.com:443|default|eu"))
			if !bytes.HasPrefix(mem.m[key], zstdMagic) {
				t.Fatalf("%s not compressed", key)
			}
			mem.m[key] = tc.damage(mem.m[key])
			_, err := restored(t, mem)
			if err == nil || !strings.Contains(err.Error(), key) {
				t.Fatalf("restore: %v, want an error naming %s", err, key)
			}
		})
	}
}

// TestStateValueBound: a value that decompresses past the bound is
// refused, not allocated.
func TestStateValueBound(t *testing.T) {
	codec, err := newStateCodec()
	if err != nil {
		t.Fatal(err)
	}
	z := codec.pack(bytes.Repeat([]byte("{}"), 1<<20))
	r, err := newStateReader(1 << 20)
	if err != nil {
		t.Fatal(err)
	}
	defer r.close()
	if _, err := r.unpack("endpoints/1", z); err == nil {
		t.Fatal("2 MiB decompressed under a 1 MiB bound")
	}
	if v, err := r.unpack("endpoints/1", codec.pack(bytes.Repeat([]byte("{}"), 1<<18))); err != nil || len(v) != 1<<19 {
		t.Fatalf("512 KiB under a 1 MiB bound: %d bytes, %v", len(v), err)
	}
}

// FuzzStateValue: every value reads back as written, and any bytes read
// give a value or an error.
func FuzzStateValue(f *testing.F) {
	codec, err := newStateCodec()
	if err != nil {
		f.Fatal(err)
	}
	r, err := newStateReader(1 << 20)
	if err != nil {
		f.Fatal(err)
	}
	f.Add([]byte(`{"a":{"s":1}}`))
	f.Add(codec.pack(bytes.Repeat([]byte(`{"k":"v"},`), 100)))
	f.Add(append(bytes.Clone(zstdMagic), 0, 0, 0))
	f.Fuzz(func(t *testing.T, v []byte) {
		got, err := r.unpack("k", codec.pack(v))
		if err != nil || !bytes.Equal(got, v) {
			t.Fatalf("%q read back as %q, %v", v, got, err)
		}
		_, _ = r.unpack("k", v)
	})
}
