// Package vantage chooses which agents probe a target: k of the live
// agents, by rendezvous (highest-random-weight) hashing of the target over
// the member set, spread across zones when they are known. Every agent
// computes the same choice from the same membership, with no coordination;
// a member leaving moves only its own targets (to the next in rank), a
// member returning takes them back.
package vantage // import "github.com/certpulse/certpulse/internal/vantage"

import (
	"fmt"
	"hash/fnv"
	"slices"
	"sort"
	"strings"
	"sync"

	"go.opentelemetry.io/collector/component"
)

// Member is one agent: its vantage name and, when known, its zone
// (topology.kubernetes.io/zone) or region.
type Member struct {
	Name string `mapstructure:"name"`
	Zone string `mapstructure:"zone"`
}

// score is the member's weight for key (splitmix64 over FNV-1a, so that
// names differing in one character spread).
func score(member, key string) uint64 {
	h := fnv.New64a()
	_, _ = h.Write([]byte(member))
	_, _ = h.Write([]byte{0})
	_, _ = h.Write([]byte(key))
	x := h.Sum64()
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	x ^= x >> 31
	return x
}

// Choose returns the k members that probe key, in rank order (the first
// is the owner): by score, taking the best of each zone not yet chosen
// before a second member of any zone, so that k vantages are k places
// when there are k zones. Pure: the same members and key give the same
// answer on every agent, whatever the order of members.
func Choose(key string, members []Member, k int) []string {
	type ranked struct {
		Member
		s uint64
	}
	rs := make([]ranked, 0, len(members))
	seen := map[string]bool{}
	for _, m := range members {
		if m.Name == "" || seen[m.Name] {
			continue
		}
		seen[m.Name] = true
		rs = append(rs, ranked{m, score(m.Name, key)})
	}
	sort.Slice(rs, func(i, j int) bool {
		if rs[i].s != rs[j].s {
			return rs[i].s > rs[j].s
		}
		return rs[i].Name < rs[j].Name
	})
	k = min(k, len(rs))
	out := make([]string, 0, k)
	used := make([]bool, len(rs))
	zones := map[string]bool{}
	for i, r := range rs { // the best of each zone first
		if len(out) == k {
			break
		}
		if r.Zone == "" || zones[r.Zone] {
			continue
		}
		zones[r.Zone], used[i] = true, true
		out = append(out, r.Name)
	}
	if len(out) < k { // then by score
		for i, r := range rs {
			if len(out) == k {
				break
			}
			if !used[i] {
				used[i] = true
				out = append(out, r.Name)
			}
		}
	}
	// Rank order is score order among the chosen.
	rank := map[string]int{}
	for i, r := range rs {
		rank[r.Name] = i
	}
	sort.Slice(out, func(i, j int) bool { return rank[out[i]] < rank[out[j]] })
	return out
}

// Set is a collector's current membership and its own name. Safe for
// concurrent use.
type Set struct {
	self  string
	count int

	mu      sync.Mutex
	members []Member
	known   bool // a membership was read at least once
	version uint64
	// lists shares one copy of each vantage list among the targets with
	// the same vantages, in rank order (a few for N agents and k
	// vantages, not one per target: 5.5 MB at 100,000 targets); reset
	// when the membership changes, bounded by maxLists.
	lists map[string][]string
}

// maxLists bounds Set.lists: k! x C(N, k) lists exist; past the bound a
// decision keeps its own.
const maxLists = 4096

// NewSet returns a Set for this agent (self) choosing count vantages per
// target.
func NewSet(self string, count int) *Set { return &Set{self: self, count: count} }

// Self is this agent's member name.
func (s *Set) Self() string { return s.self }

// Count is k.
func (s *Set) Count() int { return s.count }

// Update replaces the membership (sorted copy kept); it reports whether it
// changed.
func (s *Set) Update(members []Member) bool {
	ms := append([]Member(nil), members...)
	sort.Slice(ms, func(i, j int) bool { return ms[i].Name < ms[j].Name })
	s.mu.Lock()
	defer s.mu.Unlock()
	changed := !s.known || !slices.Equal(ms, s.members)
	s.members, s.known = ms, true
	if changed {
		s.version++
		s.lists = nil
	}
	return changed
}

// Members returns the current membership and whether one is known.
func (s *Set) Members() ([]Member, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Member(nil), s.members...), s.known
}

// Decision is what this agent does about one target.
type Decision struct {
	// Probe: this agent is among the target's vantages (or the membership
	// is unknown, or this agent is not a member: every agent probes, so
	// that no target is left without one).
	Probe bool
	// Rank is this agent's rank among the vantages (0: the owner); -1
	// when not chosen.
	Rank int
	// Vantages are the chosen members in rank order (nil when unknown).
	Vantages []string
}

// Decide says whether self probes key now.
func (s *Set) Decide(key string) Decision {
	s.mu.Lock()
	members, known := s.members, s.known
	s.mu.Unlock()
	if !known || len(members) == 0 {
		return Decision{Probe: true, Rank: 0}
	}
	member := false
	for _, m := range members {
		if m.Name == s.self {
			member = true
			break
		}
	}
	vs := s.shared(Choose(key, members, s.count))
	d := Decision{Rank: slices.Index(vs, s.self), Vantages: vs}
	d.Probe = d.Rank >= 0
	if !member {
		// Not (yet) a member, e.g. not ready: probe only when no member
		// is chosen at all (an empty set), never to add a vantage.
		d.Probe = len(vs) == 0
	}
	return d
}

// shared returns the one copy of the vantage list vs (read only: every
// target with these vantages holds it).
func (s *Set) shared(vs []string) []string {
	k := strings.Join(vs, "\x00")
	s.mu.Lock()
	defer s.mu.Unlock()
	if c, ok := s.lists[k]; ok {
		return c
	}
	if len(s.lists) >= maxLists {
		return vs
	}
	if s.lists == nil {
		s.lists = map[string][]string{}
	}
	vs = vs[:len(vs):len(vs)] // an append by a reader copies
	s.lists[k] = vs
	return vs
}

// Provider is implemented by the certpulse_vantages extension.
type Provider interface {
	Vantages() *Set
}

// Find returns the Set of the extension id among the host's extensions.
func Find(exts map[component.ID]component.Component, id component.ID) (*Set, error) {
	ext, ok := exts[id]
	if !ok {
		return nil, fmt.Errorf("vantages: extension %s is not configured (add it to service::extensions)", id)
	}
	p, ok := ext.(Provider)
	if !ok {
		return nil, fmt.Errorf("vantages: extension %s is not a certpulse_vantages extension", id)
	}
	return p.Vantages(), nil
}
