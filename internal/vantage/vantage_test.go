package vantage

import (
	"fmt"
	"slices"
	"testing"

	"github.com/stretchr/testify/assert"
)

func names(n int) []Member {
	ms := make([]Member, n)
	for i := range ms {
		ms[i] = Member{Name: fmt.Sprintf("node-%02d", i)}
	}
	return ms
}

func TestChooseIsTheSameOnEveryAgent(t *testing.T) {
	ms := names(7)
	rev := slices.Clone(ms)
	slices.Reverse(rev)
	for i := 0; i < 100; i++ {
		key := fmt.Sprintf("shop-%d.example.com:443", i)
		assert.Equal(t, Choose(key, ms, 3), Choose(key, rev, 3), key)
	}
}

func TestChoose(t *testing.T) {
	for _, tc := range []struct {
		name    string
		members []Member
		k, want int
	}{
		{"k of many", names(10), 3, 3},
		{"fewer members than k", names(2), 3, 2},
		{"none", nil, 3, 0},
		{"duplicates and empty names count once", []Member{{Name: "a"}, {Name: "a"}, {Name: ""}, {Name: "b"}}, 3, 2},
	} {
		assert.Len(t, Choose("k", tc.members, tc.k), tc.want, tc.name)
	}
}

// TestChooseSpreadsZones: k vantages are k zones when there are k zones,
// whatever the scores.
func TestChooseSpreadsZones(t *testing.T) {
	var ms []Member
	for i := 0; i < 9; i++ {
		ms = append(ms, Member{Name: fmt.Sprintf("n%d", i), Zone: fmt.Sprintf("z%d", i%3)})
	}
	zone := map[string]string{}
	for _, m := range ms {
		zone[m.Name] = m.Zone
	}
	for i := 0; i < 200; i++ {
		got := Choose(fmt.Sprintf("t%d", i), ms, 3)
		zs := map[string]bool{}
		for _, n := range got {
			zs[zone[n]] = true
		}
		assert.Len(t, zs, 3, "target %d: %v", i, got)
	}
	// Two zones, k = 3: both zones, then the next best.
	got := Choose("x", ms[:2], 3)
	assert.Len(t, got, 2)
}

// TestChooseBalancesAndMovesLittle: targets spread evenly; a member
// leaving moves only the targets it had (each to the next in rank), and
// its return moves them back.
func TestChooseBalancesAndMovesLittle(t *testing.T) {
	ms := names(10)
	const targets, k = 3000, 3
	load := map[string]int{}
	before := map[string][]string{}
	for i := 0; i < targets; i++ {
		key := fmt.Sprintf("t%d", i)
		before[key] = Choose(key, ms, k)
		for _, n := range before[key] {
			load[n]++
		}
	}
	for n, c := range load {
		assert.InDelta(t, targets*k/10, c, float64(targets*k/10)*0.15, "member %s carries %d", n, c)
	}
	gone := "node-04"
	left := slices.DeleteFunc(slices.Clone(ms), func(m Member) bool { return m.Name == gone })
	moved := 0
	for key, was := range before {
		now := Choose(key, left, k)
		for _, n := range was {
			if n != gone {
				assert.Contains(t, now, n, "%s lost a vantage that did not leave", key)
			}
		}
		if slices.Contains(was, gone) {
			moved++
		} else {
			assert.Equal(t, was, now, "%s moved although its vantages stayed", key)
		}
		assert.Equal(t, was, Choose(key, ms, k), "back")
	}
	assert.InDelta(t, load[gone], moved, 0)
}

func TestDecide(t *testing.T) {
	s := NewSet("node-01", 2)
	d := s.Decide("t")
	assert.True(t, d.Probe, "membership unknown: every agent probes")
	s.Update(names(5))
	probing := 0
	for _, self := range []string{"node-00", "node-01", "node-02", "node-03", "node-04"} {
		x := NewSet(self, 2)
		x.Update(names(5))
		if d := x.Decide("t"); d.Probe {
			probing++
			assert.Equal(t, self, d.Vantages[d.Rank])
		}
	}
	assert.Equal(t, 2, probing, "k agents probe")
	out := NewSet("node-99", 2)
	out.Update(names(5))
	assert.False(t, out.Decide("t").Probe, "not a member (not ready): adds no vantage")
	empty := NewSet("node-99", 2)
	empty.Update(nil)
	assert.True(t, empty.Decide("t").Probe, "no members at all: probe rather than leave the target unprobed")
	assert.True(t, s.Update(names(4)))
	assert.False(t, s.Update(names(4)), "the same membership is no change")
}

// TestDecideSharesVantageLists: the targets with the same vantages hold
// one list (k! x C(N, k) of them, not one per target); a new membership
// starts afresh.
func TestDecideSharesVantageLists(t *testing.T) {
	s := NewSet("node-01", 2)
	s.Update(names(3))
	byList := map[string][]string{}
	for i := range 1000 {
		d := s.Decide(fmt.Sprintf("t%d.example.com:443", i))
		k := fmt.Sprint(d.Vantages)
		if c, ok := byList[k]; ok && &c[0] != &d.Vantages[0] {
			t.Fatalf("two targets with vantages %s hold two lists", k)
		}
		byList[k] = d.Vantages
	}
	if len(byList) != 6 || len(s.lists) != 6 {
		t.Errorf("%d distinct lists (%d kept), want the 6 orders of 2 of 3", len(byList), len(s.lists))
	}
	s.Update(names(4))
	if len(s.lists) != 0 {
		t.Errorf("a new membership kept %d lists of the old", len(s.lists))
	}
	d := s.Decide("t1.example.com:443")
	if got := append(d.Vantages, "x"); &got[0] == &d.Vantages[0] {
		t.Errorf("an append to a shared list writes into it")
	}
}
