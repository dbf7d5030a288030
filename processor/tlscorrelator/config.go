package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"

	"github.com/certpulse/certpulse/internal/attrs"
)

// Config is the tlscorrelator configuration. Every rule has a default from
// the seeds; see processor/tlscorrelator/README.md's rule table.
type Config struct {
	// Services is the service catalog: enrichment and per-service options.
	Services map[string]ServiceConfig `mapstructure:"services"`

	Corroboration CorroborationConfig `mapstructure:"corroboration"`
	// DeployWindow: failures that begin this long after a deployed,
	// renewed, rotated or issued event of the service are
	// post_deploy_regression.
	DeployWindow time.Duration `mapstructure:"deploy_window"`
	// PropagationGrace: endpoints still serving the previous certificate
	// this long after an issued/deployed event with a new one: propagation_lag.
	PropagationGrace time.Duration `mapstructure:"propagation_grace"`
	// RenewalOverdue: a leaf expiring within this with no renewal in
	// progress is renewal_overdue (page).
	RenewalOverdue time.Duration `mapstructure:"renewal_overdue"`
	// RenewalInProgress: how long an issued/renewed event (or a renewal
	// job) counts as a renewal in progress.
	RenewalInProgress time.Duration `mapstructure:"renewal_in_progress"`
	// ExplainWindow: a certificate change is explained by a lifecycle event
	// of the service this recent; otherwise unexpected_cert_change.
	ExplainWindow time.Duration `mapstructure:"explain_window"`
	// ExpiryTiers set severity by time left: ticket, alert, page.
	ExpiryTiers ExpiryTiers `mapstructure:"expiry_tiers"`
	// ResolveAfter consecutive healthy results on every affected endpoint
	// resolve an incident.
	ResolveAfter int `mapstructure:"resolve_after"`
	// ReopenWindow: an incident failing again this soon after it resolved
	// is the same incident, marked recurring, and does not page again.
	ReopenWindow time.Duration `mapstructure:"reopen_window"`
	// RemediationHold: a lifecycle event carrying an incident_id (the
	// remediation exporter's audit) suppresses that incident this long.
	RemediationHold time.Duration `mapstructure:"remediation_hold"`
	// MaxLateness: records older than the newest seen minus this pass
	// through without changing state.
	MaxLateness time.Duration `mapstructure:"max_lateness"`
	// MaxClockSkew caps event time at the wall clock plus this: a record
	// stamped later (an agent with a skewed clock) is dropped and counted
	// (tlscorrelator_records{kind="future"}) instead of moving the
	// watermark and making every later record late.
	MaxClockSkew time.Duration `mapstructure:"max_clock_skew"`
	// IdleTimeout: endpoint and service state not touched this long is dropped.
	IdleTimeout time.Duration `mapstructure:"idle_timeout"`
	// MaxEndpoints bounds tracked endpoints; beyond it new endpoints are
	// passed through untracked (counted, logged).
	MaxEndpoints int `mapstructure:"max_endpoints"`

	// MaintenanceWindows suppress incidents of matching services.
	MaintenanceWindows []MaintenanceWindow `mapstructure:"maintenance_windows"`

	// HealthyResults is "all" (pass every ok result) or "on_change" (pass an
	// ok result only when the endpoint's reason or certificate changed, plus
	// one every Heartbeat). Services can override it.
	HealthyResults string        `mapstructure:"healthy_results"`
	Heartbeat      time.Duration `mapstructure:"heartbeat"`

	// Storage is the storage extension (file_storage) that keeps state
	// across restarts; without it state is in memory only.
	Storage *component.ID `mapstructure:"storage"`
	// CheckpointInterval: endpoint state is persisted this often (incidents
	// are persisted before every transition is emitted).
	CheckpointInterval time.Duration `mapstructure:"checkpoint_interval"`
	// OpenIncidentsInterval: every this often the correlator emits a
	// snapshot of the open incidents (`certpulse.incidents.open` records,
	// counts by service, environment, owner, severity, reason and
	// remediation state) for a gauge in Mimir. 0 turns it off.
	OpenIncidentsInterval time.Duration `mapstructure:"open_incidents_interval"`
	// Edge: thresholds for the user-impact signal of edge telemetry (the
	// tlsedge connector's certpulse.edge.window records).
	Edge EdgeConfig `mapstructure:"edge"`
	// NEL: when real browsers' Network Error Logging reports (the nel
	// receiver's records) open an incident.
	NEL NELConfig `mapstructure:"nel"`
	// Trigger is the certpulse_trigger extension: the first burst of real
	// clients failing (edge.fast) asks the service's probes to run at
	// once, so that the incident soon carries the probe's reason code.
	// The probes must run in this collector (single tier, agent).
	Trigger *component.ID `mapstructure:"trigger"`

	_ struct{}
}

