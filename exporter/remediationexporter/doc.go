// Package remediationexporter implements the certpulse `remediation`
// exporter: verify, then act within guardrails, with human approval for
// risky actions, and audit every decision.
//
//go:generate go tool mdatagen metadata.yaml
package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"
