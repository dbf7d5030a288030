// Package certmanagerprocessor implements the certpulse `certmanager`
// processor: cert-manager records issuance in its Certificate and
// CertificateRequest objects; the contrib k8sobjects receiver watches them,
// and this processor turns their changes into certpulse lifecycle events
// (the records certlifecycle makes of a hook sender's POST), so that the
// correlator sees renewals, failures and overdue renewals without hook
// scripts, and a new certificate triggers the service's probes.
//
// Every other record passes through untouched, so the processor sits in the
// agent's main logs pipeline, before the correlator.
//
//go:generate go tool mdatagen metadata.yaml
package certmanagerprocessor // import "github.com/certpulse/certpulse/processor/certmanagerprocessor"
