package nelreceiver // import "github.com/certpulse/certpulse/receiver/nelreceiver"

import (
	"strings"

	"github.com/certpulse/certpulse/internal/attrs"
)

// nelTypeOK is a successful request's report (success_fraction).
const nelTypeOK = "ok"

// nelReasons maps NEL error types (W3C Network Error Logging, section
// "Predefined network error types", and Chromium's net error mapping) to
// the reason code a probe would name. A browser's report is coarser than a
// probe's verdict: date_invalid is expired_leaf or not_yet_valid (or an
// expired intermediate), authority_invalid is unknown_ca or a chain the
// browser could not complete; the probe the incident triggers says which.
var nelReasons = map[string]attrs.Reason{
	"tls.cert.date_invalid":                 attrs.ReasonExpiredLeaf,
	"tls.cert.authority_invalid":            attrs.ReasonUnknownCA,
	"tls.cert.name_invalid":                 attrs.ReasonHostnameMismatch,
	"tls.cert.revoked":                      attrs.ReasonRevoked,
	"tls.cert.pinned_key_not_in_cert_chain": attrs.ReasonPinMismatch,
	"tls.cert.invalid":                      attrs.ReasonHandshakeFailure,
	"tls.version_or_cipher_mismatch":        attrs.ReasonProtocolMismatch,
	"tls.bad_client_auth_cert":              attrs.ReasonHandshakeFailure,
	"tls.protocol.error":                    attrs.ReasonHandshakeFailure,
	"tls.failed":                            attrs.ReasonHandshakeFailure,
	"tcp.timed_out":                         attrs.ReasonHandshakeTimeout,
	"tcp.closed":                            attrs.ReasonConnectionReset,
	"tcp.reset":                             attrs.ReasonConnectionReset,
	"tcp.aborted":                           attrs.ReasonConnectionReset,
	"tcp.failed":                            attrs.ReasonConnectionReset,
	"tcp.refused":                           attrs.ReasonConnectionRefused,
	"tcp.address_invalid":                   attrs.ReasonConnectionRefused,
	"tcp.address_unreachable":               attrs.ReasonConnectionRefused,
	"dns.unreachable":                       attrs.ReasonDNSFailure,
	"dns.name_not_resolved":                 attrs.ReasonDNSFailure,
	"dns.failed":                            attrs.ReasonDNSFailure,
	"dns.address_changed":                   attrs.ReasonDNSFailure,
}

// maxTypeLength bounds a report's type (the longest predefined one is 37).
const maxTypeLength = 64

// reasonOf maps a NEL type to its reason code: ok for a success report,
// the table's code for a TLS, TCP or DNS failure, and handshake_failure,
// connection_reset or dns_failure for an unlisted tls.*, tcp.* or dns.*
// type. HTTP-level failures (http.*, abandoned, unknown) have none ("").
func reasonOf(nelType string) attrs.Reason {
	if nelType == nelTypeOK {
		return attrs.ReasonOK
	}
	if r, ok := nelReasons[nelType]; ok {
		return r
	}
	switch {
	case strings.HasPrefix(nelType, "tls."):
		return attrs.ReasonHandshakeFailure
	case strings.HasPrefix(nelType, "tcp."):
		return attrs.ReasonConnectionReset
	case strings.HasPrefix(nelType, "dns."):
		return attrs.ReasonDNSFailure
	}
	return ""
}

// otherTypes are the predefined types that are not TLS, TCP or DNS
// failures (W3C Network Error Logging, and Chromium's).
var otherTypes = map[string]bool{
	"ok": true, "abandoned": true, "unknown": true, "http.error": true, "http.failed": true,
	"http.protocol.error": true, "http.response.invalid": true, "http.response.invalid.empty": true,
	"http.response.invalid.content_length_mismatch": true, "http.response.invalid.incomplete_chunked_encoding": true,
	"http.response.invalid.invalid_chunked_encoding": true, "http.response.invalid.invalid_redirect": true,
	"http.response.invalid.multiple_content_length": true, "http.response.invalid.multiple_content_disposition": true,
	"http.response.invalid.multiple_location": true, "http.response.redirect_loop": true,
}

// knownType keeps a predefined type and names any other by its family
// ("tls.other", "tcp.other", "dns.other", "http.other", "other"): the
// type is a metric attribute, and a client chooses what it sends.
func knownType(t string) string {
	if _, ok := nelReasons[t]; ok || otherTypes[t] {
		return t
	}
	for _, f := range []string{"tls.", "tcp.", "dns.", "http."} {
		if strings.HasPrefix(t, f) {
			return f + "other"
		}
	}
	return "other"
}
