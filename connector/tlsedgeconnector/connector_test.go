package tlsedgeconnector

import (
	"context"
	"fmt"
	"testing"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/certpulse/certpulse/internal/attrs"
)

func TestTopNamesRotate(t *testing.T) {
	tn := newTopNames(2)
	for _, n := range []string{"a", "b", "c", "c", "c"} {
		tn.label(n)
	}
	if got := tn.label("c"); got != other {
		t.Fatalf("a third name beyond the bound: %q, want other", got)
	}
	if ev := tn.rotate(); len(ev) != 1 || ev[0] != "b" && ev[0] != "a" {
		t.Fatalf("rotate evicted %v, want one of a, b (c was busier)", ev)
	}
	if got := tn.label("c"); got != "c" {
		t.Fatalf("after rotate c = %q", got)
	}
	if len(tn.kept) != 2 {
		t.Fatalf("kept %v", tn.kept)
	}
}

func TestConnTableBounded(t *testing.T) {
	ct := newConnTable(10, time.Minute)
	now := time.Now()
	if !ct.first("x", now) || ct.first("x", now.Add(time.Second)) {
		t.Fatal("x: first then not first")
	}
	if !ct.first("x", now.Add(2*time.Minute)) {
		t.Fatal("x after idle: a new connection")
	}
	for i := 0; i < 100; i++ {
		ct.first(fmt.Sprint(i), now.Add(time.Duration(i)*time.Millisecond))
	}
	if len(ct.last) > 11 {
		t.Fatalf("table grew to %d", len(ct.last))
	}
}

// nginxLogs builds access and error records as the nginx overlay leaves them.
func nginxLogs(recs ...map[string]any) plog.Logs {
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	for _, r := range recs {
		lr := lrs.AppendEmpty()
		if body, ok := r["body"]; ok {
			lr.Body().SetStr(body.(string))
			delete(r, "body")
		}
		_ = lr.Attributes().FromRaw(r)
	}
	return ld
}

func access(conn, req int, extra ...any) map[string]any {
	m := map[string]any{attrs.EdgeProxy: "nginx", attrs.EdgeNode: "n1", attrs.EdgeListener: "127.0.0.5:443",
		attrs.EdgeConnection: fmt.Sprint(conn), attrs.EdgeConnectionRequests: fmt.Sprint(req),
		attrs.ServerAddress: "shop.example.com", attrs.TLSProtocolVersion: "1.3", attrs.TLSCipher: "TLS_AES_256_GCM_SHA384",
		attrs.TLSCurve: "prime256v1", attrs.TLSResumed: "false", attrs.TLSEarlyData: "false", "http.request.method": "GET",
		attrs.EdgeClientGroups: "X25519:prime256v1", attrs.EdgeClientCiphers: "TLS_AES_256_GCM_SHA384:ECDHE-RSA-AES128-SHA"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i].(string)] = extra[i+1]
	}
	return m
}

