package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// The streaming edge detector (edge.fast): a step change in the share of
// real clients failing, within seconds, per node and for the service,
// judged against the service's own baseline. The 5-minute judgement
// (judgeEdge) stays for slow degradation.

// fastSignificance: a step must also be this unlikely under the baseline
// (binomial upper tail), so that a few failures among few handshakes of a
// service with a steady trickle of failures never page by chance.
const fastSignificance = 1e-6

// maxRecentWindows bounds a service's unmerged recent windows (nodes x
// connector intervals in edge.fast.window).
const maxRecentWindows = 512

// fastEpisode is a step in progress: its start, the baseline it was judged
// against (frozen while it lasts, so that the failures do not become the
// baseline) and the nodes failing.
type fastEpisode struct {
	Since int64   `json:"s"`
	Base  float64 `json:"p"`
	// Last is the end of the latest window with counted failures.
	Last int64 `json:"l,omitempty"`
	// Share is the highest failing share seen in the step.
	Share float64  `json:"f,omitempty"`
	Nodes []string `json:"n,omitempty"`
}

// fastVerdict is what the recent windows say (pure: judgeFast).
type fastVerdict struct {
	judged   bool // enough recent handshakes to say healthy or failing
	failing  bool
	started  bool // a new step: the episode begins now
	cleared  bool // the step is over
	episode  fastEpisode
	hs, fail int64 // recent handshakes and counted failures (failing nodes, or the service)
	share    float64
	reasons  string
}

// fastCount is a window's failures of the counted reasons.
func fastCount(w edgeWindow, reasons []attrs.Reason) int64 {
	var n int64
	for _, r := range reasons {
		n += w.Reasons[string(r)]
	}
	return min(n, w.Failed)
}

// binomPMF is P(X = i) for X ~ Binomial(n, p), 0 < p < 1.
func binomPMF(n, i int64, p float64) float64 {
	lg := func(x int64) float64 { v, _ := math.Lgamma(float64(x) + 1); return v }
	return math.Exp(lg(n) - lg(i) - lg(n-i) + float64(i)*math.Log(p) + float64(n-i)*math.Log1p(-p))
}

// binomTail is P(X >= k) for X ~ Binomial(n, p).
func binomTail(n, k int64, p float64) float64 {
	if k <= 0 {
		return 1
	}
	if k > n || p <= 0 {
		return 0
	}
	if p >= 1 {
		return 1
	}
	var sum float64
	for i := k; i <= n; i++ {
		term := binomPMF(n, i, p)
		sum += term
		if term < sum*1e-12 {
			break
		}
	}
	return math.Min(1, sum)
}

// step: f of h recent handshakes failing is a step above baseline p0.
func step(h, f int64, p0 float64, cfg FastConfig) bool {
	return h > 0 && f >= cfg.MinFailures && float64(f)/float64(h)-p0 >= cfg.MinShare && binomTail(h, f, p0) <= fastSignificance
}

// binomLower is P(X <= k) for X ~ Binomial(n, p).
func binomLower(n, k int64, p float64) float64 {
	if k >= n || p <= 0 {
		return 1
	}
	if k < 0 {
		return 0
	}
	if p >= 1 {
		return 0
	}
	var sum float64
	for i := int64(0); i <= k; i++ {
		sum += binomPMF(n, i, p)
	}
	return math.Min(1, sum)
}

// fastClearSignificance: a step is over when the newest handshakes are
// this unlikely at the share the step failed at (and near the baseline).
const fastClearSignificance = 1e-3

// span is handshakes and counted failures over some windows.
type span struct{ hs, fail int64 }

// suffixes returns, newest first, the running sums of ws (sorted by end)
// over their newest 1, 2, ... distinct ends.
func suffixes(ws []edgeWindow, reasons []attrs.Reason) []span {
	sorted := append([]edgeWindow(nil), ws...)
	sort.SliceStable(sorted, func(i, j int) bool { return sorted[i].End > sorted[j].End })
	var out []span
	var cur span
	for i, w := range sorted {
		cur.hs, cur.fail = cur.hs+w.HS, cur.fail+fastCount(w, reasons)
		if i == len(sorted)-1 || sorted[i+1].End != w.End {
			out = append(out, cur)
		}
	}
	return out
}

// stepIn is the suffix that is a step above p0 with the highest failing
// share, the longest of those (ok false: none): the span since the
// clients began failing.
func stepIn(sfx []span, p0 float64, cfg FastConfig) (span, bool) {
	var best span
	found := false
	for _, s := range sfx {
		if step(s.hs, s.fail, p0, cfg) && (!found || s.fail*best.hs >= best.fail*s.hs) {
			best, found = s, true
		}
	}
	return best, found
}