// EdgeConfig: when real clients' handshakes open an incident.
type EdgeConfig struct {
	// Window: the span the rates are judged over. Default 5m.
	Window time.Duration `mapstructure:"window"`
	// MinHandshakes: a service's handshakes in Window below which no rate
	// is judged. Default 100.
	MinHandshakes int64 `mapstructure:"min_handshakes"`
	// SuccessBelow: handshake_failure_rate when the share of successful
	// handshakes in Window is below this. Default 0.995.
	SuccessBelow float64 `mapstructure:"success_below"`
	// ResumptionBelow: resumption_degraded when some nodes resume fewer
	// than this share of their successful handshakes while others resume
	// at least this share. Default 0.5.
	ResumptionBelow float64 `mapstructure:"resumption_below"`
	// MinNodeHandshakes: a node's successful handshakes in Window below
	// which its resumption rate is not judged. Default 20.
	MinNodeHandshakes int64 `mapstructure:"min_node_handshakes"`
	// ExcludeReasons: failures not judged, neither in the share nor as
	// handshakes. Default: not_tls (the first bytes were not TLS:
	// scanners, plain HTTP), protocol_mismatch and cipher_mismatch (offers
	// the server's policy refuses: legacy clients, scanners; the probes'
	// client profiles and the tlsedge what-if judge the policy).
	ExcludeReasons []attrs.Reason `mapstructure:"exclude_reasons"`
	// Fast: the streaming detector, a step change within seconds.
	Fast FastConfig `mapstructure:"fast"`
}

// FastConfig: when a step change in real clients failing opens
// handshake_failure_rate within seconds, judged against the service's own
// baseline (its handshakes over edge.window before the recent span).
type FastConfig struct {
	// Window: the recent span judged, per node and for the service.
	// Default 10s; 0 turns the fast detector off.
	Window time.Duration `mapstructure:"window"`
	// MinFailures: failures in Window (of Reasons) below which no step is
	// judged. Default 5.
	MinFailures int64 `mapstructure:"min_failures"`
	// MinShare: the failing share in Window must exceed the baseline's by
	// at least this. Default 0.2 (a fifth of the clients).
	MinShare float64 `mapstructure:"min_share"`
	// MinBaseline: the service's handshakes before Window (within
	// edge.window) below which there is no baseline and no step is
	// judged (a new service, the first minute after a restart without
	// storage). Default 50.
	MinBaseline int64 `mapstructure:"min_baseline"`
	// Reasons: the failure reasons that count. Default: the client
	// rejected the certificate or the handshake (unknown_ca, expired_leaf,
	// revoked, handshake_failure); offers that do not match
	// (protocol_mismatch, cipher_mismatch: scanners, legacy clients),
	// junk (not_tls) and timeouts count only in the 5-minute judgement.
	Reasons []attrs.Reason `mapstructure:"reasons"`
}

// ServiceConfig is one service catalog entry.
type ServiceConfig struct {
	Owner       string `mapstructure:"owner"`
	Criticality string `mapstructure:"criticality"`
	Environment string `mapstructure:"environment"`
	// TrafficWeight in 0..1 scales impact (share of traffic the service carries).
	TrafficWeight *float64 `mapstructure:"traffic_weight"`
	// Pins the service's clients use, for the predictive pin check.
	Pins []string `mapstructure:"pins"`
	// HealthyResults overrides the global setting for this service.
	HealthyResults string `mapstructure:"healthy_results"`
}

// CorroborationConfig: a failure is user-impacting once seen Failures times
// across Vantages vantages within Window.
type CorroborationConfig struct {
	Failures int           `mapstructure:"failures"`
	Vantages int           `mapstructure:"vantages"`
	Window   time.Duration `mapstructure:"window"`
}

// ExpiryTiers: time left at or below which expiry is a ticket, alert, page.
type ExpiryTiers struct {
	Ticket time.Duration `mapstructure:"ticket"`
	Alert  time.Duration `mapstructure:"alert"`
	Page   time.Duration `mapstructure:"page"`
}