func TestConnectorCountsConnectionsOnce(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Policies = []PolicyConfig{{Name: "modern", Preset: "modern"}, {Name: "intermediate", Preset: "intermediate"}}
	cfg.Services = []ServiceConfig{{Name: "shop", ServerNames: []string{"*.example.com"}, Listeners: []string{"127.0.0.5:443"}}}
	ctx := context.Background()
	msink, lsink := new(consumertest.MetricsSink), new(consumertest.LogsSink)
	set := connectortest.NewNopSettings(NewFactory().Type())
	mc := newMetricsConnector(set, cfg, msink)
	lc := newLogsConnector(set, cfg, lsink)
	ld := nginxLogs(
		access(1, 1), access(1, 2), access(1, 3), // one connection, three requests
		access(2, 1, attrs.TLSResumed, "true", attrs.TLSEarlyData, "true", "http.request.method", "POST"),
		access(3, 1, attrs.TLSProtocolVersion, "TLSv1.2", attrs.TLSCipher, "ECDHE-RSA-AES128-SHA", attrs.TLSCurve, "prime256v1"),
		map[string]any{attrs.EdgeProxy: "nginx", attrs.EdgeLog: "error", attrs.EdgeListener: "127.0.0.5:443", attrs.EdgeTLSFailure: "tlsv1 alert unknown ca", "client.address": "127.0.0.1"},
		map[string]any{"body": "garbage {{{", attrs.EdgeProxy: "nginx"},
	)
	for _, c := range []interface {
		ConsumeLogs(context.Context, plog.Logs) error
	}{mc, lc} {
		if err := c.ConsumeLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
	}
	if err := mc.flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := sums(msink.AllMetrics())
	for k, want := range map[string]int64{
		"tlsedge.handshakes":                     4,
		"tlsedge.handshakes|outcome=failure":     1,
		"tlsedge.handshakes|reason=unknown_ca":   1,
		"tlsedge.handshakes|resumed=true":        1,
		"tlsedge.handshakes|node=n1":             4, // the error line learns its node from the listener
		"tlsedge.hello_retries":                  2, // TLS 1.3 with P256 chosen, X25519 offered first
		"tlsedge.early_data.non_idempotent":      1,
		"tlsedge.records|record_kind=unparsed":   1,
		"tlsedge.records|record_kind=request":    2,
		"tlsedge.policy.would_fail":              2, // modern: the TLS 1.2 client (version); intermediate: its CBC-only 1.2 offer (cipher)
		"tlsedge.policy.would_fail|rule=version": 1,
	} {
		if got[k] != want {
			t.Errorf("%s = %d, want %d", k, got[k], want)
		}
	}
	if err := lc.flush(ctx); err != nil {
		t.Fatal(err)
	}
	var windows []plog.LogRecord
	for _, l := range lsink.AllLogs() {
		forEach(l, func(res pcommon.Map, lr plog.LogRecord) {
			if lr.EventName() == attrs.EventEdgeWindow {
				windows = append(windows, lr)
				if s, _ := res.Get(attrs.ServiceName); s.AsString() != "shop" {
					t.Errorf("window service %q", s.AsString())
				}
			}
		})
	}
	if len(windows) != 1 {
		t.Fatalf("windows: %d, want 1 (one node)", len(windows))
	}
	w := windows[0].Attributes().AsRaw()
	if w[attrs.EdgeHandshakes] != int64(4) || w[attrs.EdgeHandshakesFailed] != int64(1) || w[attrs.EdgeHandshakesResumed] != int64(1) {
		t.Errorf("window %v", w)
	}
}

// sums totals every data point by metric, and by metric|short attr=value.
func sums(all []pmetric.Metrics) map[string]int64 {
	out := map[string]int64{}
	last := all[len(all)-1]
	for i := 0; i < last.ResourceMetrics().Len(); i++ {
		sms := last.ResourceMetrics().At(i).ScopeMetrics()
		for j := 0; j < sms.Len(); j++ {
			ms := sms.At(j).Metrics()
			for k := 0; k < ms.Len(); k++ {
				m := ms.At(k)
				dps := m.Sum().DataPoints()
				for d := 0; d < dps.Len(); d++ {
					dp := dps.At(d)
					out[m.Name()] += dp.IntValue()
					dp.Attributes().Range(func(k string, v pcommon.Value) bool {
						out[m.Name()+"|"+shortKey(k)+"="+v.AsString()] += dp.IntValue()
						return true
					})
				}
			}
		}
	}
	return out
}

func shortKey(k string) string {
	return map[string]string{attrs.EdgeOutcome: "outcome", attrs.ReasonKey: "reason", attrs.TLSResumed: "resumed",
		attrs.EdgeNode: "node", "certpulse.edge.record": "record_kind", attrs.PolicyRule: "rule"}[k]
}

func forEach(ld plog.Logs, f func(res pcommon.Map, lr plog.LogRecord)) {
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				f(rl.Resource().Attributes(), lrs.At(k))
			}
		}
	}
}

