// Package clients models the TLS client families teams serve (OpenSSL 3,
// GnuTLS, Chromium, Go's crypto/tls, Java) as presets: for what a probe
// saw of an endpoint, which of them would complete a validated handshake
// and which would fail, and how. The models are measured against the real
// clients by testbed/clients (docs/clients.md).
package clients
