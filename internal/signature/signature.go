// Package signature is certpulse's webhook body signature, shared by the
// certlifecycle receiver (which checks it) and the remediation exporter
// (which signs its actions and audit events): HMAC-SHA256 over
// timestamp + "." + body, sent as "sha256=<hex>" beside the timestamp.
package signature // import "github.com/certpulse/certpulse/internal/signature"

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"strconv"
	"time"
)

// Default header names.
const (
	TimestampHeader = "X-Certpulse-Timestamp"
	SignatureHeader = "X-Certpulse-Signature"
)

// Sum returns HMAC-SHA256(secret, timestamp + "." + body).
func Sum(secret []byte, timestamp string, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(body)
	return m.Sum(nil)
}

// Value is the signature header's value: "sha256=" + hex(Sum).
func Value(secret []byte, timestamp string, body []byte) string {
	return "sha256=" + hex.EncodeToString(Sum(secret, timestamp, body))
}

// Set signs body now: it sets TimestampHeader (Unix seconds) and sigHeader
// (SignatureHeader when empty).
func Set(h http.Header, sigHeader string, secret []byte, body []byte) {
	if sigHeader == "" {
		sigHeader = SignatureHeader
	}
	ts := strconv.FormatInt(time.Now().Unix(), 10)
	h.Set(TimestampHeader, ts)
	h.Set(sigHeader, Value(secret, ts, body))
}
