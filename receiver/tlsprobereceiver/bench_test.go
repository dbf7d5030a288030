package tlsprobereceiver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/tlsinspect"
	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// labProcess starts the fault lab in its own process (CERTPULSE_LAB_BIN, or
// built here), so the CPU measured below is the prober's alone.
func labProcess(b *testing.B) *faultlab.Process {
	bin := os.Getenv("CERTPULSE_LAB_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "certpulse-lab")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/certpulse/certpulse/cmd/certpulse-lab").CombinedOutput()
		if err != nil {
			b.Fatalf("build certpulse-lab: %v\n%s", err, out)
		}
	}
	p, err := faultlab.StartProcess(bin, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Stop)
	return p
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProbeVsFloor measures, in one run, the CPU per probe of the full
// tlsprobe probe (handshake, own validation, OCSP/CRL (cached), findings,
// log record and metrics) against the floor: a plain handshake with Go's
// chain verification to the same server.
func BenchmarkProbeVsFloor(b *testing.B) {
	lab := labProcess(b)
	ep, _ := lab.Endpoint("healthy")
	pem, err := os.ReadFile(lab.Files.Roots)
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)

	cfg := createDefaultConfig()
	cfg.AllowPrivateFetchNetworks = []string{"127.0.0.0/8"} // the lab's responders
	in := tlsinspect.New(cfg.inspectOptions())
	defer in.Close()
	target := &probeTarget{
		meta:       newTargetMeta(TargetConfig{Endpoint: ep.Address, ServerName: ep.ServerName, Service: "bench"}),
		targetSpec: &targetSpec{profiles: []tlsinspect.Profile{{Name: "default", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, Roots: roots}}},
	}
	em := newEmitter(metadata.NewMetricsBuilder(cfg.MetricsBuilderConfig, receivertest.NewNopSettings(metadata.Type)), "bench")
	mem := newTargetMemory()
	ctx := context.Background()
	// Warm the OCSP/CRL/AIA caches and the connection pools.
	if r := in.Inspect(ctx, target.inspectTarget()); r[0].Primary() != "ok" {
		b.Fatalf("healthy endpoint: %+v", r[0].Findings)
	}

	floor := func() {
		c, err := tls.Dial("tcp", ep.Address, &tls.Config{ServerName: ep.ServerName, RootCAs: roots, MinVersion: tls.VersionTLS12})
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
	full := func() {
		res := in.Inspect(ctx, target.inspectTarget())
		_ = em.logs(target, res, nil)
		mem.countFailures("", res)
		_ = em.metrics(mem.failures, target, res, seriesPlan{Owner: true})
	}
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		floor()
	}
	c1 := cpuTime()
	for i := 0; i < b.N; i++ {
		full()
	}
	c2 := cpuTime()
	b.StopTimer()
	fl := float64(c1-c0) / float64(b.N)
	fu := float64(c2-c1) / float64(b.N)
	b.ReportMetric(fl, "floor-cpu-ns/op")
	b.ReportMetric(fu, "probe-cpu-ns/op")
	b.ReportMetric(fu/fl, "probe/floor")
}