// judgeFast judges the recent windows (ending within fast.window of t)
// against the baseline: every window of the service in edge.window
// (all, merged) minus the recent ones. A step is found in the newest
// windows of a node (or of the service): the suffix since the clients
// began failing, not diluted by the successes before it. ep is the
// episode in progress, if any (Since 0: none).
//
// An episode with no counted failure for expire (edge.window) is over
// whatever the traffic says: a service that went quiet during a step starts
// afresh (and triggers again) when it fails again.
func judgeFast(all, recent []edgeWindow, ep fastEpisode, cfg FastConfig, expire time.Duration, t time.Time) fastVerdict {
	if ep.Since != 0 && t.Unix()-max(ep.Last, ep.Since) > int64(expire/time.Second) {
		ep = fastEpisode{}
	}
	v := fastVerdict{episode: ep}
	byNode := map[string][]edgeWindow{}
	var tot span
	var first int64
	reasons := map[string]int64{}
	for _, w := range recent {
		f := fastCount(w, cfg.Reasons)
		byNode[w.Node] = append(byNode[w.Node], w)
		tot.hs, tot.fail = tot.hs+w.HS, tot.fail+f
		if f > 0 && (first == 0 || w.Start() < first) {
			first = w.Start()
		}
		for _, r := range cfg.Reasons {
			if n := w.Reasons[string(r)]; n > 0 {
				reasons[string(r)] += n
			}
		}
	}
	var base span
	for _, w := range all {
		base.hs, base.fail = base.hs+w.HS, base.fail+fastCount(w, cfg.Reasons)
	}
	base.hs, base.fail = max(0, base.hs-tot.hs), max(0, base.fail-tot.fail)
	v.judged = tot.hs >= cfg.MinFailures
	v.hs, v.fail = tot.hs, tot.fail
	if tot.hs > 0 {
		v.share = float64(tot.fail) / float64(tot.hs)
	}
	v.reasons = topReasons(reasons)

	p0 := ep.Base
	if ep.Since == 0 {
		if base.hs < cfg.MinBaseline {
			return v // no baseline: the 5-minute judgement only
		}
		// The baseline's failing share, never taken as zero (a clean
		// baseline of 50 handshakes says "below about 2%", not "never").
		p0 = float64(base.fail+1) / float64(base.hs+2)
	}
	var failing []string
	var fs span
	for n, ws := range byNode {
		if s, ok := stepIn(suffixes(ws, cfg.Reasons), p0, cfg); ok {
			failing = append(failing, n)
			fs.hs, fs.fail = fs.hs+s.hs, fs.fail+s.fail
		}
	}
	all2 := suffixes(recent, cfg.Reasons)
	if len(failing) == 0 {
		if s, ok := stepIn(all2, p0, cfg); ok {
			// Spread over the nodes, none a step alone: the service's.
			for n, ws := range byNode {
				for _, w := range ws {
					if fastCount(w, cfg.Reasons) > 0 {
						failing = append(failing, n)
						break
					}
				}
			}
			fs = s
		}
	}
	sort.Strings(failing)
	switch {
	case len(failing) > 0:
		v.failing = true
		v.hs, v.fail, v.share = fs.hs, fs.fail, float64(fs.fail)/float64(fs.hs)
		if ep.Since == 0 {
			v.started = true
			v.episode = fastEpisode{Since: min(first, t.Unix()), Base: p0}
		}
		v.episode.Share = math.Max(v.episode.Share, v.share)
		for _, w := range recent {
			if fastCount(w, cfg.Reasons) > 0 {
				v.episode.Last = max(v.episode.Last, w.End)
			}
		}
		v.episode.Nodes = mergeNodes(v.episode.Nodes, failing)
	case ep.Since != 0 && cleared(all2, ep, cfg):
		v.cleared = true
		v.episode = fastEpisode{}
	case ep.Since != 0:
		v.failing = true // still elevated, or too quiet to tell
	}
	return v
}

// cleared: the newest handshakes are near the baseline and could hardly
// have come from clients failing at the step's share.
func cleared(sfx []span, ep fastEpisode, cfg FastConfig) bool {
	for _, s := range sfx {
		if s.hs >= cfg.MinFailures && float64(s.fail)/float64(s.hs)-ep.Base < cfg.MinShare/2 &&
			binomLower(s.hs, s.fail, math.Max(ep.Share, cfg.MinShare)) <= fastClearSignificance {
			return true
		}
	}
	return false
}

// mergeNodes adds the nodes of b not in a (sorted, bounded).
func mergeNodes(a, b []string) []string {
	out := append([]string(nil), a...)
	for _, n := range b {
		if i := sort.SearchStrings(out, n); (i == len(out) || out[i] != n) && len(out) < 64 {
			out = append(out, "")
			copy(out[i+1:], out[i:])
			out[i] = n
		}
	}
	return out
}

// topReasons is "unknown_ca 9, handshake_failure 1" (most first).
func topReasons(reasons map[string]int64) string {
	rs := make([]string, 0, len(reasons))
	for r := range reasons {
		rs = append(rs, r)
	}
	sort.Slice(rs, func(i, j int) bool {
		return reasons[rs[i]] > reasons[rs[j]] || reasons[rs[i]] == reasons[rs[j]] && rs[i] < rs[j]
	})
	for i, r := range rs {
		rs[i] = fmt.Sprintf("%s %d", r, reasons[r])
	}
	return strings.Join(rs, ", ")
}

// fastDetail: "real clients failing since 10:02:07 UTC on 2 nodes (a, b):
// 12 of 14 handshakes since the step (unknown_ca 12 in the last 10s), 0.4%
// usually".
func fastDetail(v fastVerdict, cfg FastConfig) string {
	where := fmt.Sprintf("on %d node", len(v.episode.Nodes))
	if len(v.episode.Nodes) != 1 {
		where += "s"
	}
	if len(v.episode.Nodes) > 0 {
		where += " (" + strings.Join(v.episode.Nodes, ", ") + ")"
	}
	return fmt.Sprintf("real clients failing since %s %s: %d of %d handshakes since the step (%s in the last %s), %.1f%% usually",
		time.Unix(v.episode.Since, 0).UTC().Format("15:04:05 MST"), where, v.fail, v.hs, v.reasons, cfg.Window, 100*v.episode.Base)
}

// recentFast keeps, in place, the windows that end within fast.window of
// t, then adds w (bounded).
func recentFast(wins []edgeWindow, w edgeWindow, window time.Duration, t time.Time) []edgeWindow {
	kept := append(within(wins, window, t), w)
	if len(kept) > maxRecentWindows {
		kept = kept[len(kept)-maxRecentWindows:]
	}
	return kept
}
