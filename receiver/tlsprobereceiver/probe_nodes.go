package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"context"
	"crypto/tls"
	"net"
	"net/netip"
	"slices"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// nodeState is a `nodes` target's memory across probes (only the worker
// running the job touches it).
type nodeState struct {
	probes int
	// resumption holds each node's latest resumption verdict and samples,
	// carried on every record until the next check.
	resumption map[string]resumeVerdict
	samples    map[string][]resumeSample
	checkedAt  time.Time
}

// resumeSample is one confirmed check into a node, for the metric.
type resumeSample struct {
	kind    string // neighbour or same_node
	version string
	resumed bool
}

// nodeOutcome is one node's results of one round.
type nodeOutcome struct {
	node        string
	results     []tlsinspect.Result
	unconfirmed map[string]bool
	verdict     nodeVerdict
	resumption  *resumeVerdict
	samples     []resumeSample
}

// nodesRound is what a round showed about the name as a whole.
type nodesRound struct {
	count     int
	skipped   int // addresses beyond max_nodes
	cmp       nodeComparison
	checkedAt time.Time
}

// resolveNodes lists the nodes to probe: the configured list, or every
// address the endpoint's host resolves to (sorted, at most max_nodes).
func resolveNodes(ctx context.Context, resolver *net.Resolver, t TargetConfig) (nodes []string, skipped int, err error) {
	host, port, _ := net.SplitHostPort(t.Endpoint)
	if !(len(t.Nodes) == 1 && t.Nodes[0] == nodesAll) {
		for _, n := range t.Nodes {
			nodes = append(nodes, netip.MustParseAddrPort(n).String())
		}
		return nodes, 0, nil
	}
	addrs, err := resolver.LookupNetIP(ctx, "ip", host)
	if err != nil {
		return nil, 0, err
	}
	slices.SortFunc(addrs, func(a, b netip.Addr) int { return a.Compare(b) })
	addrs = slices.Compact(addrs)
	if m := t.maxNodes(); len(addrs) > m {
		skipped = len(addrs) - m
		addrs = addrs[:m]
	}
	for _, a := range addrs {
		nodes = append(nodes, net.JoinHostPort(a.Unmap().String(), port))
	}
	return nodes, skipped, nil
}

// probeNodes runs one round of a `nodes` target: every node under every
// profile (in parallel, each bounded by the probe timeout), the comparison,
// and, when due, the resumption ring.
func (r *tlsProbeReceiver) probeNodes(ctx context.Context, mem *targetMemory, t *probeTarget) {
	rctx, cancel := context.WithTimeout(ctx, r.cfg.Timeout)
	nodes, skipped, err := resolveNodes(rctx, r.resolver, *t.meta.src)
	cancel()
	if ctx.Err() != nil {
		return
	}
	if err != nil || len(nodes) == 0 {
		// The name does not resolve: one ordinary probe of it says so
		// (dns_failure) with the resolver's words.
		r.probeOne(ctx, mem, t)
		return
	}
	if skipped > 0 {
		r.logger.Warn("nodes: more addresses than max_nodes; probing the first", zap.String("endpoint", t.meta.endpoint), zap.Int("probed", len(nodes)), zap.Int("skipped", skipped))
	}
	outs := make([]nodeOutcome, len(nodes))
	var wg sync.WaitGroup
	for i, n := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			tg := t.inspectTarget()
			tg.Endpoint, tg.ServerName = n, t.meta.serverName
			outs[i] = nodeOutcome{node: n, results: r.inspector.Inspect(ctx, tg)}
		}()
	}
	wg.Wait()
	if ctx.Err() != nil {
		return
	}
	round := nodesRound{count: len(nodes), skipped: skipped}
	views := make([]nodeView, len(outs))
	for i := range outs {
		views[i] = viewOf(outs[i].node, &outs[i].results[0])
	}
	round.cmp = compareNodes(views)
	if mem.nodes == nil {
		mem.nodes = &nodeState{}
	}
	ns := mem.nodes
	ns.probes++
	if every := t.meta.src.resumptionEvery(); every > 0 && (ns.probes-1)%every == 0 {
		ns.resumption, ns.samples = r.checkResumption(ctx, t, views, round.cmp)
		// (members of a check cut short have no verdict: not_checked)
		ns.checkedAt = time.Now()
		if ctx.Err() != nil {
			return
		}
	}
	round.checkedAt = ns.checkedAt
	any := false
	for i := range outs {
		o := &outs[i]
		o.verdict = round.cmp.verdicts[o.node]
		if v, ok := ns.resumption[o.node]; ok {
			o.resumption = &v
			o.samples = ns.samples[o.node]
			if v.result == resumptionFailed {
				for k := range o.results {
					o.results[k].AddFinding(tlsinspect.Finding{Reason: reasonResumptionFailed, Detail: "node " + o.node + ": " + v.detail})
				}
			}
		}
		o.unconfirmed = mem.unconfirmedFailures(o.node, o.results)
		mem.countFailures(o.node, o.results)
		any = any || len(o.unconfirmed) > 0
	}
	if any {
		r.confirm(t)
	}
	r.send(ctx, t.meta.endpoint,
		func() plog.Logs { return withVantages(r.emitter.nodeLogs(t, outs, &round), mem.vantage) },
		func() pmetric.Metrics {
			return r.emitter.nodeMetrics(mem.failures, t, outs, &round, r.plan(mem))
		})
}

