package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"cmp"
	"fmt"
	"math"
	"slices"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/certpulse/certpulse/internal/attrs"
)

// edgeWindow is one node's handshakes over one tlsedge interval.
type edgeWindow struct {
	End int64 `json:"t"`
	// First is the end of the first interval merged into this one.
	First int64 `json:"b,omitempty"`
	// Begin is when the connector's interval began (its window start).
	Begin   int64            `json:"s,omitempty"`
	Node    string           `json:"n,omitempty"`
	HS      int64            `json:"h"`
	Failed  int64            `json:"f,omitempty"`
	Resumed int64            `json:"r,omitempty"`
	Reasons map[string]int64 `json:"x,omitempty"`
}

// maxEdgeWindows bounds a service's remembered windows (nodes x intervals
// in edge.window).
const maxEdgeWindows = 2048

// mergeWindow adds w to the node's latest window when that one ended less
// than bucket seconds before w: a service keeps about ten windows per node
// (edge.window / 10 each), whatever the connector's interval, so that its
// persisted state stays small.
func mergeWindow(wins []edgeWindow, w edgeWindow, bucket int64) []edgeWindow {
	for i := len(wins) - 1; i >= 0; i-- {
		x := &wins[i]
		if x.Node != w.Node {
			continue
		}
		if x.First == 0 {
			x.First = x.End
		}
		if w.End-x.First >= bucket || w.End < x.End {
			break
		}
		x.End, x.HS, x.Failed, x.Resumed = w.End, x.HS+w.HS, x.Failed+w.Failed, x.Resumed+w.Resumed
		for r, n := range w.Reasons {
			if x.Reasons == nil {
				x.Reasons = map[string]int64{}
			}
			if _, ok := x.Reasons[r]; ok || len(x.Reasons) < 32 {
				x.Reasons[r] += n
			}
		}
		return wins
	}
	return append(wins, w)
}

// Start is when the window's counts began (its end when not known).
func (w edgeWindow) Start() int64 {
	if w.Begin > 0 && w.Begin <= w.End {
		return w.Begin
	}
	return w.End
}

func readEdgeWindow(a pcommon.Map, t time.Time) edgeWindow {
	w := edgeWindow{End: t.Unix(), Node: str(a, attrs.EdgeNode)}
	if b, err := time.Parse(time.RFC3339Nano, str(a, attrs.EdgeWindowStart)); err == nil {
		w.Begin = b.Unix()
	}
	num := func(k string) int64 {
		if v, ok := a.Get(k); ok && v.Type() == pcommon.ValueTypeInt && v.Int() > 0 {
			return v.Int()
		}
		return 0
	}
	w.HS, w.Failed, w.Resumed = num(attrs.EdgeHandshakes), num(attrs.EdgeHandshakesFailed), num(attrs.EdgeHandshakesResumed)
	w.Failed = min(w.Failed, w.HS)
	w.Resumed = min(w.Resumed, w.HS-w.Failed)
	if v, ok := a.Get(attrs.EdgeFailureReasons); ok && v.Type() == pcommon.ValueTypeMap {
		v.Map().Range(func(k string, n pcommon.Value) bool {
			if n.Type() == pcommon.ValueTypeInt && n.Int() > 0 && len(w.Reasons) < 32 {
				if w.Reasons == nil {
					w.Reasons = map[string]int64{}
				}
				w.Reasons[k] = n.Int()
			}
			return true
		})
	}
	return w
}

// slowSignificance: the 5-minute share must be below success_below with
// this confidence (binomial upper tail at 1 - success_below).
const slowSignificance = 1e-3

// edgeVerdict is what a service's windows say (pure: judgeEdge).
type edgeVerdict struct {
	handshakes, failed int64
	judged             bool // enough handshakes to judge the failure rate
	failing            bool
	topReasons         string // "unknown_ca 9, protocol_mismatch 1"
	// resumption by node: rate of successful handshakes resumed
	rates             map[string]float64
	resJudged         bool
	degraded, healthy []string
}

