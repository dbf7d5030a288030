package tlsedgeconnector

import (
	"context"
	"errors"
	"testing"
	"time"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// refuseFirst refuses the first n batches (a correlator under its memory
// limit, a full queue), then passes them to the sink.
type refuseFirst struct {
	n    int
	sink *consumertest.LogsSink
}

func (r *refuseFirst) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (r *refuseFirst) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if r.n > 0 {
		r.n--
		return errors.New("refused")
	}
	return r.sink.ConsumeLogs(ctx, ld)
}

// stamped sets the read time filelog gives every entry (distinct per line).
func stamped(ld plog.Logs) plog.Logs {
	base := time.Now()
	i := 0
	forEach(ld, func(_ pcommon.Map, lr plog.LogRecord) {
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(base.Add(time.Duration(i) * time.Microsecond)))
		i++
	})
	return ld
}

// TestRetriedBatchCountedOnce: filelog (stanza) sends a refused batch again,
// the same records; the connector counts each record once whatever the
// retries, and passes every record on each time.
func TestRetriedBatchCountedOnce(t *testing.T) {
	cfg := createDefaultConfig()
	ctx := context.Background()
	msink, lsink := new(consumertest.MetricsSink), new(consumertest.LogsSink)
	set := connectortest.NewNopSettings(NewFactory().Type())
	mc := newMetricsConnector(set, cfg, msink)
	next := &refuseFirst{n: 2, sink: lsink}
	lc := newLogsConnector(set, cfg, next)
	ld := stamped(nginxLogs(
		access(1, 1), access(1, 2), access(2, 1),
		map[string]any{attrs.EdgeProxy: "nginx", attrs.EdgeLog: "error", attrs.EdgeListener: "127.0.0.5:443", attrs.EdgeTLSFailure: "no shared cipher", "client.address": "127.0.0.9"},
		// Two identical error lines (same client, same second) are two
		// failures: filelog read them at different instants.
		map[string]any{attrs.EdgeProxy: "nginx", attrs.EdgeLog: "error", attrs.EdgeListener: "127.0.0.5:443", attrs.EdgeTLSFailure: "no shared cipher", "client.address": "127.0.0.9"},
	))
	for attempt := 0; attempt < 3; attempt++ {
		// The pipeline's fan-out gives the metrics side its own copy.
		clone := plog.NewLogs()
		ld.CopyTo(clone)
		err := mc.ConsumeLogs(ctx, clone)
		if err == nil {
			err = lc.ConsumeLogs(ctx, ld)
		}
		if (err == nil) != (attempt == 2) {
			t.Fatalf("attempt %d: %v", attempt, err)
		}
	}
	if n := lsink.LogRecordCount(); n != 5 {
		t.Fatalf("%d records passed on after the retries, want all 5", n)
	}
	if err := mc.flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := sums(msink.AllMetrics())
	if got["tlsedge.handshakes"] != 4 || got["tlsedge.handshakes|outcome=failure"] != 2 {
		t.Errorf("handshakes %d (failures %d), want 4 (2) after three attempts of one batch", got["tlsedge.handshakes"], got["tlsedge.handshakes|outcome=failure"])
	}
	if err := lc.flush(ctx); err != nil {
		t.Fatal(err)
	}
	var hs, failed int64
	for _, l := range lsink.AllLogs() {
		forEach(l, func(_ pcommon.Map, lr plog.LogRecord) {
			if lr.EventName() == attrs.EventEdgeWindow {
				v, _ := lr.Attributes().Get(attrs.EdgeHandshakes)
				f, _ := lr.Attributes().Get(attrs.EdgeHandshakesFailed)
				hs, failed = hs+v.Int(), failed+f.Int()
			}
		})
	}
	if hs != 4 || failed != 2 {
		t.Errorf("windows count %d handshakes (%d failed), want 4 (2)", hs, failed)
	}
	// The records kept their kind on the retry: the connection's second
	// request is a request, its first a handshake.
	kinds := map[string]int{}
	forEach(lsink.AllLogs()[0], func(_ pcommon.Map, lr plog.LogRecord) {
		v, _ := lr.Attributes().Get("certpulse.edge.record")
		kinds[v.AsString()]++
	})
	if kinds["handshake"] != 2 || kinds["request"] != 1 || kinds["failure"] != 2 {
		t.Errorf("record kinds after the retries %v, want 2 handshakes, 1 request, 2 failures", kinds)
	}
}
