package tlsprobereceiver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/extension/triggerextension"
	"github.com/certpulse/certpulse/extension/vantagesextension"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/tlsinspect"
	"github.com/certpulse/certpulse/internal/trigger"
	"github.com/certpulse/certpulse/internal/vantage"
	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// probeLog records which agent probed which target when.
type probeLog struct {
	mu  sync.Mutex
	got []probed
}

type probed struct {
	agent, server string
	rank          int64
	vantages      int
	at            time.Time
}

func (p *probeLog) sink(agent string) *funcSink {
	return &funcSink{fn: func(ld plog.Logs) {
		p.mu.Lock()
		defer p.mu.Unlock()
		for _, r := range logtest.Named(logtest.Records(ld), attrs.EventProbeResult) {
			rank, _ := r.Attributes().Get(attrs.VantageRank)
			vs, _ := r.Attributes().Get(attrs.Vantages)
			p.got = append(p.got, probed{agent: agent, server: r.Attr(attrs.ServerAddress), rank: rank.Int(), vantages: vs.Slice().Len(), at: time.Now()})
		}
	}}
}

// probers returns, per target, the agents that probed it since t.
func (p *probeLog) probers(since time.Time) map[string]map[string]bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := map[string]map[string]bool{}
	for _, x := range p.got {
		if x.at.Before(since) {
			continue
		}
		if out[x.server] == nil {
			out[x.server] = map[string]bool{}
		}
		out[x.server][x.agent] = true
	}
	return out
}

// TestVantagesShareTheTargets: three agents (receivers with their own
// certpulse_vantages extension, static membership a, b, c; k = 2) probe
// each of 30 targets from exactly two of them, evenly; when a leaves,
// b and c take its targets over within an interval (every target keeps
// two vantages); when a returns, its targets move back and the others
// stop after one more probe (never fewer than two).
type funcSink struct{ fn func(plog.Logs) }

func (f *funcSink) ConsumeLogs(_ context.Context, ld plog.Logs) error { f.fn(ld); return nil }
func (*funcSink) Capabilities() consumer.Capabilities                 { return consumer.Capabilities{} }

func TestVantagesShareTheTargets(t *testing.T) {
	f := startLab(t)
	healthy, _ := f.lab.Endpoint("healthy")
	const interval = time.Second
	members := []vantage.Member{{Name: "a"}, {Name: "b"}, {Name: "c"}}
	log := &probeLog{}
	sets := map[string]*vantage.Set{}
	// agent starts one agent: its certpulse_vantages extension (static
	// membership) and its tlsprobe receiver; it returns the stop.
	agent := func(name string) func() {
		vf := vantagesextension.NewFactory()
		vcfg := vf.CreateDefaultConfig().(*vantagesextension.Config)
		vcfg.Self, vcfg.Count, vcfg.Static = name, 2, members
		require.NoError(t, vcfg.Validate())
		ext, err := vf.Create(context.Background(), extensiontest.NewNopSettings(vf.Type()), vcfg)
		require.NoError(t, err)
		require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
		sets[name] = ext.(vantage.Provider).Vantages()
		id := component.NewID(vf.Type())
		cfg := labConfig(f)
		cfg.TargetsFile, cfg.ClientProfiles = "", nil
		cfg.CollectionInterval, cfg.Timeout = interval, 900*time.Millisecond
		cfg.Vantage, cfg.Vantages = name, &id
		for i := 0; i < 30; i++ {
			cfg.Targets = append(cfg.Targets, TargetConfig{Endpoint: healthy.Address, ServerName: fmt.Sprintf("t%02d.%s", i, healthy.ServerName), CAFile: f.files.Roots})
		}
		require.NoError(t, cfg.Validate())
		r, err := NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, log.sink(name))
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background(), hosttest.With(map[component.ID]component.Component{id: ext})))
		var once sync.Once
		stop := func() {
			once.Do(func() {
				_ = r.Shutdown(context.Background())
				_ = ext.Shutdown(context.Background())
			})
		}
		t.Cleanup(stop)
		return stop
	}
	stopA := agent("a")
	agent("b")
	agent("c")
	window := func() map[string]map[string]bool {
		from := time.Now()
		time.Sleep(3 * interval)
		return log.probers(from)
	}
	time.Sleep(2 * time.Second)
	got := window()
	require.Len(t, got, 30)
	load := map[string]int{}
	for server, ps := range got {
		assert.Len(t, ps, 2, "%s: two vantages", server)
		for a := range ps {
			load[a]++
		}
	}
	t.Logf("targets per agent (k=2, 30 targets): %v", load)
	// 60 assignments over 3 agents by hash: 20 each on average. The
	// names are the lab's (random per run); simulated over 20,000 runs,
	// an agent is more than 8 off in 0.22% of them (seen once in CI-like
	// runs), more than 10 off in 0.02%.
	for a, n := range load {
		assert.InDelta(t, 20, n, 10, "agent %s", a)
	}
	log.mu.Lock()
	for _, x := range log.got {
		assert.Equal(t, 2, x.vantages, "the record names the vantage set")
		assert.Contains(t, []int64{0, 1}, x.rank)
	}
	log.mu.Unlock()

	// a stops; the others' membership drops it: b and c take its targets
	// within an interval.
	stopA()
	for _, s := range []string{"b", "c"} {
		sets[s].Update(members[1:])
	}
	time.Sleep(3 * interval)
	got = window()
	require.Len(t, got, 30)
	for server, ps := range got {
		assert.Equal(t, map[string]bool{"b": true, "c": true}, ps, "%s: taken over by b and c", server)
	}

	// a returns: its targets move back; b and c stop after one more
	// probe of each, so no target ever has fewer than two.
	agent("a")
	for _, s := range []string{"b", "c"} {
		sets[s].Update(members)
	}
	back := time.Now()
	time.Sleep(4 * interval)
	for server, ps := range log.probers(back) {
		assert.GreaterOrEqual(t, len(ps), 2, "%s: at least two vantages while it changes hands", server)
	}
	time.Sleep(interval)
	got = window()
	require.Len(t, got, 30)
	load = map[string]int{}
	for server, ps := range got {
		assert.Len(t, ps, 2, "%s: two vantages again", server)
		for a := range ps {
			load[a]++
		}
	}
	assert.NotZero(t, load["a"], "a has its targets back")
}