// BenchmarkNodesVsFloor measures a `nodes` round against the same floor:
// the CPU per node of a round over the lab's three-node group (every node
// probed, compared, records and metrics built; the resumption ring not
// run), the CPU of one resumption check (a session from one node, offered
// to another: two handshakes, the second abbreviated) against two full
// handshakes, and the abbreviated handshake alone against a full one.
func BenchmarkNodesVsFloor(b *testing.B) {
	lab := labProcess(b)
	var group faultlab.NodeGroup
	for _, g := range lab.NodeGroups {
		if g.Name == "edge-tickets" {
			group = g
		}
	}
	if len(group.Nodes) < 2 {
		b.Fatalf("no node group in %+v", lab.NodeGroups)
	}
	pem, err := os.ReadFile(lab.Files.Roots)
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	cfg := createDefaultConfig()
	cfg.AllowPrivateFetchNetworks = []string{"127.0.0.0/8"}
	r := &tlsProbeReceiver{cfg: cfg, inspector: tlsinspect.New(cfg.inspectOptions())}
	defer r.inspector.Close()
	every := 0
	profile := tlsinspect.Profile{Name: "default", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, Roots: roots}
	tc := TargetConfig{Endpoint: group.ServerName + ":443", Service: "bench", Nodes: group.Nodes, Resumption: ResumptionConfig{Every: &every}}
	target := &probeTarget{meta: newTargetMeta(tc), targetSpec: &targetSpec{profiles: []tlsinspect.Profile{profile}}}
	em := newEmitter(metadata.NewMetricsBuilder(cfg.MetricsBuilderConfig, receivertest.NewNopSettings(metadata.Type)), "bench")
	r.emitter = em
	mem := newTargetMemory()
	ctx := context.Background()
	n := len(group.Nodes)
	round := func() {
		outs := make([]nodeOutcome, n)
		views := make([]nodeView, n)
		for i, node := range group.Nodes {
			tg := target.inspectTarget()
			tg.Endpoint = node
			outs[i] = nodeOutcome{node: node, results: r.inspector.Inspect(ctx, tg)}
			views[i] = viewOf(node, &outs[i].results[0])
		}
		rd := nodesRound{count: n, cmp: compareNodes(views)}
		for i := range outs {
			outs[i].verdict = rd.cmp.verdicts[outs[i].node]
		}
		_ = em.nodeLogs(target, outs, &rd)
		_ = em.nodeMetrics(mem.failures, target, outs, &rd, seriesPlan{Owner: true})
	}
	floor := func(node string) {
		c, err := tls.Dial("tcp", node, &tls.Config{ServerName: group.ServerName, RootCAs: roots, MinVersion: tls.VersionTLS12})
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
	resume := func() {
		if c := r.inspector.Resume(ctx, profile, group.ServerName, group.Nodes[0], group.Nodes[1], tls.VersionTLS13); !c.Resumed {
			b.Fatalf("nodes 1 and 2 share ticket keys: %+v", c)
		}
	}
	// The abbreviated handshake alone: a session from node 1 (shared ticket
	// keys), offered to node 2 again and again.
	cache := tls.NewLRUClientSessionCache(1)
	resumeCfg := &tls.Config{ServerName: group.ServerName, RootCAs: roots, MinVersion: tls.VersionTLS13, ClientSessionCache: cache}
	if c, err := tls.Dial("tcp", group.Nodes[0], resumeCfg); err == nil {
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		_, _ = c.Read(make([]byte, 1)) // the TLS 1.3 ticket arrives after the handshake
		_ = c.Close()
	}
	resumed := func() {
		c, err := tls.Dial("tcp", group.Nodes[1], resumeCfg)
		if err != nil {
			b.Fatal(err)
		}
		if !c.ConnectionState().DidResume {
			b.Fatal("not resumed")
		}
		_ = c.Close()
	}
	round() // warm the OCSP/CRL/AIA caches
	// Interleaved, so that the four loops share the machine's conditions.
	var cpu [4]time.Duration
	timed := func(k int, f func()) {
		c := cpuTime()
		f()
		cpu[k] += cpuTime() - c
	}
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		timed(0, func() {
			for _, node := range group.Nodes {
				floor(node)
			}
		})
		timed(1, round)
		timed(2, resume)
		timed(3, resumed)
	}
	b.StopTimer()
	fl := float64(cpu[0]) / float64(b.N) / float64(n)
	perNode := float64(cpu[1]) / float64(b.N) / float64(n)
	res := float64(cpu[2]) / float64(b.N)
	b.ReportMetric(fl, "floor-cpu-ns/op")
	b.ReportMetric(perNode, "node-probe-cpu-ns/op")
	b.ReportMetric(perNode/fl, "node/floor")
	b.ReportMetric(res, "resumption-check-cpu-ns/op")
	b.ReportMetric(res/(2*fl), "resumption-check/2-handshakes")
	ab := float64(cpu[3]) / float64(b.N)
	b.ReportMetric(ab, "resumed-handshake-cpu-ns/op")
	b.ReportMetric(ab/fl, "resumed/full")
}
