package clients

// Family is a client family, named as certpulse.clients.failing names it
// (and as the nel receiver names browsers: chrome for Chromium-based).
type Family string

const (
	// OpenSSL is OpenSSL 3 with Debian's defaults: curl, nginx and HAProxy
	// as clients.
	OpenSSL Family = "openssl"
	// Python is Python's ssl default context (OpenSSL with Python's own
	// cipher string).
	Python Family = "python"
	// Node is Node.js tls (its bundled OpenSSL at security level 1).
	Node Family = "node"
	// GnuTLS is GnuTLS 3.7 with its NORMAL priority: gnutls-cli, wget,
	// apt's https transport.
	GnuTLS Family = "gnutls"
	// Chrome is Chromium and the browsers built on it.
	Chrome Family = "chrome"
	// Go is Go's crypto/tls with its defaults.
	Go Family = "go"
	// Java is OpenJDK 17's JSSE with its java.security defaults.
	Java Family = "java"
)