// TestMineHandsOverWithoutAGap: an agent that stops being one of a
// target's vantages probes it once more within interval + timeout of its
// last turn (the new vantage may not have probed yet), then stops; one
// that becomes a vantage probes at once.
func TestMineHandsOverWithoutAGap(t *testing.T) {
	set := vantage.NewSet("b", 1)
	r := &tlsProbeReceiver{cfg: &Config{Timeout: time.Second}, vantages: set, memory: newMemories()}
	tg := &probeTarget{meta: newTargetMeta(TargetConfig{Endpoint: "x:443"}), targetSpec: &targetSpec{interval: 10 * time.Second}}
	key := tg.meta.key
	mine := func(at time.Time) bool {
		t.Helper()
		mem, ok := r.mine(key, tg, at)
		if ok != (mem != nil) || (mem != nil && r.memory.peek(key) != mem) {
			t.Fatalf("mine %v with memory %p, the kept one %p", ok, mem, r.memory.peek(key))
		}
		return ok
	}
	now := time.Unix(1_800_000_000, 0)
	set.Update([]vantage.Member{{Name: "b"}})
	require.True(t, mine(now), "the only member")
	assert.Equal(t, 0, r.memory.peek(key).vantage.Rank)
	set.Update([]vantage.Member{{Name: "b"}, {Name: "zz-other-1"}, {Name: "zz-other-2"}, {Name: "zz-other-3"}, {Name: "zz-other-4"}, {Name: "zz-other-5"}, {Name: "zz-other-6"}, {Name: "zz-other-7"}})
	if set.Decide(key).Probe {
		t.Skip("b still chosen among 8: pick other names")
	}
	assert.True(t, mine(now.Add(10*time.Second)), "one more turn while another takes over")
	assert.Equal(t, 1, r.memory.peek(key).vantage.Rank, "handing over: ranked after the chosen one")
	assert.False(t, mine(now.Add(20*time.Second)), "then no longer")
	assert.Nil(t, r.memory.peek(key), "and its memory is let go")
	assert.False(t, mine(now.Add(25*time.Second)), "never a vantage: no memory made")
	assert.Empty(t, r.memory.m)
	set.Update([]vantage.Member{{Name: "b"}})
	assert.True(t, mine(now.Add(30*time.Second)), "chosen again: at once")
	r.vantages = nil
	assert.True(t, mine(now), "without certpulse_vantages every target is probed")
}