// MaintenanceWindow is absolute (start, end) or weekly (weekday, at, duration), in UTC.
type MaintenanceWindow struct {
	Services []string      `mapstructure:"services"` // empty: every service
	Start    time.Time     `mapstructure:"start"`
	End      time.Time     `mapstructure:"end"`
	Weekday  string        `mapstructure:"weekday"` // sunday..saturday
	At       string        `mapstructure:"at"`      // HH:MM UTC
	Duration time.Duration `mapstructure:"duration"`
}

func createDefaultConfig() *Config {
	return &Config{
		Corroboration:         CorroborationConfig{Failures: 3, Vantages: 2, Window: time.Minute},
		DeployWindow:          15 * time.Minute,
		PropagationGrace:      10 * time.Minute,
		RenewalOverdue:        72 * time.Hour,
		RenewalInProgress:     6 * time.Hour,
		ExplainWindow:         24 * time.Hour,
		ExpiryTiers:           ExpiryTiers{Ticket: 30 * 24 * time.Hour, Alert: 7 * 24 * time.Hour, Page: 3 * 24 * time.Hour},
		ResolveAfter:          3,
		ReopenWindow:          time.Hour,
		RemediationHold:       15 * time.Minute,
		MaxLateness:           5 * time.Minute,
		MaxClockSkew:          2 * time.Minute,
		IdleTimeout:           24 * time.Hour,
		MaxEndpoints:          200000,
		HealthyResults:        "all",
		Heartbeat:             10 * time.Minute,
		CheckpointInterval:    10 * time.Second,
		OpenIncidentsInterval: time.Minute,
		Edge: EdgeConfig{Window: 5 * time.Minute, MinHandshakes: 100, SuccessBelow: 0.995, ResumptionBelow: 0.5, MinNodeHandshakes: 20,
			ExcludeReasons: []attrs.Reason{attrs.ReasonNotTLS, attrs.ReasonProtocolMismatch, attrs.ReasonCipherMismatch},
			Fast: FastConfig{Window: 10 * time.Second, MinFailures: 5, MinShare: 0.2, MinBaseline: 50,
				Reasons: []attrs.Reason{attrs.ReasonUnknownCA, attrs.ReasonExpiredLeaf, attrs.ReasonRevoked, attrs.ReasonHandshakeFailure}}},
		NEL: NELConfig{Window: 5 * time.Minute, MinReports: 3},
	}
}

