package tb

import (
	"compress/gzip"
	"io"
	"net/http"
	"sort"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/certpulse/certpulse/internal/testkit/logtest"
)

// LogSink is an OTLP/HTTP logs receiver (protobuf, gzip or not) standing in
// for Loki: it keeps every record under the first segment of the request
// path (an exporter endpoint of .../<name>/otlp files its records under
// <name>). Metrics (sums and gauges) are kept as the latest value of each
// series (Mimir's stand-in for cumulative counters).
type LogSink struct {
	mu      sync.Mutex
	recs    map[string][]logtest.Record
	metrics map[string]series
}

type series struct {
	name   string
	labels map[string]string
	value  float64
}

// NewLogSink returns an empty sink; serve it with httptest.NewServer.
func NewLogSink() *LogSink {
	return &LogSink{recs: map[string][]logtest.Record{}, metrics: map[string]series{}}
}

// Metric sums the latest values of name's series whose labels (data point
// attributes plus the resource's service.name) include every pair of match.
func (s *LogSink) Metric(name string, match map[string]string) float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	var v float64
	for _, se := range s.metrics {
		if se.name != name {
			continue
		}
		ok := true
		for k, want := range match {
			if se.labels[k] != want {
				ok = false
				break
			}
		}
		if ok {
			v += se.value
		}
	}
	return v
}

// Series returns the label sets of name's series.
func (s *LogSink) Series(name string) []map[string]string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []map[string]string
	for _, se := range s.metrics {
		if se.name == name {
			out = append(out, se.labels)
		}
	}
	return out
}

func (s *LogSink) addMetrics(md pmetric.Metrics) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for i := 0; i < md.ResourceMetrics().Len(); i++ {
		rm := md.ResourceMetrics().At(i)
		svc := ""
		if v, ok := rm.Resource().Attributes().Get("service.name"); ok {
			svc = v.AsString()
		}
		for j := 0; j < rm.ScopeMetrics().Len(); j++ {
			ms := rm.ScopeMetrics().At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				var dps pmetric.NumberDataPointSlice
				switch m.Type() {
				case pmetric.MetricTypeSum:
					dps = m.Sum().DataPoints()
				case pmetric.MetricTypeGauge:
					dps = m.Gauge().DataPoints()
				default:
					continue
				}
				for d := 0; d < dps.Len(); d++ {
					dp := dps.At(d)
					labels := map[string]string{}
					if svc != "" {
						labels["service.name"] = svc
					}
					dp.Attributes().Range(func(k string, v pcommon.Value) bool {
						labels[k] = v.AsString()
						return true
					})
					keys := make([]string, 0, len(labels))
					for k, v := range labels {
						keys = append(keys, k+"="+v)
					}
					sort.Strings(keys)
					id := m.Name() + "{" + strings.Join(keys, ",") + "}"
					v := dp.DoubleValue()
					if dp.ValueType() == pmetric.NumberDataPointValueTypeInt {
						v = float64(dp.IntValue())
					}
					s.metrics[id] = series{name: m.Name(), labels: labels, value: v}
				}
			}
		}
	}
}

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
	if strings.HasSuffix(r.URL.Path, "/v1/metrics") {
		req := pmetricotlp.NewExportRequest()
		if err := req.UnmarshalProto(body); err != nil {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		s.addMetrics(req.Metrics())
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
