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
	"sort"
	"strconv"
	"strings"
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

// BodyValue is the body-only scheme's header value: "sha256=" +
// hex(HMAC-SHA256(secret, body)), as GitHub and adnanh/webhook's
// payload-hmac-sha256 rule check it. It carries no timestamp: the body must.
func BodyValue(secret []byte, body []byte) string {
	m := hmac.New(sha256.New, secret)
	m.Write(body)
	return "sha256=" + hex.EncodeToString(m.Sum(nil))
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

// CanonicalCE is the header part of a binary-mode CloudEvents signature:
// every ce-* header and Content-Type, names lower-cased, sorted by name,
// one "name:value\n" line each (values as sent, multiple values joined by
// ","). In binary mode the event's id, type and source travel in these
// headers, so they must be signed with the body.
func CanonicalCE(h http.Header) []byte {
	var names []string
	for k := range h {
		lk := strings.ToLower(k)
		if strings.HasPrefix(lk, "ce-") || lk == "content-type" {
			names = append(names, k)
		}
	}
	sort.Slice(names, func(i, j int) bool { return strings.ToLower(names[i]) < strings.ToLower(names[j]) })
	var b strings.Builder
	for _, k := range names {
		b.WriteString(strings.ToLower(k))
		b.WriteByte(':')
		b.WriteString(strings.Join(h.Values(k), ","))
		b.WriteByte('\n')
	}
	return []byte(b.String())
}

// SumWithHeaders is the binary-mode signature: HMAC-SHA256(secret,
// timestamp + "." + canonical headers + body).
func SumWithHeaders(secret []byte, timestamp string, canonical, body []byte) []byte {
	m := hmac.New(sha256.New, secret)
	m.Write([]byte(timestamp))
	m.Write([]byte{'.'})
	m.Write(canonical)
	m.Write(body)
	return m.Sum(nil)
}

// ValueWithHeaders is the header value of SumWithHeaders.
func ValueWithHeaders(secret []byte, timestamp string, canonical, body []byte) string {
	return "sha256=" + hex.EncodeToString(SumWithHeaders(secret, timestamp, canonical, body))
}
