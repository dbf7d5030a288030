package tlscorrelator

import (
	"encoding/json"
	"strings"
	"testing"
	"unsafe"
)

// TestPersistChanged: what a probe changes in an endpoint's state makes
// its bucket dirty, except the times and counters of a healthy endpoint
// within one slot; a Trouble is compared by value, not by pointer.
func TestPersistChanged(t *testing.T) {
	const slot = 600
	base := endpointState{LastSeen: 1000, LastReason: "ok", GoodChain: "c1", CurChain: "c1"}
	with := func(f func(*endpointState)) endpointState { s := base; f(&s); return s }
	for _, tc := range []struct {
		name          string
		before, after endpointState
		want          bool
	}{
		{"nothing", base, base, false},
		{"seen again within the slot", base, with(func(s *endpointState) { s.LastSeen += 60; s.ConsecOK++; s.LastPassed = 1060 }), false},
		{"seen in the next slot", base, with(func(s *endpointState) { s.LastSeen += slot }), true},
		{"reason", base, with(func(s *endpointState) { s.LastReason = "expired" }), true},
		{"chain", base, with(func(s *endpointState) { s.CurChain = "c2" }), true},
		{"incident opened", base, with(func(s *endpointState) { s.setTrouble(Trouble{Incident: "fp"}) }), true},
		{"incident closed", with(func(s *endpointState) { s.Trouble = &Trouble{Incident: "fp"} }), base, true},
		{"equal trouble, another pointer", with(func(s *endpointState) { s.Trouble = &Trouble{Incident: "fp"} }), with(func(s *endpointState) { s.Trouble = &Trouble{Incident: "fp"} }), false},
		{"lag since", with(func(s *endpointState) { s.Trouble = &Trouble{LagSince: 5, LagRef: "c0"} }), with(func(s *endpointState) { s.Trouble = &Trouble{LagSince: 6, LagRef: "c0"} }), true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := persistChanged(&tc.before, &tc.after, slot, 0); got != tc.want {
				t.Errorf("persistChanged = %v, want %v", got, tc.want)
			}
		})
	}
}

// TestSetTrouble: a zero Trouble is none; an equal one keeps the pointer
// (a copy taken before compares equal); a change is a new value, the old
// one untouched.
func TestSetTrouble(t *testing.T) {
	var ep endpointState
	ep.setTrouble(Trouble{})
	if ep.Trouble != nil {
		t.Fatal("a zero Trouble is held")
	}
	ep.setTrouble(Trouble{Incident: "a"})
	first := ep.Trouble
	ep.setTrouble(Trouble{Incident: "a"})
	if ep.Trouble != first {
		t.Error("an equal Trouble replaced the pointer")
	}
	ep.setTrouble(Trouble{Incident: "b"})
	if first.Incident != "a" || ep.Incident != "b" {
		t.Errorf("a change modified the old Trouble in place: old %q, new %q", first.Incident, ep.Incident)
	}
	ep.setTrouble(Trouble{})
	if ep.Trouble != nil || ep.trouble() != (Trouble{}) {
		t.Error("a cleared Trouble is held")
	}
}

