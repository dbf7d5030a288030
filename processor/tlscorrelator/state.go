package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"encoding/json"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// endpointState is what the engine keeps per endpoint (service, address,
// port, profile, vantage). Kept small: goal <= 1 KiB per endpoint.
type endpointState struct {
	LastSeen     int64        `json:"s"`
	LastReason   attrs.Reason `json:"r,omitempty"`
	ConsecOK     uint16       `json:"o,omitempty"`
	ConsecFail   uint16       `json:"f,omitempty"`
	HealthyOnce  bool         `json:"h,omitempty"`
	FailingSince int64        `json:"fs,omitempty"`
	GoodChain    string       `json:"gc,omitempty"` // last-known-good chain fingerprint
	GoodSPKI     string       `json:"gs,omitempty"`
	GoodLeaf     string       `json:"gl,omitempty"`
	CurChain     string       `json:"cc,omitempty"`
	LastPassed   int64        `json:"p,omitempty"` // last ok result passed on (volume control)
	// Trouble is nil while the endpoint has no incident and no lag (most
	// endpoints, most of the time): 120 bytes a state, not 168. Its JSON
	// keys are the state's own, as before it was split out. It is
	// replaced, never modified in place (setTrouble): persistChanged
	// compares a copy of the state taken before a probe.
	*Trouble
}

// MarshalJSON writes the fingerprints packed (packFP) and the current
// chain only when it is not the last good one: a healthy endpoint's state
// is written without a second copy of the chain fingerprint. Both make the
// correlator's file, and the pages of it the agent maps, smaller (402 ->
// 295 bytes an endpoint, BenchmarkStatePerEndpoint). GoodChain is set only
// from a chain that was current, so a state with a good chain always has
// a current one: an absent current chain is the good one (UnmarshalJSON).
func (ep *endpointState) MarshalJSON() ([]byte, error) {
	type plain endpointState
	c := plain(*ep)
	if c.CurChain == c.GoodChain {
		c.CurChain = ""
	}
	c.CurChain, c.GoodChain, c.GoodSPKI, c.GoodLeaf = packFP(c.CurChain), packFP(c.GoodChain), packFP(c.GoodSPKI), packFP(c.GoodLeaf)
	return json.Marshal(&c)
}

// UnmarshalJSON reads a state written by MarshalJSON or by an earlier
// version (which wrote hex fingerprints and the current chain always).
func (ep *endpointState) UnmarshalJSON(b []byte) error {
	type plain endpointState
	if err := json.Unmarshal(b, (*plain)(ep)); err != nil {
		return err
	}
	ep.CurChain, ep.GoodChain, ep.GoodSPKI, ep.GoodLeaf = unpackFP(ep.CurChain), unpackFP(ep.GoodChain), unpackFP(ep.GoodSPKI), unpackFP(ep.GoodLeaf)
	if ep.CurChain == "" {
		ep.CurChain = ep.GoodChain
	}
	return nil
}

// Trouble is what an endpoint holds only while something is wrong.
type Trouble struct {
	Incident string `json:"i,omitempty"`
	// LagSince and LagRef: since when a node of a `nodes` target has
	// served an older chain than its neighbours, and their chain;
	// LagIncident is the propagation_lag incident it is part of.
	LagSince    int64  `json:"ls,omitempty"`
	LagRef      string `json:"lr,omitempty"`
	LagIncident string `json:"li,omitempty"`
}

// trouble is ep's Trouble, zero when it has none.
func (ep *endpointState) trouble() Trouble {
	if ep.Trouble == nil {
		return Trouble{}
	}
	return *ep.Trouble
}

// setTrouble replaces ep's Trouble by t (nil when t is zero).
func (ep *endpointState) setTrouble(t Trouble) {
	switch {
	case t == Trouble{}:
		ep.Trouble = nil
	case ep.Trouble == nil || *ep.Trouble != t:
		ep.Trouble = &t
	}
}