// TestOnlyTheOwnerRecordsTheCertificate: what describes the certificate,
// not the probe (time left, not_after, lifetime used, chain length,
// OCSP/CRL status, staple age), is recorded by the owner vantage only; the
// others record success, results, durations and the negotiated TLS.
func TestOnlyTheOwnerRecordsTheCertificate(t *testing.T) {
	f := startLab(t)
	ep, _ := f.lab.Endpoint("healthy")
	cfg := labConfig(f)
	in := tlsinspect.New(cfg.inspectOptions())
	defer in.Close()
	roots := x509.NewCertPool()
	roots.AddCert(f.lab.Root.Cert)
	target := &probeTarget{
		meta:       newTargetMeta(TargetConfig{Endpoint: ep.Address, ServerName: ep.ServerName, Service: "shop"}),
		targetSpec: &targetSpec{profiles: []tlsinspect.Profile{{Name: "default", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, Roots: roots}}},
	}
	res := in.Inspect(context.Background(), target.inspectTarget())
	require.Equal(t, "ok", string(res[0].Primary()), "%+v", res[0].Findings)
	names := func(owner bool) map[string]bool {
		em := newEmitter(metadata.NewMetricsBuilder(cfg.MetricsBuilderConfig, receivertest.NewNopSettings(metadata.Type)), "v")
		md := em.metrics(nil, target, res, seriesPlan{Owner: owner})
		out := map[string]bool{}
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					out[ms.At(k).Name()] = true
				}
			}
		}
		return out
	}
	owner, other := names(true), names(false)
	for _, m := range []string{"tlsprobe.cert.time_left", "tlsprobe.cert.not_after", "tlsprobe.cert.lifetime_used", "tlsprobe.chain.length", "tlsprobe.ocsp.status"} {
		assert.True(t, owner[m], "the owner records %s", m)
		assert.False(t, other[m], "another vantage records %s", m)
	}
	for _, m := range []string{"tlsprobe.success", "tlsprobe.result", "tlsprobe.duration", "tlsprobe.tls.info"} {
		assert.True(t, other[m], "every vantage records %s", m)
	}
	t.Logf("metrics of the owner: %d, of another vantage: %d", len(owner), len(other))
}

// TestLeanSeries: series lean records, per target, the owner's success and
// leaf time left while healthy (2 series, target_info is the third), other
// vantages nothing; a failing probe adds success 0 and its result with the
// reason from whichever vantage fails, kept for leanHold after it recovers
// so that the 0 is overwritten, then dropped.
func TestLeanSeries(t *testing.T) {
	f := startLab(t)
	cfg := labConfig(f)
	in := tlsinspect.New(cfg.inspectOptions())
	defer in.Close()
	roots := x509.NewCertPool()
	roots.AddCert(f.lab.Root.Cert)
	probe := func(name string) (*probeTarget, []tlsinspect.Result) {
		ep, _ := f.lab.Endpoint(name)
		tg := &probeTarget{
			meta:       newTargetMeta(TargetConfig{Endpoint: ep.Address, ServerName: ep.ServerName, Service: "shop"}),
			targetSpec: &targetSpec{profiles: []tlsinspect.Profile{{Name: "default", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, Roots: roots}}},
		}
		return tg, in.Inspect(context.Background(), tg.inspectTarget())
	}
	series := func(tg *probeTarget, res []tlsinspect.Result, plan seriesPlan, now time.Time) map[string]int {
		em := newEmitter(metadata.NewMetricsBuilder(cfg.MetricsBuilderConfig, receivertest.NewNopSettings(metadata.Type)), "v")
		em.mu.Lock()
		em.recordResults(pcommon.NewTimestampFromTime(now), now, map[[3]string]int64{{"", "default", "x"}: 1}, "", res, plan)
		md := em.mb.Emit()
		em.mu.Unlock()
		out := map[string]int{}
		rms := md.ResourceMetrics()
		for i := 0; i < rms.Len(); i++ {
			sms := rms.At(i).ScopeMetrics()
			for j := 0; j < sms.Len(); j++ {
				ms := sms.At(j).Metrics()
				for k := 0; k < ms.Len(); k++ {
					m := ms.At(k)
					n := 0
					switch m.Type() {
					case pmetric.MetricTypeGauge:
						n = m.Gauge().DataPoints().Len()
					case pmetric.MetricTypeSum:
						n = m.Sum().DataPoints().Len()
					case pmetric.MetricTypeHistogram:
						n = m.Histogram().DataPoints().Len()
					}
					out[m.Name()] += n
				}
			}
		}
		return out
	}
	total := func(m map[string]int) int {
		n := 0
		for _, c := range m {
			n += c
		}
		return n
	}
	now := time.Now()
	healthy, ok := probe("healthy")
	require.True(t, ok[0].Success())
	full := series(healthy, ok, seriesPlan{Owner: true}, now)
	owner := series(healthy, ok, seriesPlan{Owner: true, Lean: true, hold: new(map[string]int64)}, now)
	other := series(healthy, ok, seriesPlan{Lean: true, hold: new(map[string]int64)}, now)
	t.Logf("healthy target: full %d series (%v), lean owner %d (%v), lean other vantage %d", total(full), full, total(owner), owner, total(other))
	assert.Equal(t, map[string]int{"tlsprobe.success": 1, "tlsprobe.cert.time_left": 1}, owner)
	assert.Zero(t, total(other))

	expired, bad := probe("expired-leaf")
	require.False(t, bad[0].Success())
	hold := new(map[string]int64)
	failing := series(expired, bad, seriesPlan{Lean: true, hold: hold}, now)
	assert.Equal(t, 1, failing["tlsprobe.success"], "a failing vantage says so")
	assert.Equal(t, 1, failing["tlsprobe.result"], "with the reason")
	assert.Equal(t, 1, failing["tlsprobe.failures"])
	recovered := series(healthy, ok, seriesPlan{Lean: true, hold: hold}, now.Add(time.Minute))
	assert.Equal(t, map[string]int{"tlsprobe.success": 1}, recovered, "success 1 overwrites the 0 for a while")
	assert.Zero(t, total(series(healthy, ok, seriesPlan{Lean: true, hold: hold}, now.Add(leanHold+time.Minute))), "then nothing")
	assert.Nil(t, *hold, "and the hold is let go")
}

