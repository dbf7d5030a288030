package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/certpulse/certpulse/internal/attrs"
)

// incState is what the exporter remembers per incident.
type incState struct {
	Incident   Incident  `json:"incident"` // latest transition seen
	Attempts   int       `json:"attempts"`
	LastAction time.Time `json:"last_action,omitzero"`
	// FirstSeen is when this instance first saw the incident (handover_hold).
	FirstSeen time.Time `json:"first_seen,omitzero"`
	Firing    bool      `json:"firing,omitempty"` // an Alertmanager alert is firing
	// FiredSeverity is the severity label of the firing alert: when the
	// incident changes tier, that alert is resolved and a new one fires.
	FiredSeverity attrs.SeverityLevel `json:"fired_severity,omitempty"`
	// Step is the next step of a verify_after policy (the index among its
	// webhook actions); Verifying the step whose effect is awaited.
	Step      int        `json:"step,omitempty"`
	Verifying *Verifying `json:"verifying,omitempty"`
}

// Verifying is a step sent and not yet judged fixed or ineffective.
type Verifying struct {
	Policy   string    `json:"policy"`
	Action   string    `json:"action"`
	Attempt  int       `json:"attempt"`
	Since    time.Time `json:"since"`
	Deadline time.Time `json:"deadline"`
	// Calling: the step's webhook has not answered yet. A fixed verdict
	// meanwhile (a runbook's own deploy event brings the probes) is kept
	// in FixedAt and audited once the call is audited sent.
	Calling bool      `json:"calling,omitempty"`
	FixedAt time.Time `json:"fixed_at,omitzero"`
}

// Pending is an action held for human approval.
type Pending struct {
	ID         string    `json:"id"`
	IncidentID string    `json:"incident_id"`
	Policy     string    `json:"policy"`
	Action     string    `json:"action"`
	Operation  string    `json:"operation"`
	Attempt    int       `json:"attempt"`
	Evidence   []string  `json:"evidence"`
	Created    time.Time `json:"created"`
	Expires    time.Time `json:"expires"`
	Incident   Incident  `json:"incident"`
}

// Brake is the global brake.
type Brake struct {
	Engaged    bool      `json:"engaged"`
	Since      time.Time `json:"since,omitzero"`
	Reason     string    `json:"reason,omitempty"`
	ReleasedBy string    `json:"released_by,omitempty"`
	ReleasedAt time.Time `json:"released_at,omitzero"`
	Why        string    `json:"why,omitempty"`
}

// state is everything that must survive a restart. It is persisted as one
// small meta record (brake, budget, held approvals, the incident index) and
// one record per incident, written only when that incident changed, all in
// one storage batch per save.
type state struct {
	Incidents map[string]*incState `json:"-"`
	Pending   map[string]*Pending  `json:"pending"`
	Brake     Brake                `json:"brake"`
	Recent    []time.Time          `json:"recent"` // action times within the budget window

	dirty      map[string]struct{} // incidents to write (or delete) at the next save
	idsChanged bool                // the incident index must be rewritten
}

func newState() *state {
	return &state{Incidents: map[string]*incState{}, Pending: map[string]*Pending{}, dirty: map[string]struct{}{}}
}

const (
	metaKey     = "remediation-meta"
	indexKey    = "remediation-incidents"
	incKeyPrefx = "remediation-incident/"
)

// incident returns the state of incident id, creating it, and marks it to
// be written at the next save.
func (s *state) incident(id string) *incState {
	st, ok := s.Incidents[id]
	if !ok {
		st = &incState{}
		s.Incidents[id] = st
		s.idsChanged = true
	}
	s.dirty[id] = struct{}{}
	return st
}

func (s *state) save(ctx context.Context, c storage.Client) error {
	if c == nil {
		return nil
	}
	meta, err := json.Marshal(s)
	if err != nil {
		return err
	}
	ops := []*storage.Operation{storage.SetOperation(metaKey, meta)}
	if s.idsChanged {
		ids := make([]string, 0, len(s.Incidents))
		for id := range s.Incidents {
			ids = append(ids, id)
		}
		b, err := json.Marshal(ids)
		if err != nil {
			return err
		}
		ops = append(ops, storage.SetOperation(indexKey, b))
	}
	for id := range s.dirty {
		st, ok := s.Incidents[id]
		if !ok {
			ops = append(ops, storage.DeleteOperation(incKeyPrefx+id))
			continue
		}
		b, err := json.Marshal(st)
		if err != nil {
			return err
		}
		ops = append(ops, storage.SetOperation(incKeyPrefx+id, b))
	}
	if err := c.Batch(ctx, ops...); err != nil {
		return fmt.Errorf("persisting remediation state: %w", err)
	}
	clear(s.dirty)
	s.idsChanged = false
	return nil
}

func loadState(ctx context.Context, c storage.Client) (*state, error) {
	s := newState()
	b, err := c.Get(ctx, metaKey)
	if err != nil {
		return nil, fmt.Errorf("reading remediation state: %w", err)
	}
	if b != nil {
		if err := json.Unmarshal(b, s); err != nil {
			return nil, fmt.Errorf("remediation state: %w", err)
		}
	}
	if s.Pending == nil {
		s.Pending = map[string]*Pending{}
	}
	if b, err = c.Get(ctx, indexKey); err != nil {
		return nil, fmt.Errorf("reading remediation state: %w", err)
	}
	var ids []string
	if b != nil {
		if err := json.Unmarshal(b, &ids); err != nil {
			return nil, fmt.Errorf("remediation state index: %w", err)
		}
	}
	for _, id := range ids {
		b, err := c.Get(ctx, incKeyPrefx+id)
		if err != nil {
			return nil, fmt.Errorf("reading remediation state of incident %s: %w", id, err)
		}
		if b == nil {
			continue
		}
		st := &incState{}
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("remediation state of incident %s: %w", id, err)
		}
		s.Incidents[id] = st
	}
	return s, nil
}

// prune drops budget entries outside the window and resolved incidents
// older than keep.
func (s *state) prune(now time.Time, window, keep time.Duration) {
	i := 0
	for ; i < len(s.Recent) && now.Sub(s.Recent[i]) > window; i++ {
	}
	s.Recent = s.Recent[i:]
	for id, st := range s.Incidents {
		idle := now.Sub(st.Incident.Time) > keep && now.Sub(st.LastAction) > keep
		// Unresolved incidents the correlator stopped reporting for a month
		// (it expired them) are dropped too: state stays bounded.
		if idle && (st.Incident.State == attrs.StateResolved || now.Sub(st.Incident.Time) > 30*24*time.Hour) {
			delete(s.Incidents, id)
			s.dirty[id] = struct{}{}
			s.idsChanged = true
		}
	}
}