func judgeEdge(wins []edgeWindow, cfg EdgeConfig) edgeVerdict {
	v := edgeVerdict{rates: map[string]float64{}}
	reasons := map[string]int64{}
	type nodeSum struct{ ok, resumed int64 }
	nodes := map[string]*nodeSum{}
	for _, w := range wins {
		// Junk (not TLS: scanners, plain HTTP) and offers the server's
		// policy refuses (legacy clients, scanners) are not judged
		// (edge.exclude_reasons).
		var excluded int64
		for _, r := range cfg.ExcludeReasons {
			excluded += w.Reasons[string(r)]
		}
		excluded = min(excluded, w.Failed)
		v.handshakes += w.HS - excluded
		v.failed += w.Failed - excluded
		for r, n := range w.Reasons {
			if !slices.Contains(cfg.ExcludeReasons, attrs.Reason(r)) {
				reasons[r] += n
			}
		}
		ns := nodes[w.Node]
		if ns == nil {
			ns = &nodeSum{}
			nodes[w.Node] = ns
		}
		ns.ok += w.HS - w.Failed
		ns.resumed += w.Resumed
	}
	v.judged = v.handshakes >= cfg.MinHandshakes
	// Failing: below the objective, and confidently so (a single failure
	// among 131 handshakes is 99.2% but says little).
	v.failing = v.judged && float64(v.handshakes-v.failed)/float64(v.handshakes) < cfg.SuccessBelow &&
		binomTail(v.handshakes, v.failed, 1-cfg.SuccessBelow) <= slowSignificance
	v.topReasons = topReasons(reasons)
	for n, s := range nodes {
		if n == "" || s.ok < cfg.MinNodeHandshakes {
			continue
		}
		rate := float64(s.resumed) / float64(s.ok)
		v.rates[n] = rate
		if rate < cfg.ResumptionBelow {
			v.degraded = append(v.degraded, n)
		} else {
			v.healthy = append(v.healthy, n)
		}
	}
	sort.Strings(v.degraded)
	sort.Strings(v.healthy)
	v.resJudged = len(v.rates) >= 2
	return v
}

// edgeWindow takes one node's window for a service and opens, joins,
// updates or resolves the edge incidents.
func (e *engine) edgeWindow(r *record) {
	t := r.time
	svc := e.service(r.service, t)
	e.markSvc(r.service, false)
	sc := e.cfg.Services[r.service]
	svc.Env = cmp.Or(sc.Environment, r.env, svc.Env)
	svc.Owner = cmp.Or(sc.Owner, r.owner, svc.Owner)
	svc.Crit = cmp.Or(sc.Criticality, r.crit, svc.Crit, attrs.CriticalityMedium)
	svc.Edge = mergeWindow(e.recentEdge(svc.Edge, t), r.edge, int64(max(e.cfg.Edge.Window/10, time.Second)/time.Second))
	if len(svc.Edge) > maxEdgeWindows {
		svc.Edge = svc.Edge[len(svc.Edge)-maxEdgeWindows:]
	}
	v := judgeEdge(svc.Edge, e.cfg.Edge)
	var fv fastVerdict
	if fc := e.cfg.Edge.Fast; fc.Window > 0 {
		svc.Recent = recentFast(svc.Recent, r.edge, fc.Window, t)
		fv = judgeFast(svc.Edge, svc.Recent, svc.Fast, fc, e.cfg.Edge.Window, t)
		svc.Fast = fv.episode
		if fv.cleared {
			// The step is over: the 5-minute judgement starts again from
			// here, without the step's failures (they would hold the
			// incident open for edge.window after the fix).
			svc.Edge = append(svc.Edge[:0], r.edge)
			v = judgeEdge(svc.Edge, e.cfg.Edge)
		}
		if fv.started && len(e.triggers) < maxTriggers {
			e.triggers = append(e.triggers, r.service)
		}
	}
	judged := v
	judged.judged = v.judged || fv.judged
	e.edgeUnobserved(r.service, judged, t)

	// Failure rate: a step within seconds (fast), or the 5-minute share.
	if judged.judged {
		share := float64(v.failed) / float64(max(v.handshakes, 1))
		hs, nodes, since := v.handshakes, []string(nil), time.Time{}
		detail := fmt.Sprintf("%.2f%% of %d handshakes of real clients failed in the last %s (%s)", 100*share, v.handshakes, e.cfg.Edge.Window, cmp.Or(v.topReasons, "no reason logged"))
		if fv.failing && fv.hs > 0 {
			share, hs, nodes, since = fv.share, fv.hs, fv.episode.Nodes, time.Unix(fv.episode.Since, 0)
			detail = fastDetail(fv, e.cfg.Edge.Fast)
		}
		// A step too quiet to judge does not outvote a judged, healthy
		// 5-minute share.
		bad := v.failing || fv.failing && (fv.judged || !v.judged)
		e.edgeSignal(r, attrs.ReasonHandshakeFailureRate, bad, share, hs, nodes, detail, since, e.joinsFailureRate)
	}
	// Resumption on some nodes only.
	if v.resJudged {
		bad := len(v.degraded) > 0 && len(v.healthy) > 0
		var worst float64 = 1
		for _, n := range v.degraded {
			worst = math.Min(worst, v.rates[n])
		}
		detail := fmt.Sprintf("session resumption below %.0f%% on %s (%s) while %s resume (%s) over the last %s: session ticket keys out of sync?",
			100*e.cfg.Edge.ResumptionBelow, strings.Join(v.degraded, ", "), pct(v.rates, v.degraded), strings.Join(v.healthy, ", "), pct(v.rates, v.healthy), e.cfg.Edge.Window)
		e.edgeSignal(r, attrs.ReasonResumptionDegraded, bad, 1-worst, v.handshakes-v.failed, v.degraded, detail, time.Time{}, e.joinsResumption)
	}
}