// TestTriggerProbesWhateverTheVantages: a lifecycle event (or real clients
// failing) heard by this agent probes the service's targets here, also
// those another agent is the vantage of: the agent that heard it may be
// the only one that did (a deploy posted to its node's lifecycle Service).
func TestTriggerProbesWhateverTheVantages(t *testing.T) {
	f := startLab(t)
	healthy, _ := f.lab.Endpoint("healthy")
	tf := triggerextension.NewFactory()
	text, err := tf.Create(context.Background(), extensiontest.NewNopSettings(tf.Type()), tf.CreateDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, text.Start(context.Background(), componenttest.NewNopHost()))
	vf := vantagesextension.NewFactory()
	vcfg := &vantagesextension.Config{Self: "a", Count: 1, Static: []vantage.Member{{Name: "a"}, {Name: "b"}}}
	vext, err := vf.Create(context.Background(), extensiontest.NewNopSettings(vf.Type()), vcfg)
	require.NoError(t, err)
	require.NoError(t, vext.Start(context.Background(), componenttest.NewNopHost()))
	tid, vid := component.NewID(tf.Type()), component.NewID(vf.Type())
	cfg := labConfig(f)
	cfg.TargetsFile, cfg.ClientProfiles = "", nil
	cfg.CollectionInterval = time.Hour
	cfg.Vantage, cfg.Vantages, cfg.Trigger = "a", &vid, &tid
	cfg.OnChange.Backoff = nil
	mine := 0
	for i := 0; i < 10; i++ {
		tc := TargetConfig{Endpoint: healthy.Address, ServerName: fmt.Sprintf("t%02d.%s", i, healthy.ServerName), Service: "pay", CAFile: f.files.Roots}
		cfg.Targets = append(cfg.Targets, tc)
		if vext.(vantage.Provider).Vantages().Decide(tc.key()).Probe {
			mine++
		}
	}
	require.Less(t, mine, 10, "some targets are b's")
	log := &probeLog{}
	r, err := NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, log.sink("a"))
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), hosttest.With(map[component.ID]component.Component{tid: text, vid: vext})))
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	since := time.Now()
	text.(trigger.Provider).Hub().Fire(trigger.Event{Type: "deployed", Service: "pay"})
	require.Eventually(t, func() bool { return len(log.probers(since)) == 10 }, 5*time.Second, 50*time.Millisecond,
		"every target of the service probed after the event, %d of them this agent's", mine)
}