// TestFailureBeforeItsNode: nginx's error log names no node and may be read
// before the access log that does: the failure waits for the flush and
// takes its listener's node.
func TestFailureBeforeItsNode(t *testing.T) {
	cfg := createDefaultConfig()
	msink := new(consumertest.MetricsSink)
	mc := newMetricsConnector(connectortest.NewNopSettings(NewFactory().Type()), cfg, msink)
	ctx := context.Background()
	fail := map[string]any{attrs.EdgeProxy: "nginx", attrs.EdgeListener: "127.0.0.5:443", attrs.EdgeTLSFailure: "no shared cipher"}
	if err := mc.ConsumeLogs(ctx, nginxLogs(fail)); err != nil {
		t.Fatal(err)
	}
	if err := mc.ConsumeLogs(ctx, nginxLogs(access(1, 1))); err != nil {
		t.Fatal(err)
	}
	if err := mc.flush(ctx); err != nil {
		t.Fatal(err)
	}
	got := sums(msink.AllMetrics())
	if got["tlsedge.handshakes|node=n1"] != 2 || got["tlsedge.handshakes|reason=cipher_mismatch"] != 1 {
		t.Errorf("the failure did not take node n1: %v", got)
	}
}

// TestShutdownFlushes: what was counted since the last tick goes out at
// shutdown (metrics totals and the window), not lost.
func TestShutdownFlushes(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Interval = time.Hour
	msink, lsink := new(consumertest.MetricsSink), new(consumertest.LogsSink)
	set := connectortest.NewNopSettings(NewFactory().Type())
	mc, lc := newMetricsConnector(set, cfg, msink), newLogsConnector(set, cfg, lsink)
	ctx := context.Background()
	for _, c := range []interface {
		Start(context.Context, component.Host) error
		ConsumeLogs(context.Context, plog.Logs) error
		Shutdown(context.Context) error
	}{mc, lc} {
		if err := c.Start(ctx, componenttest.NewNopHost()); err != nil {
			t.Fatal(err)
		}
		if err := c.ConsumeLogs(ctx, nginxLogs(access(1, 1))); err != nil {
			t.Fatal(err)
		}
		if err := c.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := sums(msink.AllMetrics())["tlsedge.handshakes"]; got != 1 {
		t.Errorf("handshakes after shutdown: %d", got)
	}
	windows := 0
	for _, l := range lsink.AllLogs() {
		forEach(l, func(_ pcommon.Map, lr plog.LogRecord) {
			if lr.EventName() == attrs.EventEdgeWindow {
				windows++
			}
		})
	}
	if windows != 1 {
		t.Errorf("windows after shutdown: %d", windows)
	}
}

// TestShutdownCountsPendingFailures: a failure still waiting for its
// listener's node when the collector stops is counted (without a node) in
// the last flush, not dropped.
func TestShutdownCountsPendingFailures(t *testing.T) {
	cfg := createDefaultConfig()
	cfg.Interval = time.Hour
	msink := new(consumertest.MetricsSink)
	mc := newMetricsConnector(connectortest.NewNopSettings(NewFactory().Type()), cfg, msink)
	ctx := context.Background()
	if err := mc.Start(ctx, componenttest.NewNopHost()); err != nil {
		t.Fatal(err)
	}
	fail := map[string]any{attrs.EdgeProxy: "nginx", attrs.EdgeListener: "127.0.0.9:443", attrs.EdgeTLSFailure: "no shared cipher"}
	if err := mc.ConsumeLogs(ctx, nginxLogs(fail)); err != nil {
		t.Fatal(err)
	}
	if err := mc.Shutdown(ctx); err != nil {
		t.Fatal(err)
	}
	if len(msink.AllMetrics()) == 0 {
		t.Fatal("nothing flushed at shutdown")
	}
	if got := sums(msink.AllMetrics())["tlsedge.handshakes|reason=cipher_mismatch"]; got != 1 {
		t.Errorf("pending failure at shutdown: counted %d, want 1", got)
	}
}
