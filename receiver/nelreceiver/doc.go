// Package nelreceiver implements the certpulse `nel` receiver: the
// reporting endpoint browsers send Network Error Logging reports to (the
// Reporting API's v0 `application/reports+json` batches), emitted as OTLP
// log records in certpulse's schema: what real users' browsers saw fail.
//
//go:generate go tool mdatagen metadata.yaml
package nelreceiver // import "github.com/certpulse/certpulse/receiver/nelreceiver"