func pct(rates map[string]float64, nodes []string) string {
	out := make([]string, len(nodes))
	for i, n := range nodes {
		out[i] = fmt.Sprintf("%.0f%%", 100*rates[n])
	}
	return strings.Join(out, ", ")
}

// joinsFailureRate: an open probe incident of the service for a failing
// reason: real clients failing are the same incident, not a second one.
func (e *engine) joinsFailureRate(inc *incident) bool {
	if inc.Edge || !inc.open() {
		return false
	}
	r := cmp.Or(inc.ProbeReason, inc.Reason)
	info, ok := attrs.Info(r)
	return ok && info.Failing || inc.Reason == attrs.ReasonPostDeployRegression
}

// joinsResumption: tlsprobe's resumption_failed for the service.
func (e *engine) joinsResumption(inc *incident) bool {
	return !inc.Edge && inc.open() && inc.Reason == attrs.ReasonResumptionFailed
}

// edgeSignal opens or updates reason's edge incident for the service while
// bad, or joins an open probe incident that join accepts (one incident,
// not two); it resolves the edge incident when the signal is judged good.
// since, when known, is when the clients began failing (the incident's
// fault time).
func (e *engine) edgeSignal(r *record, reason attrs.Reason, bad bool, share float64, handshakes int64, nodes []string, detail string, since time.Time, join func(*incident) bool) {
	t := r.time
	fp := fingerprint(reason, r.service, "edge")
	own := e.incidents[fp]
	if !bad {
		if own != nil && own.open() {
			e.resolve(own, t)
			own.ProbeReason = "" // the next episode's probes say their own
		}
		for _, inc := range e.incidents {
			if inc.Service == r.service && join(inc) && inc.EdgeShare > 0 {
				inc.EdgeShare, inc.EdgeHandshakes, inc.EdgeNodes = 0, 0, nil
				e.dirtyInc = true
			}
		}
		return
	}
	share = math.Round(share*1000) / 1000
	var joined *incident
	for _, inc := range e.incidents {
		if inc.Service == r.service && join(inc) && (joined == nil || inc.OpenedAt.Before(joined.OpenedAt)) {
			joined = inc
		}
	}
	if joined != nil {
		if own != nil && own.open() { // the probes caught up: fold into theirs
			e.resolveAs(own, t, "joined")
		}
		first := joined.EdgeShare == 0
		changed := first || math.Abs(share-joined.EdgeShare) > 0.25*joined.EdgeShare
		joined.EdgeShare, joined.EdgeHandshakes, joined.EdgeNodes = share, handshakes, nodes
		e.dirtyInc = true
		if changed {
			joined.Impact = math.Max(joined.Impact, share)
			joined.UpdatedAt = t
			e.emit(joined, attrs.StateUpdated, joined.State, t)
		}
		return
	}
	var deploy *lcEvent
	svc := e.services[r.service]
	if d := e.lastDeploy(svc); d != nil && !t.Before(d.Time) && t.Sub(d.Time) <= e.cfg.DeployWindow+e.cfg.Edge.Window {
		deploy = d // a post-deploy regression seen by real clients
		detail += fmt.Sprintf("; began after %s %s ago (job %s)", d.Type, humanAgo(t.Sub(d.Time)), cmp.Or(d.JobID, "unknown"))
	}
	wasOpen := own != nil && own.open()
	if wasOpen {
		_, said := splitProbe(own.Detail)
		detail += said // what the probes said stays
	}
	prevShare := 0.0
	if own != nil {
		prevShare = own.EdgeShare
	}
	e.observe(&obs{reason: reason, service: r.service, at: t, identity: "edge", derived: true, deploy: deploy, detail: detail, faultAt: since, edge: &edgeObs{share: share, handshakes: handshakes, nodes: nodes}})
	if own = e.incidents[fp]; wasOpen && own != nil && own.open() && math.Abs(share-prevShare) > 0.25*prevShare {
		e.emit(own, attrs.StateUpdated, own.State, t)
	}
}

