// Package tlsedgeconnector implements the tlsedge connector: it reads the
// access and error log records of TLS proxies (parsed by the filelog
// receiver with the configs in distributions/edge) and turns them into
// handshake metrics, normalized records, per-node windows for the
// correlator and a policy what-if. See README.md here and docs/edge.md.
//
//go:generate mdatagen metadata.yaml
package tlsedgeconnector // import "github.com/certpulse/certpulse/connector/tlsedgeconnector"
