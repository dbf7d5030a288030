package tlsedgeconnector

import (
	"context"
	"sort"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/connector/tlsedgeconnector/internal/metadata"
	"github.com/certpulse/certpulse/internal/periodic"
)

// resKey is a metric resource: the service and its environment.
type resKey struct{ service, env string }

type hsKey struct {
	res                         resKey
	node, listener, sni, reason string
	version, cipher, group      string
	failed, resumed, early      bool
}

type hrrKey struct {
	res                 resKey
	node, listener, sni string
}

type earlyKey struct {
	res                         resKey
	node, listener, sni, method string
}

type recKey struct {
	proxy string
	kind  kind
}

type pendKey struct {
	proxy string
	k     hsKey
}

type pend struct {
	n   int64
	age int
}

type policyKey struct {
	policy, class, version string
	verdict                metadata.AttributeVerdict
	rule                   string
}

// cell is one series' cumulative total and when it last moved.
type cell struct {
	n    int64
	last time.Time
}

// series is one metric's totals by label set. Bounded by its owner; a
// series that has not moved for series_idle is forgotten at a flush (its
// next sample starts a new counter, which rate() reads as a reset).
type series[K comparable] map[K]*cell

func (s series[K]) add(k K, n int64, now time.Time) {
	c := s[k]
	if c == nil {
		c = &cell{}
		s[k] = c
	}
	c.n += n
	c.last = now
}

func (s series[K]) has(k K) bool { _, ok := s[k]; return ok }

func (s series[K]) forget(idleSince time.Time) {
	for k, c := range s {
		if c.last.Before(idleSince) {
			delete(s, k)
		}
	}
}

// counts are the cumulative totals the metrics connector emits.
type counts struct {
	handshakes series[hsKey]
	hrr        series[hrrKey]
	early      series[earlyKey]
	records    series[recKey]
	policies   series[policyKey]
	failing    series[policyKey]
}

func newCounts() counts {
	return counts{handshakes: series[hsKey]{}, hrr: series[hrrKey]{}, early: series[earlyKey]{},
		records: series[recKey]{}, policies: series[policyKey]{}, failing: series[policyKey]{}}
}

// metricsConnector counts handshakes and emits them every interval.
type metricsConnector struct {
	cfg    *Config
	next   consumer.Metrics
	logger *zap.Logger
	mb     *metadata.MetricsBuilder
	rb     *metadata.ResourceBuilder

	mu      sync.Mutex
	tracker *tracker
	c       counts
	// pending holds failures whose node is not known yet (nginx's error
	// log names none): the next flush takes it from the access log of the
	// same listener; after two flushes they count without a node.
	pending map[pendKey]*pend
	// closing: the shutdown flush counts every pending failure.
	closing bool

	ticks periodic.Flusher
}

func newMetricsConnector(set connector.Settings, cfg *Config, next consumer.Metrics) *metricsConnector {
	m := &metricsConnector{
		cfg: cfg, next: next, logger: set.Logger,
		mb:      metadata.NewMetricsBuilder(cfg.MetricsBuilderConfig, set),
		rb:      metadata.NewResourceBuilder(cfg.ResourceAttributes),
		tracker: newTracker(cfg),
		c:       newCounts(),
		pending: map[pendKey]*pend{},
	}
	m.ticks = periodic.Flusher{Interval: cfg.Interval, Flush: m.flush, Logger: set.Logger,
		Warning: "tlsedge: the metrics were not accepted; the next interval sends the totals again"}
	return m
}

func (m *metricsConnector) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }

func (m *metricsConnector) Start(context.Context, component.Host) error {
	m.ticks.Start()
	return nil
}

// Shutdown flushes once more: a restart loses nothing since the last tick.
// Failures still waiting for their node count without one.
func (m *metricsConnector) Shutdown(ctx context.Context) error {
	m.mu.Lock()
	m.closing = true
	m.mu.Unlock()
	return m.ticks.Stop(ctx)
}

func (m *metricsConnector) ConsumeLogs(_ context.Context, ld plog.Logs) error {
	now := time.Now()
	m.mu.Lock()
	defer m.mu.Unlock()
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if o := m.tracker.observeRecord(rl.Resource().Attributes(), lrs.At(k), now); !o.replay {
					m.count(o, now)
				}
			}
		}
	}
	return nil
}

func (m *metricsConnector) count(o observed, now time.Time) {
	h := &o.h
	m.c.records.add(recKey{h.proxy, o.kind}, 1, now)
	if o.kind == kindUnparsed || o.kind == kindOther {
		return
	}
	res := resKey{o.service, o.env}
	if o.earlyUnsafe {
		k := earlyKey{res, h.node, h.listener, o.sni, methodLabel(h.method)}
		if !m.c.early.has(k) && len(m.c.early) >= m.cfg.MaxSeries {
			k.listener, k.sni, k.method = other, other, other
		}
		m.c.early.add(k, 1, now)
	}
	if o.kind == kindRequest {
		return
	}
	k := hsKey{res: res, node: h.node, listener: h.listener, sni: o.sni, reason: string(o.reasonOf()),
		version: h.version, cipher: h.cipher, group: h.group, failed: o.kind == kindFailure, resumed: h.resumed, early: h.early}
	// A failure without its node waits for it (bounded: with no room it
	// counts without one at once).
	pk := pendKey{h.proxy, k}
	switch {
	case k.node == "" && k.failed && k.listener != "" && (m.pending[pk] != nil || len(m.pending) < m.cfg.MaxSeries):
		if m.pending[pk] == nil {
			m.pending[pk] = &pend{}
		}
		m.pending[pk].n++
	default:
		m.addHandshakes(k, 1, now)
	}
	if o.hrr {
		k := hrrKey{res, h.node, h.listener, o.sni}
		if !m.c.hrr.has(k) && len(m.c.hrr) >= m.cfg.MaxSeries {
			k.listener, k.sni = other, other
		}
		m.c.hrr.add(k, 1, now)
	}
	for i, v := range o.verdicts {
		pk := policyKey{policy: m.tracker.policies[i].name, class: o.class, version: h.version}
		switch {
		case v.fail:
			pk.verdict = metadata.AttributeVerdictFail
			m.c.failing.add(policyKey{policy: pk.policy, class: pk.class, version: pk.version, rule: v.rule}, 1, now)
		case v.undecided:
			pk.verdict = metadata.AttributeVerdictUndecided
		default:
			pk.verdict = metadata.AttributeVerdictPass
		}
		m.c.policies.add(pk, 1, now)
	}
}

