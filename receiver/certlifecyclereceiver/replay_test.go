package certlifecyclereceiver

import (
	"net/http"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/signature"
)

// TestBinaryModeSignsHeaders: in binary mode the event's type, id and
// source travel in ce-* headers, so the HMAC covers them (the canonical
// header string, internal/signature.CanonicalCE) as well as the body: a
// captured request replayed within the skew window with another ce-type or
// ce-id is refused; the same request replayed as is counts as a duplicate.
func TestBinaryModeSignsHeaders(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.HMAC.Secret = testSecret
	r := start(t, cfg, sink, "")
	body := mustJSON(map[string]any{"service": "payments-api", "environment": "prod"})
	hdr := map[string]string{"ce-specversion": "1.0", "ce-id": "deploy-1", "ce-source": "urn:ci", "ce-type": "dev.certpulse.certificate.deployed"}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h := http.Header{}
	for k, v := range hdr {
		h.Set(k, v)
	}
	h.Set("Content-Type", "application/json")
	hdr[signature.TimestampHeader] = ts
	hdr[signature.SignatureHeader] = signature.ValueWithHeaders([]byte(testSecret), ts, signature.CanonicalCE(h), body)

	res := post(t, r, "application/json", body, hdr)
	require.Equal(t, http.StatusOK, res.status, res.body)
	assert.EqualValues(t, 0, res.body["duplicates"])

	res = post(t, r, "application/json", body, hdr)
	require.Equal(t, http.StatusOK, res.status, res.body)
	assert.EqualValues(t, 1, res.body["duplicates"], "the same signed request again is a replay: a duplicate")

	tampered := map[string]string{}
	for k, v := range hdr {
		tampered[k] = v
	}
	tampered["ce-type"] = "dev.certpulse.certificate.maintenance_started"
	tampered["ce-id"] = "maint-1"
	res = post(t, r, "application/json", body, tampered)
	assert.Equal(t, http.StatusUnauthorized, res.status, "a replay with another ce-type and ce-id is refused: %v", res.body)
	fresh := 0
	for _, lr := range records(sink) {
		if attr(lr, attrs.LifecycleDuplicate) == "false" {
			fresh++
		}
	}
	assert.Equal(t, 1, fresh, "one event delivered as new; the replay is marked duplicate")
}
