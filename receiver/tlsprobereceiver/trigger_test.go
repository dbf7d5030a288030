package tlsprobereceiver

import (
	"context"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"io"
	"net"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/extension/triggerextension"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/trigger"
	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// triggerHost runs a real certpulse_trigger extension and returns its hub.
func triggerHost(t *testing.T) (component.Host, *trigger.Hub, component.ID) {
	f := triggerextension.NewFactory()
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), f.CreateDefaultConfig())
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	id := component.NewID(f.Type())
	return hosttest.With(map[component.ID]component.Component{id: ext}), ext.(trigger.Provider).Hub(), id
}

func startWithHost(t *testing.T, cfg *Config, host component.Host) *consumertest.LogsSink {
	t.Helper()
	require.NoError(t, cfg.Validate())
	logs := new(consumertest.LogsSink)
	r, err := NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, logs)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	return logs
}

// TestTriggerProbesAtOnce: a deployed event for a service probes its
// targets within a second, then at on_change.backoff, although the regular
// interval is an hour; targets of other services are left alone; the
// extra-probe budget bounds what a flood of events adds.
func TestTriggerProbesAtOnce(t *testing.T) {
	f := startLab(t)
	healthy, _ := f.lab.Endpoint("healthy")
	other, _ := f.lab.Endpoint("expired-leaf")
	host, hub, id := triggerHost(t)
	cfg := labConfig(f)
	cfg.TargetsFile = ""
	cfg.ClientProfiles = nil
	cfg.CollectionInterval = 24 * time.Hour
	cfg.Trigger = &id
	cfg.OnChange.Backoff = []time.Duration{300 * time.Millisecond, 600 * time.Millisecond}
	cfg.Targets = []TargetConfig{
		{Endpoint: healthy.Address, ServerName: healthy.ServerName, Service: "pay", CAFile: f.files.Roots},
		{Endpoint: other.Address, ServerName: other.ServerName, Service: "blog", CAFile: f.files.Roots},
	}
	logs := startWithHost(t, cfg, host)
	count := func(server string) int { return probeCount(logs, server) }
	before := count(healthy.ServerName)
	fired := time.Now()
	require.Equal(t, 1, hub.Fire(trigger.Event{Type: "deployed", Service: "pay"}))
	require.Eventually(t, func() bool { return count(healthy.ServerName) > before }, time.Second, 10*time.Millisecond, "a probe within a second of the event")
	t.Logf("first triggered probe after %s", time.Since(fired).Round(time.Millisecond))
	require.Eventually(t, func() bool { return count(healthy.ServerName) >= before+3 }, 3*time.Second, 20*time.Millisecond, "then at each backoff")
	assert.Zero(t, count(other.ServerName), "another service's target is not probed")

}

// TestBudget: a token bucket with a burst and a rate.
func TestBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	b := trigger.NewBudget(2, 3, func() time.Time { return now })
	n := 0
	for i := 0; i < 10; i++ {
		if b.Allow() {
			n++
		}
	}
	assert.Equal(t, 3, n, "the burst")
	now = now.Add(time.Second)
	n = 0
	for i := 0; i < 10; i++ {
		if b.Allow() {
			n++
		}
	}
	assert.Equal(t, 2, n, "then the rate")
}

// switchProxy forwards TCP connections to one of two addresses.
type switchProxy struct {
	ln     net.Listener
	target atomic.Value
}

func newSwitchProxy(t *testing.T, to string) *switchProxy {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	p := &switchProxy{ln: ln}
	p.target.Store(to)
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				u, err := net.DialTimeout("tcp", p.target.Load().(string), time.Second)
				if err != nil {
					return
				}
				defer u.Close()
				go func() { _, _ = io.Copy(u, c) }()
				_, _ = io.Copy(c, u)
			}()
		}
	}()
	t.Cleanup(func() { _ = ln.Close() })
	return p
}

// TestConfirmFast: a target that was healthy and fails is re-probed at
// once: the first failure says confirmed=false, the re-probe a moment later
// confirmed=true, long before the next regular probe.
func TestConfirmFast(t *testing.T) {
	f := startLab(t)
	healthy, _ := f.lab.Endpoint("healthy")
	broken, _ := f.lab.Endpoint("expired-leaf")
	proxy := newSwitchProxy(t, healthy.Address)
	cfg := labConfig(f)
	cfg.TargetsFile = ""
	cfg.ClientProfiles = nil
	cfg.CollectionInterval = 3 * time.Second
	cfg.Confirm = ConfirmConfig{Attempts: 2, Interval: 300 * time.Millisecond}
	cfg.Targets = []TargetConfig{{Endpoint: proxy.ln.Addr().String(), ServerName: healthy.ServerName, Service: "pay", CAFile: f.files.Roots}}
	logs := startWithHost(t, cfg, componenttest.NewNopHost())
	type res struct {
		reason    string
		confirmed string
		at        time.Time
	}
	results := func() []res {
		var out []res
		for _, ld := range logs.AllLogs() {
			for _, r := range logtest.Named(logtest.Records(ld), attrs.EventProbeResult) {
				out = append(out, res{r.Attr(attrs.ReasonKey), r.Attr(attrs.ProbeConfirmed), r.ObservedTimestamp().AsTime()})
			}
		}
		return out
	}
	require.Eventually(t, func() bool { rs := results(); return len(rs) > 0 && rs[len(rs)-1].reason == "ok" }, 10*time.Second, 20*time.Millisecond)
	proxy.target.Store(broken.Address)
	var first, confirmed *res
	require.Eventually(t, func() bool {
		for _, r := range results() {
			r := r
			if r.reason != "ok" && r.confirmed == "false" && first == nil {
				first = &r
			}
			if first != nil && r.reason != "ok" && r.confirmed == "true" && confirmed == nil {
				confirmed = &r
			}
		}
		return confirmed != nil
	}, 10*time.Second, 20*time.Millisecond)
	assert.Less(t, confirmed.at.Sub(first.at), 1500*time.Millisecond, "confirmed by a re-probe, not by the next regular probe 3s later")
	t.Logf("failure confirmed %s after it was first seen", confirmed.at.Sub(first.at).Round(time.Millisecond))
}

