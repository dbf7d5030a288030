package tlscorrelator

import (
	"testing"

	"github.com/stretchr/testify/assert"

	"github.com/certpulse/certpulse/internal/attrs"
)

// TestNeedsCorroboration: exactly the network failures wait for
// corroboration (the reason table's side); certificate faults and derived
// reasons open at once.
func TestNeedsCorroboration(t *testing.T) {
	want := map[attrs.Reason]bool{
		attrs.ReasonDNSFailure: true, attrs.ReasonConnectionRefused: true, attrs.ReasonConnectionReset: true,
		attrs.ReasonHandshakeTimeout: true, attrs.ReasonNotTLS: true, attrs.ReasonOCSPTimeout: true, attrs.ReasonOCSPError: true,
		attrs.ReasonExpiredLeaf: false, attrs.ReasonMissingIntermediate: false, attrs.ReasonHostnameMismatch: false,
		attrs.ReasonUnknownCA: false, attrs.ReasonPinMismatch: false, attrs.ReasonHandshakeFailure: false,
		attrs.ReasonPostDeployRegression: false, attrs.ReasonHandshakeFailureRate: false, attrs.Reason("no_such_reason"): false,
	}
	for r, w := range want {
		assert.Equal(t, w, needsCorroboration(r), string(r))
	}
}
