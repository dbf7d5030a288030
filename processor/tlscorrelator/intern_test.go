package tlscorrelator

import (
	"strconv"
	"strings"
	"testing"
	"unsafe"
)

func same(a, b string) bool { return unsafe.StringData(a) == unsafe.StringData(b) }

func TestInterner(t *testing.T) {
	var in interner
	a := in.get(strings.Clone(chainA))
	if b := in.get(strings.Clone(chainA)); !same(a, b) || b != chainA {
		t.Fatalf("two copies of one fingerprint are not shared")
	}
	if in.get("") != "" {
		t.Fatalf("empty string interned")
	}
	// The endpoints let go of chainA: a rebuild drops it, keeps what they hold.
	eps := map[string]*endpointState{"x": {CurChain: in.get(strings.Clone(chainB)), Trouble: &Trouble{LagRef: in.get(strings.Clone(spkiA))}}}
	in.rebuild(eps)
	if _, ok := in.m[chainA]; ok || len(in.m) != 2 || in.base != 2 {
		t.Errorf("after a rebuild: %d strings (chainA kept %v), base %d; want the 2 held", len(in.m), ok, in.base)
	}
	if !same(in.get(strings.Clone(chainB)), eps["x"].CurChain) {
		t.Errorf("a held fingerprint is no longer shared after a rebuild")
	}
	// A restored endpoint's own copies are replaced by the table's.
	ep := &endpointState{GoodChain: strings.Clone(chainB), GoodSPKI: strings.Clone(spkiA)}
	in.share(ep)
	if !same(ep.GoodChain, eps["x"].CurChain) || !same(ep.GoodSPKI, eps["x"].LagRef) {
		t.Errorf("share kept the restored copies")
	}
}

func TestInternerBounded(t *testing.T) {
	in := interner{}
	for i := range maxInterned + 10 {
		in.get(strings.Repeat("x", 1+i%7) + string(rune('a'+i%26)) + strconv.Itoa(i))
	}
	if len(in.m) != maxInterned {
		t.Fatalf("table holds %d strings, bound %d", len(in.m), maxInterned)
	}
	if !in.rebuildDue() {
		t.Errorf("a table grown from empty to its bound is not due for a rebuild")
	}
	s := strings.Clone("past the bound")
	if got := in.get(s); got != s || !same(got, s) {
		t.Errorf("past the bound a string is not kept as it came")
	}
}
