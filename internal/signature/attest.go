package signature // import "github.com/certpulse/certpulse/internal/signature"

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"
)

// Attest returns the attestation of one remediation audit event: the
// lowercase hex HMAC-SHA256, under the secret only remediation exporters
// hold (trail_secret), of what the audit trail is learned from: the
// incident, the idempotency key, the decision and the event's time. Any
// holder of the lifecycle receiver's token can post a `remediation` event;
// only a remediation exporter can attest one.
func Attest(secret []byte, incidentID, key, stage string, at time.Time) string {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(strings.Join([]string{"certpulse-remediation-v1", incidentID, key, stage, strconv.FormatInt(at.UnixNano(), 10)}, "\n")))
	return hex.EncodeToString(m.Sum(nil))
}

// VerifyAttestation reports whether att attests the event.
func VerifyAttestation(secret []byte, att, incidentID, key, stage string, at time.Time) bool {
	if len(secret) == 0 || att == "" {
		return false
	}
	return hmac.Equal([]byte(att), []byte(Attest(secret, incidentID, key, stage, at)))
}
