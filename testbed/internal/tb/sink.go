package tb

import (
	"compress/gzip"
	"io"
	"net/http"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/plog/plogotlp"

	"github.com/certpulse/certpulse/internal/logtest"
)

// LogSink is an OTLP/HTTP logs receiver (protobuf, gzip or not) standing in
// for Loki: it keeps every record under the first segment of the request
// path (an exporter endpoint of .../<name>/otlp files its records under
// <name>). Other OTLP paths (metrics) are answered 200 and dropped.
type LogSink struct {
	mu   sync.Mutex
	recs map[string][]logtest.Record
}

// NewLogSink returns an empty sink; serve it with httptest.NewServer.
func NewLogSink() *LogSink { return &LogSink{recs: map[string][]logtest.Record{}} }

func (s *LogSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		in = zr
	}
	body, err := io.ReadAll(io.LimitReader(in, 64<<20))
	if err != nil {
		w.WriteHeader(http.StatusBadRequest)
		return
	}
	if strings.HasSuffix(r.URL.Path, "/v1/logs") {
		req := plogotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		name := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)[0]
		recs := logtest.Records(req.Logs())
		s.mu.Lock()
		s.recs[name] = append(s.recs[name], recs...)
		s.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	w.WriteHeader(http.StatusOK)
}

// ByName returns a copy of the records, by path segment.
func (s *LogSink) ByName() map[string][]logtest.Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string][]logtest.Record{}
	for k, v := range s.recs {
		out[k] = append([]logtest.Record(nil), v...)
	}
	return out
}

// All returns every record received.
func (s *LogSink) All() []logtest.Record {
	var out []logtest.Record
	for _, v := range s.ByName() {
		out = append(out, v...)
	}
	return out
}