// addHandshakes counts n handshakes of k. Bounded: beyond max_series a new
// combination counts its version, cipher and group as "other"; beyond
// max_series plus a tenth, also its listener and SNI (new nodes, listeners
// and names no longer add series; they are still in the records).
func (m *metricsConnector) addHandshakes(k hsKey, n int64, now time.Time) {
	hs := m.c.handshakes
	if !hs.has(k) && len(hs) >= m.cfg.MaxSeries {
		k.version, k.cipher, k.group = other, other, other
		if !hs.has(k) && len(hs) >= m.cfg.MaxSeries+m.cfg.MaxSeries/10 {
			k.listener, k.sni = other, other
		}
	}
	hs.add(k, n, now)
}

// methodLabel bounds the method label to the registered HTTP methods
// (semantic conventions: anything else is _OTHER).
func methodLabel(method string) string {
	switch u := strings.ToUpper(method); u {
	case "GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH", "QUERY":
		return u
	}
	return "_OTHER"
}

// resolvePending gives pending failures the node their listener's access
// records named, or no node once they waited two flushes.
func (m *metricsConnector) resolvePending(now time.Time) {
	for pk, p := range m.pending {
		k := pk.k
		k.node = m.tracker.nodeOf[pk.proxy+"|"+k.listener]
		if p.age++; k.node != "" || p.age > 2 || m.closing {
			m.addHandshakes(k, p.n, now)
			delete(m.pending, pk)
		}
	}
}

// flush emits every total (cumulative: Mimir stores them as they are).
func (m *metricsConnector) flush(ctx context.Context) error {
	md := m.build()
	if md.DataPointCount() == 0 {
		return nil
	}
	return m.next.ConsumeMetrics(ctx, md)
}

func (m *metricsConnector) build() pmetric.Metrics {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.tracker.names.rotate()
	now := time.Now()
	m.resolvePending(now)
	idleSince := now.Add(-m.cfg.SeriesIdle)
	for _, f := range []func(time.Time){m.c.handshakes.forget, m.c.hrr.forget, m.c.early.forget, m.c.records.forget, m.c.policies.forget, m.c.failing.forget} {
		f(idleSince)
	}
	ts := pcommon.NewTimestampFromTime(now)
	byRes := map[resKey][]func(){}
	for k, c := range m.c.handshakes {
		v := c.n
		outcome := metadata.AttributeOutcomeSuccess
		if k.failed {
			outcome = metadata.AttributeOutcomeFailure
		}
		byRes[k.res] = append(byRes[k.res], func() {
			m.mb.RecordTlsedgeHandshakesDataPoint(ts, v, k.node, k.listener, k.sni, outcome, k.reason, k.version, k.cipher, k.group, k.resumed, k.early)
		})
	}
	for k, c := range m.c.hrr {
		v := c.n
		byRes[k.res] = append(byRes[k.res], func() {
			m.mb.RecordTlsedgeHelloRetriesDataPoint(ts, v, k.node, k.listener, k.sni, metadata.AttributeHrrSourceInferred)
		})
	}
	for k, c := range m.c.early {
		v := c.n
		byRes[k.res] = append(byRes[k.res], func() {
			m.mb.RecordTlsedgeEarlyDataNonIdempotentDataPoint(ts, v, k.node, k.listener, k.sni, k.method)
		})
	}
	// Records and the what-if describe the whole stream: no service.
	for k, c := range m.c.records {
		v := c.n
		byRes[resKey{}] = append(byRes[resKey{}], func() {
			m.mb.RecordTlsedgeRecordsDataPoint(ts, v, k.proxy, metadata.MapAttributeRecordKind[k.kind.String()])
		})
	}
	for k, c := range m.c.policies {
		v := c.n
		byRes[resKey{}] = append(byRes[resKey{}], func() {
			m.mb.RecordTlsedgePolicyHandshakesDataPoint(ts, v, k.policy, k.class, k.version, k.verdict)
		})
	}
	for k, c := range m.c.failing {
		v := c.n
		byRes[resKey{}] = append(byRes[resKey{}], func() {
			m.mb.RecordTlsedgePolicyWouldFailDataPoint(ts, v, k.policy, k.class, k.version, metadata.MapAttributeRule[k.rule])
		})
	}
	keys := make([]resKey, 0, len(byRes))
	for k := range byRes {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool { return keys[i].service+"\x00"+keys[i].env < keys[j].service+"\x00"+keys[j].env })
	for _, k := range keys {
		for _, rec := range byRes[k] {
			rec()
		}
		if k.service != "" {
			m.rb.SetServiceName(k.service)
		}
		if k.env != "" {
			m.rb.SetDeploymentEnvironmentName(k.env)
		}
		m.mb.EmitForResource(metadata.WithResource(m.rb.Emit()))
	}
	return m.mb.Emit()
}