// lcEvent is a remembered lifecycle event.
type lcEvent struct {
	Type     string    `json:"t"`
	Time     time.Time `json:"at"`
	JobID    string    `json:"j,omitempty"`
	Artifact string    `json:"a,omitempty"`
	Leaf     string    `json:"l,omitempty"`
	SPKI     string    `json:"k,omitempty"`
	NotAfter time.Time `json:"na,omitzero"`
	Message  string    `json:"m,omitempty"`
}

// window is a suppression window from a lifecycle event.
type window struct {
	Kind  string    `json:"k"` // maintenance, rotation
	Start time.Time `json:"s"`
	End   time.Time `json:"e"`
}

// serviceState is what the engine keeps per service.
type serviceState struct {
	LastSeen      time.Time           `json:"s"`
	Env           string              `json:"env,omitempty"`
	Owner         string              `json:"owner,omitempty"`
	Crit          string              `json:"crit,omitempty"`
	LastDeploy    *lcEvent            `json:"d,omitempty"`
	LastRenewal   *lcEvent            `json:"r,omitempty"` // issued, renewed or rotated
	RenewalFailed *lcEvent            `json:"rf,omitempty"`
	Expect        *lcEvent            `json:"x,omitempty"` // certificate announced by issued/deployed
	Windows       []window            `json:"w,omitempty"`
	Pins          map[string]struct{} `json:"p,omitempty"`
	Vantages      map[string]int64    `json:"v,omitempty"` // vantage -> last seen (unix)
	Profiles      map[string]int64    `json:"pr,omitempty"`
	// MinNotAfter is the soonest notAfter among the leaves the service's
	// endpoints serve now (Leaves: endpoint -> its leaf's notAfter, unix).
	MinNotAfter time.Time        `json:"na,omitzero"`
	Leaves      map[string]int64 `json:"lv,omitempty"`
	// Edge holds the edge windows (tlsedge) of the last edge.window.
	Edge []edgeWindow `json:"e,omitempty"`
	// Recent holds the edge windows of the last edge.fast.window, unmerged;
	// Fast the step in progress (edgefast.go).
	Recent []edgeWindow `json:"er,omitempty"`
	Fast   fastEpisode  `json:"ef,omitzero"`
	// NEL holds the failure reports of real browsers of the last
	// nel.window, grouped by type and client (nel.go).
	NEL []nelHit `json:"nel,omitempty"`
}

// maxLeavesPerService bounds serviceState.Leaves.
const maxLeavesPerService = 256

// noteLeaf records an endpoint's current leaf notAfter and recomputes the
// service's soonest.
func (s *serviceState) noteLeaf(endpoint string, notAfter time.Time) (changed bool) {
	if s.Leaves == nil {
		s.Leaves = map[string]int64{}
	}
	old, ok := s.Leaves[endpoint]
	if !ok && len(s.Leaves) >= maxLeavesPerService {
		return false
	}
	if ok && old == notAfter.Unix() {
		return false
	}
	s.Leaves[endpoint] = notAfter.Unix()
	s.soonest()
	return true
}

// forgetLeaf drops a gone endpoint's leaf and recomputes the soonest.
func (s *serviceState) forgetLeaf(endpoint string) (changed bool) {
	if _, ok := s.Leaves[endpoint]; !ok {
		return false
	}
	delete(s.Leaves, endpoint)
	s.soonest()
	return true
}

// soonest recomputes MinNotAfter from Leaves (zero when there are none).
func (s *serviceState) soonest() {
	var m int64
	for _, na := range s.Leaves {
		if m == 0 || na < m {
			m = na
		}
	}
	s.MinNotAfter = time.Time{}
	if m != 0 {
		s.MinNotAfter = time.Unix(m, 0).UTC()
	}
}

// incEndpoint tracks one affected endpoint of an incident.
type incEndpoint struct {
	ConsecOK uint16 `json:"o"`
	// Target is "server.address@dialed host:port", what a verifier re-probes.
	Target string `json:"t,omitempty"`
}

// failObs is one failure observation used for corroboration.
type failObs struct {
	At      int64  `json:"t"`
	Vantage string `json:"v"`
}

