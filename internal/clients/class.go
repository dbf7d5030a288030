package clients

import "strings"

// Class is the kind of failure a client reports, coarse enough that every
// TLS stack's own message maps onto it: what a team needs to know to act.
type Class string

const (
	// ClassOK is a completed, validated handshake.
	ClassOK Class = "ok"
	// ClassExpired: a certificate expired or not yet valid.
	ClassExpired Class = "expired"
	// ClassUntrusted: no path to a trusted root (unknown or self-signed
	// issuer, an incomplete chain).
	ClassUntrusted Class = "untrusted"
	// ClassHostname: the certificate does not cover the name.
	ClassHostname Class = "hostname"
	// ClassWeak: a key or signature algorithm the client refuses.
	ClassWeak Class = "weak"
	// ClassProtocol: no protocol version or cipher suite in common.
	ClassProtocol Class = "protocol"
	// ClassClientCert: the server demands a client certificate.
	ClassClientCert Class = "client_cert"
	// ClassRevoked: the client learned the certificate is revoked.
	ClassRevoked Class = "revoked"
	// ClassNetwork: no TLS at all (refused, reset, timeout, not TLS).
	ClassNetwork Class = "network"
	// ClassInvalid: any other certificate or handshake error.
	ClassInvalid Class = "invalid"
)

// classRules map the words of client error messages (OpenSSL, GnuTLS,
// Go, Java, Node, Chromium net errors) to classes, first match wins: the
// order matters (GnuTLS says "NOT trusted. ... uses expired certificate").
var classRules = []struct {
	class Class
	words []string
}{
	{ClassRevoked, []string{"revoked"}},
	{ClassExpired, []string{"expired", "not yet valid", "date_invalid", "validity check failed", "not yet activated", "not activated"}},
	{ClassHostname, []string{"hostname", "host name", "subject name", "altname", "common_name_invalid", "subject alternative", "does not match the expected", "is valid for", "name in the certificate"}},
	{ClassWeak, []string{"too weak", "key too small", "insecure", "weak_signature", "weak_key", "algorithm constraints", "md too weak", "keysize", "key size"}},
	{ClassClientCert, []string{"certificate required", "certificate is required", "certificate_required", "bad certificate", "bad_certificate", "client_auth", "client auth"}},
	{ClassInvalid, []string{"purpose", "key usage", "subtree", "name constraints", "not authorized to sign", "signer's constraints", "cert_invalid", "chain length"}},
	{ClassUntrusted, []string{"unable to get", "self-signed", "self signed", "self_signed", "unknown ca", "unknown_ca", "unknown authority", "authority_invalid", "not trusted", "issuer", "certification path", "unable to verify", "unable_to_verify", "signer not found", "untrusted"}},
	{ClassProtocol, []string{"protocol version", "protocol_version", "unsupported protocol", "no protocols available", "version_or_cipher", "no shared cipher", "handshake failure", "handshake_failure", "no appropriate protocol", "insufficient security", "unsupported versions", "legacy sigalg", "handshake failed", "no supported versions", "cipher"}},
	{ClassNetwork, []string{"reset", "errno=104", "refused", "broken pipe", "pull function", "push function", "does not look like a tls", "timed out", "timeout", "wrong version number", "packet length", "unexpected eof", "eof", "ssl_protocol_error", "empty_response", "connection closed", "unexpected message", "unexpected tls packet", "non-properly terminated", "unrecognized ssl message", "closed without"}},
}

// ClassOf classifies a client's error message; ClassInvalid when no rule
// matches.
func ClassOf(msg string) Class {
	m := strings.ToLower(msg)
	for _, r := range classRules {
		for _, w := range r.words {
			if strings.Contains(m, w) {
				return r.class
			}
		}
	}
	return ClassInvalid
}
