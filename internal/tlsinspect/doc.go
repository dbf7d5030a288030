// Package tlsinspect probes one TLS endpoint and tells exactly what is wrong
// with it: it captures the presented chain even when validation fails,
// validates it under each client profile itself, checks OCSP (stapled and
// responder), CRLs, pins, key and signature strength, and classifies every
// finding into the reason codes of internal/attrs.
//
// The tlsprobe receiver uses it for every probe, and the remediation exporter
// reuses it to verify a failure before acting.
package tlsinspect