// incident is one deduplicated incident.
type incident struct {
	ID          string              `json:"id"`
	Reason      attrs.Reason        `json:"reason"`
	ProbeReason attrs.Reason        `json:"probe_reason,omitempty"`
	Service     string              `json:"service"`
	Env         string              `json:"env,omitempty"`
	Owner       string              `json:"owner,omitempty"`
	Crit        string              `json:"crit,omitempty"`
	Identity    string              `json:"identity,omitempty"`
	State       attrs.State         `json:"state,omitempty"`
	Severity    attrs.SeverityLevel `json:"severity,omitempty"`
	Impact      float64             `json:"impact"`
	OpenedAt    time.Time           `json:"opened_at,omitzero"`
	UpdatedAt   time.Time           `json:"updated_at"`
	ResolvedAt  time.Time           `json:"resolved_at,omitzero"`
	// Resolution is how it resolved: healthy, or expired (no data).
	Resolution   string                  `json:"resolution,omitempty"`
	Endpoints    map[string]*incEndpoint `json:"endpoints,omitempty"`
	Vantages     map[string]struct{}     `json:"vantages,omitempty"`
	Profiles     map[string]struct{}     `json:"profiles,omitempty"`
	Failures     []failObs               `json:"failures,omitempty"`
	Corroborated bool                    `json:"corroborated,omitempty"`
	Recurring    bool                    `json:"recurring,omitempty"`
	Flaps        int                     `json:"flaps,omitempty"`
	Suppressed   string                  `json:"suppressed,omitempty"`
	Announced    bool                    `json:"announced,omitempty"` // an opened transition was emitted
	Deploy       *lcEvent                `json:"deploy,omitempty"`
	Detail       string                  `json:"detail,omitempty"`
	NotAfter     time.Time               `json:"not_after,omitzero"`
	Regions      map[string]struct{}     `json:"regions,omitempty"`
	RemediateTil time.Time               `json:"remediate_until,omitzero"`
	// Awaiting: a remediation action for it is held for approval.
	Awaiting bool `json:"awaiting_approval,omitempty"`
	// The incident's timeline (time to detect, act, fix): FaultAt its
	// first failing result (or the deploy before it), ActedAt the first
	// remediation action sent for it (a dry-run sends none), FixedAt the
	// first time every affected endpoint was healthy again.
	FaultAt time.Time `json:"fault_at,omitzero"`
	ActedAt time.Time `json:"acted_at,omitzero"`
	FixedAt time.Time `json:"fixed_at,omitzero"`
	// LastGoodChain, LastGoodSPKI: what the first affected endpoint served
	// when it was last healthy (what a rollback restores, what a pin
	// decision compares against).
	LastGoodChain string `json:"last_good_chain,omitempty"`
	// SPKI is the leaf key the endpoints served at the latest failure
	// (what a pin decision is about).
	SPKI         string `json:"spki,omitempty"`
	LastGoodSPKI string `json:"last_good_spki,omitempty"`
	Derived      bool   `json:"derived,omitempty"` // from lifecycle, not probes
	// Edge: opened from edge telemetry (real clients' handshakes);
	// EdgeShare is the failing (or not resuming) share measured, over
	// EdgeHandshakes handshakes; EdgeNodes the nodes concerned. A probe
	// incident joined by edge telemetry carries them too.
	Edge           bool     `json:"edge,omitempty"`
	EdgeShare      float64  `json:"edge_share,omitempty"`
	EdgeHandshakes int64    `json:"edge_handshakes,omitempty"`
	EdgeNodes      []string `json:"edge_nodes,omitempty"`
	// UnjudgedSince: since when an open edge incident's signal has been
	// below what can be judged (too few handshakes, fewer than two judged
	// nodes); after an edge window of it, the incident resolves as
	// unobserved.
	UnjudgedSince time.Time `json:"unjudged_since,omitzero"`
	// UserReports: real browsers' failure reports (NEL) in the last
	// nel.window; ClientsFailing the client families failing.
	UserReports    int64  `json:"user_reports,omitempty"`
	ClientsFailing string `json:"clients_failing,omitempty"`
}

const maxFailObs = 64
const maxIncidentEndpoints = 10000

func (inc *incident) open() bool {
	return inc.State != "" && inc.State != attrs.StateResolved
}
