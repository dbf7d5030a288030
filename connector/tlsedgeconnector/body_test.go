package tlsedgeconnector

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sort"
	"testing"
	"time"

	"go.opentelemetry.io/collector/connector/connectortest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// nginxLine is one certpulse_tls access-log line's keys (certpulse-tls.conf).
func nginxLine(conn, req int, extra ...string) map[string]string {
	m := map[string]string{"time": "2026-12-01T10:00:00+00:00", "node": "n1", "listener": "127.0.0.5:443",
		"client": "192.0.2.7", "connection": fmt.Sprint(conn), "connection_requests": fmt.Sprint(req),
		"sni": "shop.example.com", "protocol": "TLSv1.3", "cipher": "TLS_AES_256_GCM_SHA384", "curve": "prime256v1",
		"curves": "X25519:prime256v1", "ciphers": "TLS_AES_256_GCM_SHA384:ECDHE-RSA-AES128-SHA", "resumed": ".",
		"early_data": "", "method": "GET", "status": "200", "user_agent": "curl/8.5 \"quoted\" \u00e9"}
	for i := 0; i+1 < len(extra); i += 2 {
		m[extra[i]] = extra[i+1]
	}
	return m
}

// TestBodyAsParsed: a line handed over as its body (the shipped overlays,
// no json_parser) is counted, windowed and passed on exactly as the same
// line parsed into attributes by json_parser was; the body path also sets
// the record's time from the line.
func TestBodyAsParsed(t *testing.T) {
	lines := []map[string]string{
		nginxLine(1, 1), nginxLine(1, 2), nginxLine(1, 3),
		nginxLine(2, 1, "resumed", "r", "early_data", "1", "method", "POST"),
		nginxLine(3, 1, "protocol", "TLSv1.2", "cipher", "ECDHE-RSA-AES128-SHA"),
		nginxLine(4, 1, "sni", "other.example.org", "protocol", "", "cipher", "", "curve", ""), // plain HTTP
	}
	errorLine := map[string]any{attrs.EdgeProxy: "nginx", attrs.EdgeLog: "error", attrs.EdgeListener: "127.0.0.5:443",
		attrs.EdgeTLSFailure: "tlsv1 alert unknown ca", "client.address": "127.0.0.1"}
	build := func(asBody bool) plog.Logs {
		ld := plog.NewLogs()
		lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
		obs := pcommon.NewTimestampFromTime(time.Unix(1764583200, 0))
		for i, l := range lines {
			lr := lrs.AppendEmpty()
			lr.SetObservedTimestamp(obs + pcommon.Timestamp(i))
			b, _ := json.Marshal(l)
			lr.Body().SetStr(string(b))
			lr.Attributes().PutStr(attrs.EdgeProxy, "nginx")
			lr.Attributes().PutStr(attrs.EdgeLog, "access")
			if !asBody { // what json_parser (with its timestamp) made of it
				for k, v := range l {
					lr.Attributes().PutStr(k, v)
				}
				ts, _ := lineTime(l["time"])
				lr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
			}
		}
		lr := lrs.AppendEmpty()
		_ = lr.Attributes().FromRaw(errorLine)
		lr = lrs.AppendEmpty()
		lr.Body().SetStr(`{"time":"2026-12-01T10:00:00+00:00","node":"n1","protocol":"TLSv1.3`) // truncated
		lr.Attributes().PutStr(attrs.EdgeProxy, "nginx")
		lr = lrs.AppendEmpty()
		lr.Body().SetStr(`{"sni":{"nested":"x"}}`)
		lr.Attributes().PutStr(attrs.EdgeProxy, "nginx")
		return ld
	}
	run := func(ld plog.Logs) (map[string]int64, []string) {
		cfg := createDefaultConfig()
		cfg.Policies = []PolicyConfig{{Name: "modern", Preset: "modern"}}
		cfg.Services = []ServiceConfig{{Name: "shop", ServerNames: []string{"*.example.com"}, Listeners: []string{"127.0.0.5:443"}}}
		ctx := context.Background()
		msink, lsink := new(consumertest.MetricsSink), new(consumertest.LogsSink)
		set := connectortest.NewNopSettings(NewFactory().Type())
		mc, lc := newMetricsConnector(set, cfg, msink), newLogsConnector(set, cfg, lsink)
		if err := mc.ConsumeLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
		if err := lc.ConsumeLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
		if err := mc.flush(ctx); err != nil {
			t.Fatal(err)
		}
		if err := lc.flush(ctx); err != nil {
			t.Fatal(err)
		}
		var recs []string
		for _, l := range lsink.AllLogs() {
			forEach(l, func(res pcommon.Map, lr plog.LogRecord) {
				a := lr.Attributes().AsRaw()
				delete(a, "time") // json_parser leaves the line's time as an attribute too
				if lr.EventName() == attrs.EventEdgeWindow {
					delete(a, attrs.EdgeWindowStart)
					lr.SetTimestamp(0) // the flush's time
				}
				svc := ""
				if v, ok := res.Get(attrs.ServiceName); ok {
					svc = v.AsString()
				}
				recs = append(recs, fmt.Sprintf("%s %s t=%d %v", svc, lr.EventName(), lr.Timestamp(), sortedMap(a)))
			})
		}
		sort.Strings(recs)
		return sums(msink.AllMetrics()), recs
	}
	wantM, wantL := run(build(false))
	gotM, gotL := run(build(true))
	if fmt.Sprint(gotM) != fmt.Sprint(wantM) {
		t.Errorf("metrics from bodies:\n%v\nfrom attributes:\n%v", gotM, wantM)
	}
	if len(gotL) != len(wantL) {
		t.Fatalf("records from bodies: %d, from attributes %d", len(gotL), len(wantL))
	}
	for i := range gotL {
		if gotL[i] != wantL[i] {
			t.Errorf("record from body:\n%s\nfrom attributes:\n%s", gotL[i], wantL[i])
		}
	}
	for k, want := range map[string]int64{
		"tlsedge.handshakes": 4, "tlsedge.records|record_kind=unparsed": 2, "tlsedge.records|record_kind=request": 2,
		"tlsedge.records|record_kind=other": 1, "tlsedge.handshakes|reason=unknown_ca": 1,
	} {
		if gotM[k] != want {
			t.Errorf("%s = %d, want %d", k, gotM[k], want)
		}
	}
}

func sortedMap(m map[string]any) string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	s := ""
	for _, k := range keys {
		s += fmt.Sprintf("%s=%v ", k, m[k])
	}
	return s
}

// TestShortKeysRead: every short key of shortKeys is read as its schema
// name is (the reader's switch names both).
func TestShortKeysRead(t *testing.T) {
	for short, long := range shortKeys {
		var a, b recordReader
		a.set(short, "1")
		b.set(long, "1")
		if !reflect.DeepEqual(a, b) || reflect.DeepEqual(a, recordReader{}) {
			t.Errorf("%q read as %+v, %q as %+v", short, a, long, b)
		}
	}
}
