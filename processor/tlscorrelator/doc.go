// Package tlscorrelator implements the certpulse `tlscorrelator` processor:
// it turns tlsprobe results and certlifecycle events into deduplicated,
// routed incidents with reason codes, severity and impact, and keeps its
// state across restarts through a storage extension.
//
//go:generate go tool mdatagen metadata.yaml
package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"
