// Package certlifecyclereceiver implements the certpulse `certlifecycle`
// receiver: an authenticated HTTP webhook for certificate lifecycle events
// (ACME clients, cert-manager, deploy pipelines, maintenance windows), emitted
// as OTLP logs.
//
//go:generate go tool mdatagen metadata.yaml
package certlifecyclereceiver // import "github.com/certpulse/certpulse/receiver/certlifecyclereceiver"
