package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"time"
)

// What can differ between the nodes of one name (certpulse.nodes.differs).
const (
	differsChain      = "chain"
	differsProtocol   = "protocol"
	differsCipher     = "cipher"
	differsOCSPStaple = "ocsp_staple"
)

// nodeView is what the comparison needs from one node's result under the
// target's first client profile.
type nodeView struct {
	node string
	// chain is the served chain's fingerprint, "" when none was captured
	// (the node did not answer: its own result says why).
	chain    string
	leafFrom time.Time // the leaf's notBefore
	ok       bool      // the result succeeded
	version  string    // "" when no handshake completed
	cipher   string
	stapled  bool
}

// nodeVerdict is how one node differs from the others.
type nodeVerdict struct {
	differs []string
	// detail names what differs, for the node's record body.
	detail string
	// lagging: the node serves an older chain than the reference one (a
	// renewal that has not reached it).
	lagging bool
}

// nodeComparison is the outcome of comparing the nodes of one name.
type nodeComparison struct {
	// consistent: every node that presented a chain presented the same one.
	consistent bool
	// reference is the chain the name should serve: the newest (latest
	// leaf notBefore) among the chains served with a successful result,
	// or among all when none succeeded; ties go to the chain more nodes
	// serve.
	reference string
	verdicts  map[string]nodeVerdict
	// odd names the nodes that differ, for every node's record body.
	odd string
}

// compareNodes compares what the nodes of one name serve. Pure: the probe
// feeds it one round's results.
func compareNodes(vs []nodeView) nodeComparison {
	out := nodeComparison{consistent: true, verdicts: map[string]nodeVerdict{}}
	type chainInfo struct {
		from  time.Time
		ok    bool
		nodes []string
	}
	chains := map[string]*chainInfo{}
	for _, v := range vs {
		if v.chain == "" {
			continue
		}
		ci := chains[v.chain]
		if ci == nil {
			ci = &chainInfo{from: v.leafFrom}
			chains[v.chain] = ci
		}
		ci.ok = ci.ok || v.ok
		ci.nodes = append(ci.nodes, v.node)
	}
	if len(chains) > 1 {
		out.consistent = false
	}
	anyOK := false
	for _, ci := range chains {
		anyOK = anyOK || ci.ok
	}
	for c, ci := range chains {
		if anyOK && !ci.ok {
			continue
		}
		if out.reference == "" {
			out.reference = c
			continue
		}
		ref := chains[out.reference]
		if d := ci.from.Compare(ref.from); d > 0 || (d == 0 && (len(ci.nodes) > len(ref.nodes) || (len(ci.nodes) == len(ref.nodes) && c < out.reference))) {
			out.reference = c
		}
	}
	// Protocol, cipher and staple: the value most nodes show is the norm.
	answered := slices.DeleteFunc(slices.Clone(vs), func(v nodeView) bool { return v.version == "" })
	normVersion := majority(answered, func(v nodeView) string { return v.version })
	normCipher := majority(answered, func(v nodeView) string { return v.cipher })
	normStaple := majority(answered, func(v nodeView) string { return fmt.Sprint(v.stapled) })
	var odd []string
	for _, v := range vs {
		var verdict nodeVerdict
		var parts []string
		if v.chain != "" && out.reference != "" && v.chain != out.reference {
			ref := chains[out.reference]
			verdict.differs = append(verdict.differs, differsChain)
			verdict.lagging = v.leafFrom.Before(ref.from)
			what := "serves chain " + short(v.chain) + " (leaf from " + day(v.leafFrom) + ") while " + strings.Join(ref.nodes, ", ") + " serve " + short(out.reference) + " (leaf from " + day(ref.from) + ")"
			if verdict.lagging {
				what += ": the newer certificate has not reached this node (propagation lag)"
			}
			parts = append(parts, what)
		}
		if v.version != "" {
			if v.version != normVersion {
				verdict.differs = append(verdict.differs, differsProtocol)
				parts = append(parts, "negotiates TLS "+v.version+" where the other nodes negotiate "+normVersion)
			}
			if v.cipher != normCipher {
				verdict.differs = append(verdict.differs, differsCipher)
				parts = append(parts, "picks "+v.cipher+" where the other nodes pick "+normCipher)
			}
			if fmt.Sprint(v.stapled) != normStaple {
				verdict.differs = append(verdict.differs, differsOCSPStaple)
				if v.stapled {
					parts = append(parts, "staples an OCSP response where the other nodes staple none")
				} else {
					parts = append(parts, "staples no OCSP response where the other nodes do")
				}
			}
		}
		if len(parts) > 0 {
			verdict.detail = "node " + v.node + " differs from the other nodes: " + strings.Join(parts, "; ")
			odd = append(odd, v.node+" ("+strings.Join(verdict.differs, ", ")+")")
		}
		out.verdicts[v.node] = verdict
	}
	if len(odd) > 0 {
		out.odd = "nodes that differ: " + strings.Join(odd, ", ")
	}
	return out
}

// majority returns the value most views have; ties go to the value of the
// earliest view.
func majority(vs []nodeView, f func(nodeView) string) string {
	counts := map[string]int{}
	best, bestN := "", 0
	for _, v := range vs {
		counts[f(v)]++
	}
	for _, v := range vs {
		if n := counts[f(v)]; n > bestN {
			best, bestN = f(v), n
		}
	}
	return best
}

func short(fp string) string {
	if len(fp) > 12 {
		return fp[:12]
	}
	return fp
}

func day(t time.Time) string { return t.UTC().Format("2006-01-02 15:04") }