var weekdays = map[string]time.Weekday{"sunday": time.Sunday, "monday": time.Monday, "tuesday": time.Tuesday, "wednesday": time.Wednesday, "thursday": time.Thursday, "friday": time.Friday, "saturday": time.Saturday}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	c := cfg.Corroboration
	if c.Failures < 1 || c.Vantages < 1 || c.Window <= 0 {
		errs = append(errs, errors.New("corroboration: failures and vantages must be >= 1 and window positive"))
	}
	if x := cfg.Edge; x.Window <= 0 || x.MinHandshakes < 1 || x.MinNodeHandshakes < 1 || x.SuccessBelow <= 0 || x.SuccessBelow > 1 || x.ResumptionBelow <= 0 || x.ResumptionBelow > 1 {
		errs = append(errs, fmt.Errorf("edge: window must be positive, min_handshakes and min_node_handshakes >= 1, success_below and resumption_below in (0, 1] (got %+v)", x))
	}
	if f := cfg.Edge.Fast; f.Window < 0 || f.Window > 0 && (f.Window*2 > cfg.Edge.Window || f.MinFailures < 1 || f.MinShare <= 0 || f.MinShare > 1 || f.MinBaseline < 1 || len(f.Reasons) == 0) {
		errs = append(errs, fmt.Errorf("edge::fast: window must be 0 (off) or at most half of edge::window, min_failures and min_baseline >= 1, min_share in (0, 1], reasons not empty (got %+v)", f))
	}
	for _, r := range cfg.Edge.ExcludeReasons {
		if _, ok := attrs.Info(r); !ok {
			errs = append(errs, fmt.Errorf("edge::exclude_reasons: %q is not a reason code", r))
		}
	}
	for _, r := range cfg.Edge.Fast.Reasons {
		if info, ok := attrs.Info(r); !ok || !info.Failing {
			errs = append(errs, fmt.Errorf("edge::fast::reasons: %q is not a failing reason code", r))
		}
	}
	if n := cfg.NEL; n.Window <= 0 || n.MinReports < 1 {
		errs = append(errs, fmt.Errorf("nel: window must be positive and min_reports >= 1 (got %+v)", n))
	}
	if cfg.OpenIncidentsInterval < 0 {
		errs = append(errs, errors.New("open_incidents_interval must not be negative (0: off)"))
	}
	for name, d := range map[string]time.Duration{"deploy_window": cfg.DeployWindow, "propagation_grace": cfg.PropagationGrace, "renewal_overdue": cfg.RenewalOverdue, "renewal_in_progress": cfg.RenewalInProgress, "explain_window": cfg.ExplainWindow, "reopen_window": cfg.ReopenWindow, "remediation_hold": cfg.RemediationHold, "max_lateness": cfg.MaxLateness, "max_clock_skew": cfg.MaxClockSkew, "idle_timeout": cfg.IdleTimeout, "heartbeat": cfg.Heartbeat, "checkpoint_interval": cfg.CheckpointInterval} {
		if d <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", name))
		}
	}
	t := cfg.ExpiryTiers
	if !(t.Page > 0 && t.Page <= t.Alert && t.Alert <= t.Ticket) {
		errs = append(errs, errors.New("expiry_tiers: need 0 < page <= alert <= ticket"))
	}
	if cfg.ResolveAfter < 1 {
		errs = append(errs, errors.New("resolve_after must be >= 1"))
	}
	if cfg.MaxEndpoints < 1 {
		errs = append(errs, errors.New("max_endpoints must be >= 1"))
	}
	if err := validHealthy(cfg.HealthyResults, false); err != nil {
		errs = append(errs, err)
	}
	for name, s := range cfg.Services {
		if s.Criticality != "" && !attrs.ValidCriticality(s.Criticality) {
			errs = append(errs, fmt.Errorf("services::%s: criticality %q must be one of low, medium, high, critical", name, s.Criticality))
		}
		if s.TrafficWeight != nil && (*s.TrafficWeight < 0 || *s.TrafficWeight > 1) {
			errs = append(errs, fmt.Errorf("services::%s: traffic_weight must be within 0..1", name))
		}
		if err := validHealthy(s.HealthyResults, true); err != nil {
			errs = append(errs, fmt.Errorf("services::%s: %w", name, err))
		}
	}
	for i, w := range cfg.MaintenanceWindows {
		abs := !w.Start.IsZero() || !w.End.IsZero()
		weekly := w.Weekday != "" || w.At != "" || w.Duration != 0
		switch {
		case abs && weekly:
			errs = append(errs, fmt.Errorf("maintenance_windows[%d]: either start/end or weekday/at/duration, not both", i))
		case abs:
			if w.Start.IsZero() || w.End.IsZero() || !w.End.After(w.Start) {
				errs = append(errs, fmt.Errorf("maintenance_windows[%d]: start and end are required and end must be after start", i))
			}
		case weekly:
			if _, ok := weekdays[strings.ToLower(w.Weekday)]; !ok {
				errs = append(errs, fmt.Errorf("maintenance_windows[%d]: weekday %q is not a day of the week", i, w.Weekday))
			}
			if _, err := time.Parse("15:04", w.At); err != nil {
				errs = append(errs, fmt.Errorf("maintenance_windows[%d]: at %q must be HH:MM (UTC)", i, w.At))
			}
			if w.Duration <= 0 || w.Duration > 7*24*time.Hour {
				errs = append(errs, fmt.Errorf("maintenance_windows[%d]: duration must be within (0, 168h]", i))
			}
		default:
			errs = append(errs, fmt.Errorf("maintenance_windows[%d]: empty window", i))
		}
	}
	return errors.Join(errs...)
}

func validHealthy(v string, allowEmpty bool) error {
	switch v {
	case "all", "on_change":
		return nil
	case "":
		if allowEmpty {
			return nil
		}
	}
	return fmt.Errorf("healthy_results %q must be all or on_change", v)
}

// contains reports whether t falls in the window.
func (w MaintenanceWindow) contains(service string, t time.Time) bool {
	if len(w.Services) > 0 {
		found := false
		for _, s := range w.Services {
			if s == service {
				found = true
				break
			}
		}
		if !found {
			return false
		}
	}
	if !w.Start.IsZero() {
		return !t.Before(w.Start) && t.Before(w.End)
	}
	at, err := time.Parse("15:04", w.At)
	if err != nil {
		return false
	}
	t = t.UTC()
	wd := weekdays[strings.ToLower(w.Weekday)]
	// The most recent start at or before t.
	days := (int(t.Weekday()) - int(wd) + 7) % 7
	start := time.Date(t.Year(), t.Month(), t.Day(), at.Hour(), at.Minute(), 0, 0, time.UTC).AddDate(0, 0, -days)
	if start.After(t) {
		start = start.AddDate(0, 0, -7)
	}
	return t.Before(start.Add(w.Duration))
}
