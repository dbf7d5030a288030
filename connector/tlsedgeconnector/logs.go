package tlsedgeconnector

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/connector/tlsedgeconnector/internal/metadata"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/periodic"
)

// windowKey: one node of one service.
type windowKey struct {
	service, env, node string
}

type window struct {
	handshakes, failed, resumed int64
	reasons                     map[string]int64
}

// logsConnector passes every record on, normalized and annotated, under a
// resource naming its service, and sends each node's window (handshakes,
// failures by reason, resumptions) every window_interval for the correlator.
type logsConnector struct {
	cfg    *Config
	next   consumer.Logs
	logger *zap.Logger

	mu      sync.Mutex
	tracker *tracker
	windows map[windowKey]*window
	start   time.Time

	ticks periodic.Flusher
}

func newLogsConnector(set connector.Settings, cfg *Config, next consumer.Logs) *logsConnector {
	l := &logsConnector{cfg: cfg, next: next, logger: set.Logger, tracker: newTracker(cfg),
		windows: map[windowKey]*window{}, start: time.Now()}
	l.ticks = periodic.Flusher{Interval: cfg.WindowInterval, Flush: l.flush, Logger: set.Logger,
		Warning: "tlsedge: a window was not accepted; it is added to the next"}
	return l
}

// Capabilities: the input is left as it came (the output is a copy), so
// that a receiver may send a refused batch again.
func (l *logsConnector) Capabilities() consumer.Capabilities {
	return consumer.Capabilities{MutatesData: false}
}

func (l *logsConnector) Start(context.Context, component.Host) error {
	l.ticks.Start()
	return nil
}

// Shutdown flushes once more: a restart loses nothing since the last tick.
func (l *logsConnector) Shutdown(ctx context.Context) error { return l.ticks.Stop(ctx) }

func (l *logsConnector) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	out := l.annotate(ld)
	return l.next.ConsumeLogs(ctx, out)
}

func (l *logsConnector) annotate(ld plog.Logs) plog.Logs {
	now := time.Now()
	out := plog.NewLogs()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		groups := map[resKey]plog.ScopeLogs{}
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			sl := rl.ScopeLogs().At(j)
			for k := 0; k < sl.LogRecords().Len(); k++ {
				lr := sl.LogRecords().At(k)
				o := l.tracker.observeRecord(rl.Resource().Attributes(), lr, now)
				l.window(&o)
				rk := resKey{o.service, o.env}
				dst, ok := groups[rk]
				if !ok {
					nrl := out.ResourceLogs().AppendEmpty()
					rl.Resource().CopyTo(nrl.Resource())
					if rk.service != "" {
						nrl.Resource().Attributes().PutStr(attrs.ServiceName, rk.service)
					}
					if rk.env != "" {
						nrl.Resource().Attributes().PutStr(attrs.DeploymentEnv, rk.env)
					}
					dst = nrl.ScopeLogs().AppendEmpty()
					sl.Scope().CopyTo(dst.Scope())
					groups[rk] = dst
				}
				// Copied, not moved: a refused batch comes again, whole.
				nlr := dst.LogRecords().AppendEmpty()
				lr.CopyTo(nlr)
				if o.h.fromBody && nlr.Timestamp() == 0 {
					if ts, ok := lineTime(o.h.time); ok {
						nlr.SetTimestamp(pcommon.NewTimestampFromTime(ts))
					}
				}
				l.annotateRecord(nlr.Attributes(), &o)
			}
		}
	}
	return out
}

// annotateRecord writes the normalized schema onto a record.
func (l *logsConnector) annotateRecord(m pcommon.Map, o *observed) {
	m.PutStr("certpulse.edge.record", o.kind.String())
	if o.kind == kindUnparsed {
		return
	}
	h := &o.h
	putIf := func(k, v string) {
		if v != "" {
			m.PutStr(k, v)
		}
	}
	// The formats' short keys, under the schema's names.
	if !o.h.fromBody {
		m.RemoveIf(func(k string, _ pcommon.Value) bool {
			_, short := shortKeys[k]
			return short
		})
	}
	m.EnsureCapacity(m.Len() + 20)
	putIf(attrs.EdgeListener, h.listener)
	putIf(attrs.ServerAddress, h.sni)
	putIf("client.address", h.client)
	putIf(attrs.EdgeConnection, h.conn)
	if h.connRequests > 0 {
		m.PutInt(attrs.EdgeConnectionRequests, int64(h.connRequests))
	}
	putIf("http.request.method", h.method)
	putIf("http.response.status_code", h.status)
	putIf("user_agent.original", h.userAgent)
	putIf(attrs.EdgeClientCiphers, h.rawCiphers)
	putIf(attrs.EdgeClientGroups, h.rawGroups)
	putIf(attrs.EdgeTLSFailure, h.failure)
	if o.kind == kindOther {
		return
	}
	putIf(attrs.TLSProtocolVersion, h.version)
	putIf(attrs.TLSCipher, h.cipher)
	putIf(attrs.TLSCurve, h.group)
	putIf(attrs.EdgeNode, h.node)
	if o.kind != kindFailure {
		m.PutBool(attrs.TLSResumed, h.resumed) // nginx logs "r" or "."
		m.PutBool(attrs.TLSEarlyData, h.early)
	}
	m.PutBool(attrs.EdgeHandshake, o.kind == kindHandshake || o.kind == kindFailure)
	if o.kind == kindRequest {
		return
	}
	if o.kind == kindFailure {
		m.PutStr(attrs.EdgeOutcome, "failure")
		m.PutStr(attrs.ReasonKey, string(h.reason))
		if ri, ok := attrs.Info(h.reason); ok {
			m.PutStr(attrs.ReasonSideKey, string(ri.Side))
		}
		return
	}
	m.PutStr(attrs.EdgeOutcome, "success")
	m.PutStr(attrs.ReasonKey, string(attrs.ReasonOK))
	if o.hrrKnown {
		m.PutBool(attrs.HelloRetry, o.hrr)
		m.PutStr(attrs.HelloRetrySource, "inferred")
	}
	if o.class != "" {
		m.PutStr(attrs.EdgeClientClass, o.class)
	}
	var fails []string
	for i, v := range o.verdicts {
		if v.fail {
			fails = append(fails, l.tracker.policies[i].name+":"+v.rule)
		}
	}
	if len(fails) > 0 {
		s := m.PutEmptySlice(attrs.PolicyFails)
		for _, f := range fails {
			s.AppendEmpty().SetStr(f)
		}
	}
}

