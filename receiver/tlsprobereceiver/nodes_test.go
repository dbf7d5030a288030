package tlsprobereceiver

import (
	"maps"
	"slices"
	"strings"
	"testing"
	"time"
)

func TestCompareNodes(t *testing.T) {
	old, renewed := time.Date(2026, 9, 1, 0, 0, 0, 0, time.UTC), time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)
	v := func(node, chain string, from time.Time, ok bool) nodeView {
		return nodeView{node: node, chain: chain, leafFrom: from, ok: ok, version: "1.3", cipher: "TLS_AES_128_GCM_SHA256"}
	}
	for _, tc := range []struct {
		name       string
		views      []nodeView
		consistent bool
		reference  string
		lagging    []string
		differs    map[string][]string
	}{
		{"same chain", []nodeView{v("a", "N", renewed, true), v("b", "N", renewed, true)}, true, "N", nil, nil},
		// A renewal that reached one node of three: the other two lag.
		{"renewal reached one", []nodeView{v("a", "O", old, true), v("b", "N", renewed, true), v("c", "O", old, true)}, false, "N", []string{"a", "c"},
			map[string][]string{"a": {differsChain}, "c": {differsChain}}},
		// The newer chain is broken: the working one is the reference and
		// the broken node differs but does not lag.
		{"bad deploy on one node", []nodeView{v("a", "O", old, true), v("b", "N", renewed, false)}, false, "O", nil, map[string][]string{"b": {differsChain}}},
		// A node that does not answer is left out of the comparison.
		{"unreachable node", []nodeView{v("a", "N", renewed, true), {node: "b"}}, true, "N", nil, nil},
		{"protocol and staple", []nodeView{v("a", "N", renewed, true), v("b", "N", renewed, true), func() nodeView {
			x := v("c", "N", renewed, true)
			x.version, x.stapled = "1.2", true
			return x
		}()}, true, "N", nil, map[string][]string{"c": {differsProtocol, differsOCSPStaple}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := compareNodes(tc.views)
			if got.consistent != tc.consistent || got.reference != tc.reference {
				t.Fatalf("consistent %v reference %q, want %v %q", got.consistent, got.reference, tc.consistent, tc.reference)
			}
			var lag []string
			differs := map[string][]string{}
			for n, vd := range got.verdicts {
				if vd.lagging {
					lag = append(lag, n)
				}
				if len(vd.differs) > 0 {
					differs[n] = vd.differs
					if !strings.Contains(vd.detail, "node "+n) || !strings.Contains(got.odd, n) {
						t.Errorf("%s: detail %q / odd %q do not name it", n, vd.detail, got.odd)
					}
				}
			}
			slices.Sort(lag)
			if !slices.Equal(lag, tc.lagging) {
				t.Errorf("lagging %v, want %v", lag, tc.lagging)
			}
			if !maps.EqualFunc(differs, tc.differs, slices.Equal) && !(len(differs) == 0 && len(tc.differs) == 0) {
				t.Errorf("differs %v, want %v", differs, tc.differs)
			}
		})
	}
}

func TestJudgeResumption(t *testing.T) {
	ok, refused, none := edge{issued: true, resumed: true}, edge{issued: true}, edge{}
	for _, tc := range []struct {
		name    string
		members []string
		edges   []edge // edges[i]: members[i] resuming members[i-1]'s session
		self    []edge
		expect  bool
		want    map[string]string
	}{
		{"all share keys", []string{"a", "b", "c"}, []edge{ok, ok, ok}, nil, false,
			map[string]string{"a": resumptionOK, "b": resumptionOK, "c": resumptionOK}},
		// c has other keys: c refuses b's sessions and a refuses c's. Only
		// c is blamed, never a (whose refusal is of c's ticket).
		{"one node out of sync", []string{"a", "b", "c"}, []edge{refused, ok, refused}, nil, false,
			map[string]string{"a": resumptionOK, "b": resumptionOK, "c": resumptionFailed}},
		{"two groups, a tie", []string{"a", "b", "c", "d"}, []edge{refused, ok, refused, ok}, nil, false,
			map[string]string{"a": resumptionFailed, "b": resumptionFailed, "c": resumptionFailed, "d": resumptionFailed}},
		{"tickets off everywhere", []string{"a", "b"}, []edge{none, none}, []edge{none, none}, false,
			map[string]string{"a": resumptionUnsupported, "b": resumptionUnsupported}},
		{"tickets off, resumption expected", []string{"a", "b"}, []edge{none, none}, []edge{none, none}, true,
			map[string]string{"a": resumptionFailed, "b": resumptionFailed}},
		{"no two nodes share keys", []string{"a", "b"}, []edge{refused, refused}, []edge{ok, ok}, false,
			map[string]string{"a": resumptionFailed, "b": resumptionFailed}},
		// One node: its only check is of its own session.
		{"single node", []string{"a"}, []edge{ok}, nil, false, map[string]string{"a": resumptionOK}},
		{"single node, no resumption", []string{"a"}, []edge{refused}, nil, false, map[string]string{"a": resumptionUnsupported}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := judgeResumption(tc.members, tc.edges, tc.self, tc.expect)
			for n, w := range tc.want {
				if got[n].result != w {
					t.Errorf("%s: %s (%s), want %s", n, got[n].result, got[n].detail, w)
				}
			}
		})
	}
	// A failure in either version wins; ok in one and unsupported in the
	// other is ok.
	m := mergeResumption(map[string]map[string]resumeVerdict{
		"1.3": {"a": {resumptionOK, ""}, "b": {resumptionFailed, "x"}},
		"1.2": {"a": {resumptionUnsupported, ""}, "b": {resumptionOK, ""}},
	})
	if m["a"].result != resumptionOK || m["b"].result != resumptionFailed || !strings.HasPrefix(m["b"].detail, "TLS 1.3: ") {
		t.Fatalf("merge: %+v", m)
	}
}