// viewOf is what the comparison needs from a node's result.
func viewOf(node string, res *tlsinspect.Result) nodeView {
	v := nodeView{node: node, ok: res.Success(), stapled: res.OCSP.Stapled}
	if len(res.Chain) > 0 {
		v.chain = tlsinspect.ChainSHA256(res.Chain)
		v.leafFrom = res.Chain[0].NotBefore
	}
	if res.Established {
		v.version, v.cipher = tlsinspect.VersionName(res.Version), tls.CipherSuiteName(res.CipherSuite)
	}
	return v
}

// checkResumption runs the resumption ring over the nodes that serve the
// reference chain with a completed handshake (a node serving another chain
// is propagation lag, and OpenSSL-based servers refuse sessions across
// certificates: it is not judged), for TLS 1.3 and TLS 1.2 as the first
// profile allows. A failed check is retried once before it counts.
func (r *tlsProbeReceiver) checkResumption(ctx context.Context, t *probeTarget, views []nodeView, cmp nodeComparison) (map[string]resumeVerdict, map[string][]resumeSample) {
	var members []string
	for _, v := range views {
		if v.version != "" && v.chain == cmp.reference {
			members = append(members, v.node)
		}
	}
	verdicts := map[string]resumeVerdict{}
	samples := map[string][]resumeSample{}
	for _, v := range views {
		if !slices.Contains(members, v.node) {
			why := "not checked: the node completed no handshake"
			if v.chain != "" && v.chain != cmp.reference {
				why = "not checked: the node serves another chain (sessions do not resume across certificates on OpenSSL-based servers)"
			}
			verdicts[v.node] = resumeVerdict{resumptionNotChecked, why}
		}
	}
	if len(members) == 0 {
		return verdicts, samples
	}
	// The whole check is bounded; one cut short judges nobody (a check
	// that did not finish is not a refusal).
	ctx, cancel := context.WithTimeout(ctx, 3*r.cfg.Timeout)
	defer cancel()
	p := t.profiles[0]
	byVersion := map[string]map[string]resumeVerdict{}
	for _, v := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		if p.TLS != nil && ((p.TLS.MaxVersion != 0 && v > p.TLS.MaxVersion) || v < p.TLS.MinVersion) {
			continue
		}
		vn := tlsinspect.VersionName(v)
		// check offers to `to` a session `from` issued; a failure is
		// retried once (confirmed) before it counts.
		check := func(from, to string) (e edge, spoke bool) {
			for attempt := 0; attempt < 2 && ctx.Err() == nil; attempt++ {
				c := r.inspector.Resume(ctx, p, t.meta.serverName, from, to, v)
				e, spoke = edge{issued: c.Issued, resumed: c.Resumed}, spoke || c.FromChain != ""
				if c.Resumed {
					break
				}
			}
			return e, spoke
		}
		n := len(members)
		edges := make([]edge, n)
		spoke := make([]bool, n)
		var wg sync.WaitGroup
		for i := range members {
			wg.Add(1)
			go func() {
				defer wg.Done()
				edges[i], spoke[i] = check(members[(i-1+n)%n], members[i])
			}()
		}
		wg.Wait()
		if !slices.Contains(spoke, true) {
			continue // no node speaks this version (to this profile)
		}
		var self []edge
		anyResumed := false
		for _, e := range edges {
			anyResumed = anyResumed || e.resumed
		}
		if !anyResumed {
			self = make([]edge, n)
			for i := range members {
				wg.Add(1)
				go func() {
					defer wg.Done()
					self[i], _ = check(members[i], members[i])
				}()
			}
			wg.Wait()
		}
		if ctx.Err() != nil {
			return verdicts, map[string][]resumeSample{}
		}
		for i, m := range members {
			if n > 1 {
				samples[m] = append(samples[m], resumeSample{kind: "neighbour", version: vn, resumed: edges[i].resumed})
			}
			if self != nil || n == 1 {
				s := edges[i]
				if self != nil {
					s = self[i]
				}
				samples[m] = append(samples[m], resumeSample{kind: "same_node", version: vn, resumed: s.resumed})
			}
		}
		byVersion[vn] = judgeResumption(members, edges, self, t.meta.src.ExpectResumption)
	}
	for node, v := range mergeResumption(byVersion) {
		verdicts[node] = v
	}
	return verdicts, samples
}

// reasonResumptionFailed is added to a node's results while its latest
// resumption check blames it.
const reasonResumptionFailed = attrs.ReasonResumptionFailed
