// Package tlsprobereceiver implements the certpulse `tlsprobe` receiver: active
// TLS probes from several client profiles, reported as OTLP metrics and one
// structured log record per probe and profile with a reason code.
//
//go:generate go tool mdatagen metadata.yaml
package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"