// Session resumption outcomes (certpulse.resumption.result).
const (
	resumptionOK          = "ok"
	resumptionFailed      = "resumption_failed"
	resumptionUnsupported = "resumption_unsupported"
	resumptionNotChecked  = "not_checked"
)

// edge is one resumption check in the ring: a session node[i-1] issued,
// offered to node[i] (confirmed: a failure was retried once).
type edge struct {
	issued  bool // the issuing node handed out a session
	resumed bool
}

// resumeVerdict is one node's resumption outcome.
type resumeVerdict struct {
	result string
	detail string
}

// judgeResumption blames the nodes whose ticket keys are out of sync, from
// one version's ring of checks over members (the nodes that serve the
// reference chain, in ring order): edges[i] is node i resuming node i-1's
// session; self[i] is node i resuming its own, run only when no edge
// succeeded (nil otherwise). The nodes split into groups at the failed
// edges; the largest group is in sync and every node outside it is blamed
// (a tie blames every node: the keys are split). A name where no node
// resumes at all is unsupported (failed when expect is set).
func judgeResumption(members []string, edges []edge, self []edge, expect bool) map[string]resumeVerdict {
	out := map[string]resumeVerdict{}
	n := len(members)
	if n == 0 {
		return out
	}
	if n == 1 {
		if edges[0].resumed {
			out[members[0]] = resumeVerdict{resumptionOK, "resumes its own sessions (the only node)"}
			return out
		}
		self = edges // the only node: its check was of its own session
	}
	unsupported := func(why string) {
		res := resumptionUnsupported
		if expect {
			res = resumptionFailed
			why += "; the target expects resumption (expect_resumption)"
		}
		for _, m := range members {
			out[m] = resumeVerdict{res, why}
		}
	}
	anyEdge := false
	for _, e := range edges {
		anyEdge = anyEdge || e.resumed
	}
	if !anyEdge {
		var selfOK []string
		for i, e := range self {
			if e.resumed && i < n {
				selfOK = append(selfOK, members[i])
			}
		}
		switch {
		case n == 1 && len(selfOK) == 1:
			out[members[0]] = resumeVerdict{resumptionOK, "resumes its own sessions (the only node)"}
		case len(selfOK) == 0:
			unsupported("no node resumes a session, not even its own (session tickets off?)")
		default:
			for i, m := range members {
				if self != nil && self[i].resumed {
					out[m] = resumeVerdict{resumptionFailed, "resumes only its own sessions: no two nodes share session ticket keys (" + strings.Join(members, ", ") + ")"}
				} else {
					out[m] = resumeVerdict{resumptionFailed, "resumes no session, not even its own, while " + strings.Join(selfOK, ", ") + " resume their own"}
				}
			}
		}
		return out
	}
	// Groups: node i joins node i-1's group when it resumed its session.
	start := 0
	for i, e := range edges {
		if !e.resumed {
			start = i
			break
		}
	}
	var groups [][]int
	for k := 0; k < n; k++ {
		i := (start + k) % n
		if k == 0 || !edges[i].resumed {
			groups = append(groups, nil)
		}
		groups[len(groups)-1] = append(groups[len(groups)-1], i)
	}
	if len(groups) == 1 {
		for _, m := range members {
			out[m] = resumeVerdict{resumptionOK, "resumes sessions its neighbour issued"}
		}
		return out
	}
	largest, tie := 0, false
	for gi, g := range groups {
		if len(g) > len(groups[largest]) {
			largest, tie = gi, false
		} else if gi != largest && len(g) == len(groups[largest]) {
			tie = true
		}
	}
	names := func(g []int) string {
		s := make([]string, len(g))
		for i, x := range g {
			s[i] = members[x]
		}
		return strings.Join(s, ", ")
	}
	for gi, g := range groups {
		for _, i := range g {
			prev := members[(i-1+n)%n]
			switch {
			case gi == largest && !tie:
				out[members[i]] = resumeVerdict{resumptionOK, "shares session ticket keys with " + names(g)}
			case tie:
				var all []string
				for _, gg := range groups {
					all = append(all, "{"+names(gg)+"}")
				}
				out[members[i]] = resumeVerdict{resumptionFailed, "session ticket keys are split between groups of nodes " + strings.Join(all, " and ")}
			case !edges[i].issued:
				out[members[i]] = resumeVerdict{resumptionFailed, "out of sync with its neighbours: " + prev + " issued no session to offer it, while " + names(groups[largest]) + " resume each other's sessions"}
			default:
				out[members[i]] = resumeVerdict{resumptionFailed, fmt.Sprintf("session ticket keys out of sync: refuses sessions %s issued (confirmed), while %s resume each other's", prev, names(groups[largest]))}
			}
		}
	}
	return out
}

// mergeResumption combines the verdicts of the TLS 1.3 and TLS 1.2 rings:
// failed in either is failed; ok in either is ok; else unsupported.
func mergeResumption(byVersion map[string]map[string]resumeVerdict) map[string]resumeVerdict {
	out := map[string]resumeVerdict{}
	rank := map[string]int{resumptionNotChecked: 0, resumptionUnsupported: 1, resumptionOK: 2, resumptionFailed: 3}
	versions := make([]string, 0, len(byVersion))
	for v := range byVersion {
		versions = append(versions, v)
	}
	slices.SortFunc(versions, func(a, b string) int { return cmp.Compare(b, a) }) // 1.3 first
	for _, v := range versions {
		for node, verdict := range byVersion[v] {
			verdict.detail = "TLS " + v + ": " + verdict.detail
			cur, ok := out[node]
			if !ok || rank[verdict.result] > rank[cur.result] {
				out[node] = verdict
			}
		}
	}
	return out
}
