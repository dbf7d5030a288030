package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"bytes"
	"fmt"

	"github.com/klauspost/compress/zstd"
)

// The persisted values (a bucket of endpoints, the incidents, ...) are JSON
// compressed as one zstd frame each. The storage extension's bbolt file is
// mapped into the agent's memory and every page a rewrite reads stays
// resident, so the file's size is the agent's RSS: 100,000 endpoints'
// JSON is 30-34 MB, compressed 12.6 MB when every endpoint has its own
// certificate (BenchmarkStatePerEndpoint/chain=distinct) and far less when
// they share one.
//
// A value is read by its first bytes: a zstd frame's magic number, or JSON
// as written before compression (a JSON text never begins with 0x28).

// zstdMagic begins every zstd frame (RFC 8878, 3.1.1).
var zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}

// minPackLen: shorter values (meta) are written as they are; a frame's
// header and checksum would save nothing.
const minPackLen = 128

// maxStateValue bounds a persisted value once decompressed: a file altered
// or damaged on disk fails restore with a clear error instead of taking
// the agent's memory. A bucket of 1/256 of 1,000,000 endpoints is about
// 1.3 MB.
const maxStateValue = 256 << 20

// stateCodec compresses values at checkpoints. Its encoder is safe for
// concurrent use; it is created with the first checkpoint.
type stateCodec struct{ enc *zstd.Encoder }

func newStateCodec() (*stateCodec, error) {
	// Fastest level, one goroutine, small window: a value is 0.1-1 MB and
	// compresses in about 1 ms (200 MB/s) with 2.7x on distinct chains.
	enc, err := zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithEncoderConcurrency(1),
		zstd.WithLowerEncoderMem(true), zstd.WithWindowSize(1<<18), zstd.WithEncoderCRC(true))
	if err != nil {
		return nil, fmt.Errorf("state compressor: %w", err)
	}
	return &stateCodec{enc: enc}, nil
}

// pack is v as written: a zstd frame, or v itself when it is short or did
// not compress (and cannot be taken for a frame).
func (c *stateCodec) pack(v []byte) []byte {
	framed := bytes.HasPrefix(v, zstdMagic)
	if len(v) < minPackLen && !framed {
		return v
	}
	z := c.enc.EncodeAll(v, make([]byte, 0, len(v)/2))
	if len(z) >= len(v) && !framed {
		return v
	}
	return z
}

// stateReader decompresses values at restore.
type stateReader struct{ dec *zstd.Decoder }

// newStateReader: a value decompressing to more than maxDecoded bytes is
// refused.
func newStateReader(maxDecoded uint64) (*stateReader, error) {
	dec, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderLowmem(true), zstd.WithDecoderMaxMemory(maxDecoded))
	if err != nil {
		return nil, fmt.Errorf("state decompressor: %w", err)
	}
	return &stateReader{dec: dec}, nil
}

func (r *stateReader) close() { r.dec.Close() }

// unpack is the JSON of a persisted value: v decompressed when it is a
// zstd frame, v itself otherwise (state written before compression).
func (r *stateReader) unpack(key string, v []byte) ([]byte, error) {
	if !bytes.HasPrefix(v, zstdMagic) {
		return v, nil
	}
	out, err := r.dec.DecodeAll(v, nil)
	if err != nil {
		return nil, fmt.Errorf("correlator state %s: decompressing %d bytes: %w", key, len(v), err)
	}
	return out, nil
}