// TestEndpointStateJSON: state written before Trouble was split out (its
// fields were the state's own) is read the same, and is written with the
// same keys; a healthy endpoint holds no Trouble.
func TestEndpointStateJSON(t *testing.T) {
	old := `{"s":100,"r":"hostname_mismatch","f":2,"fs":90,"h":true,"gc":"c1","cc":"c2","i":"inc1","ls":80,"lr":"c0","li":"inc2"}`
	var ep endpointState
	if err := json.Unmarshal([]byte(old), &ep); err != nil {
		t.Fatal(err)
	}
	want := Trouble{Incident: "inc1", LagSince: 80, LagRef: "c0", LagIncident: "inc2"}
	if ep.trouble() != want || ep.LastSeen != 100 || ep.CurChain != "c2" || ep.FailingSince != 90 || !ep.HealthyOnce {
		t.Fatalf("decoded %+v, trouble %+v", ep, ep.trouble())
	}
	out, err := json.Marshal(&ep)
	if err != nil {
		t.Fatal(err)
	}
	var back, want2 map[string]any
	_ = json.Unmarshal(out, &back)
	_ = json.Unmarshal([]byte(old), &want2)
	if len(back) != len(want2) {
		t.Errorf("written %s, want the keys of %s", out, old)
	}
	for k, v := range want2 {
		if back[k] != v {
			t.Errorf("key %q written %v, want %v", k, back[k], v)
		}
	}
	var healthy endpointState
	if err := json.Unmarshal([]byte(`{"s":100,"r":"ok","gc":"c1","cc":"c1"}`), &healthy); err != nil {
		t.Fatal(err)
	}
	if healthy.Trouble != nil {
		t.Error("a healthy endpoint's state holds a Trouble")
	}
	if n := unsafe.Sizeof(endpointState{}); n > 128 {
		t.Errorf("endpointState is %d bytes, want <= 128 (a size class of the allocator)", n)
	}
}

// TestEndpointStateOneChainCopy: a healthy endpoint's current chain is its
// good chain, written once and read back as both; a current chain that
// differs, or a state with no good chain, is written as it is.
func TestEndpointStateOneChainCopy(t *testing.T) {
	for _, tc := range []struct {
		name   string
		ep     endpointState
		wantCC bool
	}{
		{"healthy", endpointState{LastSeen: 1, GoodChain: "c1", CurChain: "c1"}, false},
		{"changed chain", endpointState{LastSeen: 1, GoodChain: "c1", CurChain: "c2"}, true},
		{"never healthy", endpointState{LastSeen: 1, CurChain: "c2"}, true},
		{"no chain yet", endpointState{LastSeen: 1}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b, err := json.Marshal(map[string]*endpointState{"k": &tc.ep})
			if err != nil {
				t.Fatal(err)
			}
			var raw map[string]map[string]any
			_ = json.Unmarshal(b, &raw)
			if _, ok := raw["k"]["cc"]; ok != tc.wantCC {
				t.Errorf("%s: cc written %v, want %v", b, ok, tc.wantCC)
			}
			var back map[string]*endpointState
			if err := json.Unmarshal(b, &back); err != nil {
				t.Fatal(err)
			}
			if *back["k"] != tc.ep {
				t.Errorf("read back %+v, want %+v", *back["k"], tc.ep)
			}
		})
	}
}

// TestEndpointStatePacked: hex fingerprints are written packed and read
// back as hex; state an earlier version wrote (hex) reads the same.
func TestEndpointStatePacked(t *testing.T) {
	chain, spki, leaf := strings.Repeat("c", 64), strings.Repeat("5", 64), strings.Repeat("1e", 32)
	ep := endpointState{LastSeen: 7, LastReason: "ok", GoodChain: chain, CurChain: chain, GoodSPKI: spki, GoodLeaf: leaf}
	b, err := json.Marshal(&ep)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(string(b), chain) || strings.Contains(string(b), spki) || strings.Contains(string(b), leaf) {
		t.Errorf("hex fingerprints written as they are: %s", b)
	}
	var back endpointState
	if err := json.Unmarshal(b, &back); err != nil {
		t.Fatal(err)
	}
	if back != ep {
		t.Errorf("read back %+v, want %+v", back, ep)
	}
	old := `{"s":7,"r":"ok","gc":"` + chain + `","gs":"` + spki + `","gl":"` + leaf + `","cc":"` + chain + `"}`
	var fromOld endpointState
	if err := json.Unmarshal([]byte(old), &fromOld); err != nil {
		t.Fatal(err)
	}
	if fromOld != ep {
		t.Errorf("earlier version's state read as %+v, want %+v", fromOld, ep)
	}
	t.Logf("%d bytes written, %d by the earlier version", len(b), len(old))
}
