package attrs // import "github.com/certpulse/certpulse/internal/attrs"

import "fmt"

// Outcome is a remediation decision as the remediation exporter audits it:
// the pipeline_stage of its `remediation` lifecycle events, the outcome
// label of otelcol_remediation_decisions. The correlator reads them back
// (the remediation hold), so both components name them through this type.
type Outcome string

// Remediation outcomes.
const (
	OutcomeUnmatched     Outcome = "unmatched" // counted, never audited
	OutcomeMatched       Outcome = "matched"
	OutcomeVerified      Outcome = "verified"
	OutcomeNotReproduced Outcome = "not_reproduced"
	OutcomeInconclusive  Outcome = "inconclusive"
	OutcomeSkipped       Outcome = "skipped"
	// Superseded: another decision on the same incident acted while this
	// one verified; this one stands down (that one's trail goes on).
	OutcomeSuperseded       Outcome = "superseded"
	OutcomeDryRun           Outcome = "dry_run"
	OutcomeAwaitingApproval Outcome = "awaiting_approval"
	OutcomeApproved         Outcome = "approved"
	OutcomeDenied           Outcome = "denied"
	OutcomeExpired          Outcome = "expired"
	OutcomeSent             Outcome = "sent"
	OutcomeFailed           Outcome = "failed"
	OutcomeBrakeEngaged     Outcome = "brake_engaged"
	OutcomeBrakeReleased    Outcome = "brake_released"
	OutcomeResolved         Outcome = "resolved"
	// After an action (verify_after): fixed when every affected endpoint
	// probes healthy within the timeout, else ineffective (the policy's
	// next step runs).
	OutcomeFixed       Outcome = "fixed"
	OutcomeIneffective Outcome = "ineffective"
)

// Outcomes lists every outcome.
var Outcomes = []Outcome{
	OutcomeUnmatched, OutcomeMatched, OutcomeVerified, OutcomeNotReproduced, OutcomeInconclusive,
	OutcomeSkipped, OutcomeSuperseded, OutcomeDryRun, OutcomeAwaitingApproval, OutcomeApproved, OutcomeDenied,
	OutcomeExpired, OutcomeSent, OutcomeFailed, OutcomeBrakeEngaged, OutcomeBrakeReleased, OutcomeResolved,
	OutcomeFixed, OutcomeIneffective,
}

// Valid reports whether o is a known outcome.
func (o Outcome) Valid() bool {
	for _, k := range Outcomes {
		if k == o {
			return true
		}
	}
	return false
}

// UnmarshalText rejects unknown outcomes (config decoding).
func (o *Outcome) UnmarshalText(b []byte) error {
	v := Outcome(b)
	if !v.Valid() {
		return fmt.Errorf("unknown remediation outcome %q", b)
	}
	*o = v
	return nil
}