// TestFloodBoundedByBudget: 1,000 events a second for one service add no
// more runs than the budget allows (burst plus rate), whatever the flood.
func TestFloodBoundedByBudget(t *testing.T) {
	now := time.Unix(1_700_000_000, 0)
	s := newScheduler(1, func(context.Context, *job, *probeTarget) {})
	s.now = func() time.Time { return now }
	var ts []*probeTarget
	for i := 0; i < 50; i++ {
		c := TargetConfig{Endpoint: net.JoinHostPort("127.0.0.1", strconv.Itoa(1000+i)), Service: "pay"}
		ts = append(ts, &probeTarget{meta: newTargetMeta(c), targetSpec: &targetSpec{interval: time.Hour}})
	}
	s.set(ts)
	b := trigger.NewBudget(20, 200, func() time.Time { return now })
	added, refused := 0, 0
	for i := 0; i < 1000; i++ { // one second of events, 1ms apart
		now = now.Add(time.Millisecond)
		a, r := s.runSoon(func(t *probeTarget) bool { return t.meta.service == "pay" }, []time.Duration{0, 5 * time.Second}, b.Allow)
		added, refused = added+a, refused+r
	}
	assert.LessOrEqual(t, added, 200+20, "burst plus one second of rate")
	assert.Greater(t, refused, 90_000, "the rest is refused, counted")
}

// BenchmarkTriggerFlood: the cost of one lifecycle event against 1,000
// targets of its service under a flood of 1,000 events a second, and the
// runs the budget lets through (runs/s of event time).
func BenchmarkTriggerFlood(b *testing.B) {
	now := time.Unix(1_700_000_000, 0)
	s := newScheduler(1, func(context.Context, *job, *probeTarget) {})
	s.now = func() time.Time { return now }
	var ts []*probeTarget
	for i := 0; i < 1000; i++ {
		c := TargetConfig{Endpoint: net.JoinHostPort("127.0.0.1", strconv.Itoa(1000+i)), Service: "pay"}
		ts = append(ts, &probeTarget{meta: newTargetMeta(c), targetSpec: &targetSpec{interval: time.Hour}})
	}
	s.set(ts)
	bud := trigger.NewBudget(20, 200, func() time.Time { return now })
	match := func(t *probeTarget) bool { return t.meta.service == "pay" }
	delays := []time.Duration{0, 5 * time.Second, 15 * time.Second, 30 * time.Second}
	added := 0
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		now = now.Add(time.Millisecond) // 1,000 events per second
		a, _ := s.runSoon(match, delays, bud.Allow)
		added += a
	}
	b.ReportMetric(float64(added)/(float64(b.N)/1000), "runs/s")
}

// TestIdenticalReceiversProbeOnce: receiver_creator starts one receiver per
// discovered endpoint, and an Ingress with two paths on one host is two
// endpoints with the same target. With a trigger hub, identical receivers
// probe it once; when the one probing stops, the other takes over.
func TestIdenticalReceiversProbeOnce(t *testing.T) {
	f := startLab(t)
	healthy, _ := f.lab.Endpoint("healthy")
	host, _, id := triggerHost(t)
	cfg := labConfig(f)
	cfg.TargetsFile = ""
	cfg.ClientProfiles = nil
	cfg.CollectionInterval = time.Second
	cfg.Timeout = time.Second
	cfg.Trigger = &id
	cfg.TargetConfig = TargetConfig{Endpoint: healthy.Address, ServerName: healthy.ServerName, Service: "shop", CAFile: f.files.Roots}
	require.NoError(t, cfg.Validate())
	start := func(name string) (*consumertest.LogsSink, func()) {
		logs := new(consumertest.LogsSink)
		set := receivertest.NewNopSettings(metadata.Type)
		set.ID = component.NewIDWithName(metadata.Type, name)
		r, err := NewFactory().CreateLogs(context.Background(), set, cfg, logs)
		require.NoError(t, err)
		require.NoError(t, r.Start(context.Background(), host))
		stop := func() { _ = r.Shutdown(context.Background()) }
		t.Cleanup(stop)
		return logs, stop
	}
	a, stopA := start(`ingress/shop/`)
	b, _ := start(`ingress/shop/api`)
	require.Eventually(t, func() bool { return probeCount(a, healthy.ServerName) >= 3 }, 10*time.Second, 50*time.Millisecond)
	assert.Zero(t, probeCount(b, healthy.ServerName), "the second identical receiver probed too")
	stopA()
	require.Eventually(t, func() bool { return probeCount(b, healthy.ServerName) >= 1 }, 5*time.Second, 50*time.Millisecond, "the stand-by takes over when the owner stops")
}