// edgeUnobserved resolves the service's own edge incidents whose signal has
// been below what can be judged for a whole edge window (the bad node
// drained, traffic failed over, or stopped): "no longer observed"
// (resolution unobserved), instead of staying open until the idle expiry.
// A signal judged again clears the count; a judged good one resolves the
// incident as healthy (edgeSignal).
func (e *engine) edgeUnobserved(service string, v edgeVerdict, t time.Time) {
	for _, c := range []struct {
		reason attrs.Reason
		judged bool
	}{{attrs.ReasonHandshakeFailureRate, v.judged}, {attrs.ReasonResumptionDegraded, v.resJudged}} {
		inc := e.incidents[fingerprint(c.reason, service, "edge")]
		if inc == nil || !inc.open() {
			continue
		}
		switch {
		case c.judged:
			if !inc.UnjudgedSince.IsZero() {
				inc.UnjudgedSince, e.dirtyInc = time.Time{}, true
			}
		case inc.UnjudgedSince.IsZero():
			inc.UnjudgedSince, e.dirtyInc = t, true
		case t.Sub(inc.UnjudgedSince) >= e.cfg.Edge.Window:
			e.resolveAs(inc, t, "unobserved")
		}
	}
}

// edgeSweep runs edgeUnobserved for every service with an open edge
// incident at now (the tick): a service whose edge sends nothing any more
// is judged on the windows it has left.
func (e *engine) edgeSweep(now time.Time) {
	for _, inc := range e.incidents {
		if !inc.Edge || !inc.open() {
			continue
		}
		var wins []edgeWindow
		if svc := e.services[inc.Service]; svc != nil {
			svc.Edge = e.recentEdge(svc.Edge, now)
			wins = svc.Edge
		}
		e.edgeUnobserved(inc.Service, judgeEdge(wins, e.cfg.Edge), now)
	}
}

// recentEdge keeps, in place, the windows that end within an edge window
// of t.
func (e *engine) recentEdge(wins []edgeWindow, t time.Time) []edgeWindow {
	return within(wins, e.cfg.Edge.Window, t)
}

// within keeps, in place, the windows that end within window of t.
func within(wins []edgeWindow, window time.Duration, t time.Time) []edgeWindow {
	cut := t.Add(-window).Unix()
	kept := wins[:0]
	for _, w := range wins {
		if w.End > cut {
			kept = append(kept, w)
		}
	}
	return kept
}

// edgeProbeReason: a probe of a service whose real clients are failing
// (an open handshake_failure_rate edge or NEL incident) fails for reason: the
// incident carries the probe's reason code and names the endpoint, at
// once, before the probe's own incident is corroborated ("probe:
// missing_intermediate on shop.example.com:443").
func (e *engine) edgeProbeReason(r *record, reason attrs.Reason, t time.Time) {
	if info, ok := attrs.Info(r.reason); !ok || !info.Failing {
		return
	}
	for _, id := range []string{"edge", identityNEL} {
		inc := e.incidents[fingerprint(attrs.ReasonHandshakeFailureRate, r.service, id)]
		if inc == nil || !inc.open() || inc.ProbeReason == r.reason {
			continue
		}
		inc.ProbeReason = r.reason
		inc.Detail, _ = splitProbe(inc.Detail)
		inc.Detail += probeSaid + string(r.reason) + " on " + endpointName(r)
		if reason != r.reason {
			inc.Detail += " (" + string(reason) + ")"
		}
		inc.UpdatedAt = t
		e.dirtyInc = true
		e.emit(inc, attrs.StateUpdated, inc.State, t)
	}
}

// probeSaid starts what a probe said on an edge incident's detail.
const probeSaid = "; probe: "

// splitProbe splits an edge incident's detail into the edge's part and
// what a probe said ("" when none has).
func splitProbe(detail string) (edge, probe string) {
	if i := strings.Index(detail, probeSaid); i >= 0 {
		return detail[:i], detail[i:]
	}
	return detail, ""
}
