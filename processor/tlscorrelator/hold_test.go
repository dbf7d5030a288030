package tlscorrelator

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/certpulse/certpulse/internal/attrs"
)

// TestRemediationEffect: what each audited decision does to the hold. An
// attempt under way holds the incident; every decision that ends one (or
// decides not to act) ends it; Alertmanager notifications (no idempotency
// key) and a decision that stood down for another one change nothing.
func TestRemediationEffect(t *testing.T) {
	cases := []struct {
		outcome attrs.Outcome
		keyed   bool
		want    holdEffect
	}{
		{attrs.OutcomeMatched, false, holdStarts},
		{attrs.OutcomeVerified, false, holdStarts},
		{attrs.OutcomeApproved, true, holdStarts},
		{attrs.OutcomeSent, true, holdStarts},
		{attrs.OutcomeSent, false, holdNeutral},   // an alert posted
		{attrs.OutcomeFailed, false, holdNeutral}, // an alert not posted
		{attrs.OutcomeDryRun, false, holdNeutral}, // an alert in dry-run
		{attrs.OutcomeFailed, true, holdEnds},
		{attrs.OutcomeDryRun, true, holdEnds},
		{attrs.OutcomeSkipped, false, holdEnds}, // a guardrail: nothing will run
		{attrs.OutcomeSkipped, true, holdEnds},
		{attrs.OutcomeSuperseded, false, holdNeutral},
		{attrs.OutcomeAwaitingApproval, true, holdEnds},
		{attrs.OutcomeDenied, true, holdEnds},
		{attrs.OutcomeExpired, true, holdEnds},
		{attrs.OutcomeNotReproduced, false, holdEnds},
		{attrs.OutcomeInconclusive, false, holdEnds},
		{attrs.OutcomeResolved, false, holdEnds},
		{attrs.OutcomeFixed, true, holdEnds},
		{attrs.OutcomeIneffective, true, holdEnds},
		{attrs.OutcomeBrakeEngaged, false, holdNeutral},
		{attrs.Outcome("bogus"), false, holdNeutral},
	}
	for _, c := range cases {
		assert.Equal(t, c.want, remediationEffect(c.outcome, c.keyed), "%s keyed=%v", c.outcome, c.keyed)
	}
}