func (l *logsConnector) window(o *observed) {
	if o.replay || (o.kind != kindHandshake && o.kind != kindFailure) {
		return
	}
	l.count(windowKey{o.service, o.env, o.h.node}, o)
	if o.alsoListener != "" && o.kind == kindHandshake {
		l.count(windowKey{o.alsoListener, o.env, o.h.node}, o)
	}
}

func (l *logsConnector) count(k windowKey, o *observed) {
	w := l.windows[k]
	if w == nil {
		w = &window{reasons: map[string]int64{}}
		l.windows[k] = w
	}
	w.handshakes++
	switch {
	case o.kind == kindFailure:
		w.failed++
		w.reasons[string(o.h.reason)]++
	case o.h.resumed:
		w.resumed++
	}
}

// flush sends one window record per node that saw a handshake.
func (l *logsConnector) flush(ctx context.Context) error {
	l.mu.Lock()
	windows, start, end := l.windows, l.start, time.Now()
	l.windows, l.start = map[windowKey]*window{}, end
	l.mu.Unlock()
	if len(windows) == 0 {
		return nil
	}
	ld := windowLogs(windows, start, end)
	if err := l.next.ConsumeLogs(ctx, ld); err != nil {
		l.mu.Lock()
		for k, w := range windows { // nothing lost: back into the next window
			cur := l.windows[k]
			if cur == nil {
				l.windows[k] = w
				continue
			}
			cur.handshakes += w.handshakes
			cur.failed += w.failed
			cur.resumed += w.resumed
			for r, n := range w.reasons {
				cur.reasons[r] += n
			}
		}
		l.start = start
		l.mu.Unlock()
		return err
	}
	return nil
}

// windowLogs builds the window records (pure).
func windowLogs(windows map[windowKey]*window, start, end time.Time) plog.Logs {
	keys := make([]windowKey, 0, len(windows))
	for k := range windows {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		a, b := keys[i], keys[j]
		if a.service != b.service {
			return a.service < b.service
		}
		if a.env != b.env {
			return a.env < b.env
		}
		return a.node < b.node
	})
	ld := plog.NewLogs()
	var sl plog.ScopeLogs
	var cur resKey
	for i, k := range keys {
		if rk := (resKey{k.service, k.env}); i == 0 || rk != cur {
			cur = rk
			rl := ld.ResourceLogs().AppendEmpty()
			if k.service != "" {
				rl.Resource().Attributes().PutStr(attrs.ServiceName, k.service)
			}
			if k.env != "" {
				rl.Resource().Attributes().PutStr(attrs.DeploymentEnv, k.env)
			}
			sl = rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(metadata.ScopeName)
		}
		w := windows[k]
		lr := sl.LogRecords().AppendEmpty()
		lr.SetEventName(attrs.EventEdgeWindow)
		lr.SetTimestamp(pcommon.NewTimestampFromTime(end))
		lr.SetObservedTimestamp(pcommon.NewTimestampFromTime(end))
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
		lr.SetSeverityText("INFO")
		m := lr.Attributes()
		m.PutStr(attrs.EdgeNode, k.node)
		m.PutStr(attrs.EdgeWindowStart, start.UTC().Format(time.RFC3339Nano))
		m.PutInt(attrs.EdgeHandshakes, w.handshakes)
		m.PutInt(attrs.EdgeHandshakesFailed, w.failed)
		m.PutInt(attrs.EdgeHandshakesResumed, w.resumed)
		rm := m.PutEmptyMap(attrs.EdgeFailureReasons)
		for r, n := range w.reasons {
			rm.PutInt(r, n)
		}
		lr.Body().SetStr(windowBody(k.node, w))
	}
	return ld
}

func windowBody(node string, w *window) string {
	var b strings.Builder
	fmt.Fprintf(&b, "edge node %s: %d handshakes, %d failed", orDash(node), w.handshakes, w.failed)
	if len(w.reasons) > 0 {
		rs := make([]string, 0, len(w.reasons))
		for r, n := range w.reasons {
			rs = append(rs, fmt.Sprintf("%s %d", r, n))
		}
		sort.Strings(rs)
		fmt.Fprintf(&b, " (%s)", strings.Join(rs, ", "))
	}
	if ok := w.handshakes - w.failed; ok > 0 {
		fmt.Fprintf(&b, ", %.0f%% of the successful ones resumed", 100*float64(w.resumed)/float64(ok))
	}
	return b.String()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
