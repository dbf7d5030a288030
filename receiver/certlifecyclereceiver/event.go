package certlifecyclereceiver // import "github.com/certpulse/certpulse/receiver/certlifecyclereceiver"

import (
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/certpem"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// Event is one normalized lifecycle event.
type Event struct {
	// Envelope.
	ID     string
	Source string
	Type   string // short type: issued, deployed, ...
	Time   time.Time
	Format string // cloudevents-structured, cloudevents-batch, cloudevents-binary, json

	Data EventData
}

// EventData is the event payload: the CloudEvents `data`, or the plain JSON
// object itself (which also carries type, id, source and time).
type EventData struct {
	Service         string   `json:"service"`
	Environment     string   `json:"environment,omitempty"`
	Region          string   `json:"region,omitempty"`
	Cluster         string   `json:"cluster,omitempty"`
	Endpoints       []string `json:"endpoints,omitempty"`
	JobID           string   `json:"job_id,omitempty"`
	PipelineStage   string   `json:"pipeline_stage,omitempty"`
	ArtifactVersion string   `json:"artifact_version,omitempty"`
	Message         string   `json:"message,omitempty"`
	IncidentID      string   `json:"incident_id,omitempty"`
	// Attestation: a remediation exporter's HMAC over its audit event
	// (trail_secret); only attested events count as remediation history.
	Attestation string    `json:"attestation,omitempty"`
	Certificate *CertInfo `json:"certificate,omitempty"`
	Window      *Window   `json:"window,omitempty"`
}

// CertInfo identifies a certificate by fingerprints, or carries its PEM, from
// which the receiver derives all of them.
type CertInfo struct {
	SHA256     string    `json:"sha256,omitempty"`
	SPKISHA256 string    `json:"spki_sha256,omitempty"`
	Serial     string    `json:"serial,omitempty"`
	NotBefore  time.Time `json:"not_before,omitzero"`
	NotAfter   time.Time `json:"not_after,omitzero"`
	Issuer     string    `json:"issuer,omitempty"`
	Subject    string    `json:"subject,omitempty"`
	SANs       []string  `json:"sans,omitempty"`
	PEM        string    `json:"pem,omitempty"`
}

// Window is a maintenance window or a planned rotation.
type Window struct {
	Start time.Time `json:"start,omitzero"`
	End   time.Time `json:"end,omitzero"`
}

// FieldError names the field of the entry that is wrong.
type FieldError struct {
	Index   int    `json:"index"`
	Field   string `json:"field"`
	Message string `json:"message"`
}

func (e FieldError) Error() string {
	return fmt.Sprintf("event %d: %s: %s", e.Index, e.Field, e.Message)
}

// limits bound what one event may carry.
type limits struct {
	maxField     int
	maxList      int
	maxPEM       int
	maxClockSkew time.Duration
}

// normalize validates e and derives certificate fields from PEM.
func (e *Event) normalize(idx int, lim limits, now time.Time) []FieldError {
	var errs []FieldError
	bad := func(field, msg string) { errs = append(errs, FieldError{idx, field, msg}) }
	str := func(field, v string, required bool) {
		if required && strings.TrimSpace(v) == "" {
			bad(field, "is required")
		}
		if len(v) > lim.maxField {
			bad(field, fmt.Sprintf("is longer than %d bytes", lim.maxField))
		}
	}
	str("id", e.ID, false)
	str("source", e.Source, false)
	str("data.service", e.Data.Service, true)
	str("data.environment", e.Data.Environment, false)
	str("data.region", e.Data.Region, false)
	str("data.cluster", e.Data.Cluster, false)
	str("data.job_id", e.Data.JobID, false)
	str("data.pipeline_stage", e.Data.PipelineStage, false)
	str("data.artifact_version", e.Data.ArtifactVersion, false)
	str("data.incident_id", e.Data.IncidentID, false)
	str("data.attestation", e.Data.Attestation, false)
	if len(e.Data.Message) > 4*lim.maxField {
		bad("data.message", fmt.Sprintf("is longer than %d bytes", 4*lim.maxField))
	}
	if len(e.Data.Endpoints) > lim.maxList {
		bad("data.endpoints", fmt.Sprintf("has more than %d entries", lim.maxList))
	}
	for i, ep := range e.Data.Endpoints {
		str(fmt.Sprintf("data.endpoints[%d]", i), ep, true)
	}
	if !e.Time.IsZero() && e.Time.After(now.Add(lim.maxClockSkew)) {
		bad("time", fmt.Sprintf("is more than %s in the future", lim.maxClockSkew))
	}
	if w := e.Data.Window; w != nil && !w.Start.IsZero() && !w.End.IsZero() && w.End.Before(w.Start) {
		bad("data.window.end", "is before data.window.start")
	}
	switch e.Type {
	case attrs.LifecycleMaintenanceStarted, attrs.LifecycleRotationPlanned:
		if e.Data.Window == nil || e.Data.Window.End.IsZero() {
			bad("data.window.end", "is required for "+e.Type+" (when it is over)")
		}
	}
	if c := e.Data.Certificate; c != nil {
		errs = append(errs, c.normalize(idx, lim)...)
	}
	return errs
}

func (c *CertInfo) normalize(idx int, lim limits) []FieldError {
	var errs []FieldError
	bad := func(field, msg string) { errs = append(errs, FieldError{idx, "data.certificate." + field, msg}) }
	if len(c.PEM) > lim.maxPEM {
		bad("pem", fmt.Sprintf("is longer than %d bytes", lim.maxPEM))
		return errs
	}
	for _, f := range []struct{ name, v string }{{"issuer", c.Issuer}, {"subject", c.Subject}, {"serial", c.Serial}} {
		if len(f.v) > lim.maxField {
			bad(f.name, fmt.Sprintf("is longer than %d bytes", lim.maxField))
		}
	}
	if len(c.SANs) > lim.maxList {
		bad("sans", fmt.Sprintf("has more than %d entries", lim.maxList))
	}
	for i, s := range c.SANs {
		if len(s) > lim.maxField {
			bad(fmt.Sprintf("sans[%d]", i), fmt.Sprintf("is longer than %d bytes", lim.maxField))
		}
	}
	if c.SHA256 != "" {
		if b, err := hex.DecodeString(strings.ReplaceAll(c.SHA256, ":", "")); err != nil || len(b) != 32 {
			bad("sha256", "must be the hex SHA-256 of the certificate DER")
		} else {
			c.SHA256 = strings.ToUpper(hex.EncodeToString(b))
		}
	}
	if c.SPKISHA256 != "" {
		n, err := tlsinspect.NormalizePin(c.SPKISHA256)
		if err != nil {
			bad("spki_sha256", "must be sha256/<base64 SHA-256 of the SubjectPublicKeyInfo>")
		} else {
			c.SPKISHA256 = n
		}
	}
	if c.PEM == "" {
		if c.SHA256 == "" && c.SPKISHA256 == "" {
			bad("sha256", "certificate needs sha256, spki_sha256 or pem")
		}
		return errs
	}
	pb := certpem.ReadPEM([]byte(c.PEM), 1)
	if len(pb.Problems) > 0 {
		bad("pem", "does not parse: "+pb.Problems[0])
		return errs
	}
	if len(pb.Certs) == 0 {
		bad("pem", "is not a PEM CERTIFICATE block")
		return errs
	}
	cert := pb.Certs[0]
	derived := CertInfo{
		SHA256:     tlsinspect.CertSHA256(cert),
		SPKISHA256: tlsinspect.SPKIPin(cert),
		Serial:     cert.SerialNumber.Text(16),
		NotBefore:  cert.NotBefore.UTC(),
		NotAfter:   cert.NotAfter.UTC(),
		Issuer:     cert.Issuer.String(),
		Subject:    cert.Subject.String(),
		SANs:       tlsinspect.SANs(cert),
	}
	if c.SHA256 != "" && c.SHA256 != derived.SHA256 {
		bad("sha256", "does not match the certificate in pem")
	}
	if c.SPKISHA256 != "" && c.SPKISHA256 != derived.SPKISHA256 {
		bad("spki_sha256", "does not match the certificate in pem")
	}
	*c = derived // the PEM itself is not forwarded: its fingerprints are
	return errs
}

// eventName is the OTLP EventName of a lifecycle event.
func eventName(t string) string { return attrs.EventLifecyclePrefix + t }
