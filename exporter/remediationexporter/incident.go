package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/records"
	"github.com/certpulse/certpulse/internal/signature"
)

// Incident is an incident transition as the correlator emits it (the
// records package's contract); it is also the data of webhook body
// templates ({{.Incident.Service}} ...).
type Incident = records.Incident

// incidents extracts the incident records of ld; everything else is
// skipped. bad are the incident records that could not be read.
func incidents(ld plog.Logs) (out []Incident, bad []error) {
	return records.DecodeIncidents(ld)
}

// actedOn is an attempt another instance (or this one) made on an incident,
// read back from the audit trail: a `remediation` lifecycle event whose
// job_id is the idempotency key (incident:action:attempt).
type actedOn struct {
	incidentID string
	attempt    int
	at         time.Time
}

// actedOutcomes are the audit outcomes that mean an attempt was spent.
var actedOutcomes = map[attrs.Outcome]bool{attrs.OutcomeSent: true, attrs.OutcomeFailed: true, attrs.OutcomeAwaitingApproval: true, attrs.OutcomeDryRun: true, attrs.OutcomeApproved: true}

// auditTrail extracts the spent attempts from the remediation audit events
// in ld.
//
// Only events attested under secret count (signature.Attest); rejected
// counts those that claimed to be remediation history and were not
// attested.
func auditTrail(ld plog.Logs, secret []byte) (out []actedOn, rejected int) {
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		res := rls.At(i).Resource().Attributes()
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				au, err := records.DecodeAudit(res, lrs.At(k))
				if err != nil || !actedOutcomes[au.Outcome] {
					continue
				}
				n, ok := attemptOf(au.IncidentID, au.Key)
				if !ok {
					continue
				}
				if !signature.VerifyAttestation(secret, au.Attestation, au.IncidentID, au.Key, string(au.Outcome), au.Time) {
					rejected++
					continue
				}
				out = append(out, actedOn{incidentID: au.IncidentID, attempt: n, at: au.Time})
			}
		}
	}
	return out, rejected
}

// attemptOf is the attempt number of idempotency key key
// (incident:...:attempt) on incident id.
func attemptOf(id, key string) (int, bool) {
	at := strings.LastIndexByte(key, ':')
	if id == "" || at < 0 || !strings.HasPrefix(key, id+":") {
		return 0, false
	}
	n, err := strconv.Atoi(key[at+1:])
	if err != nil || n < 1 || n > 1000 {
		return 0, false
	}
	return n, true
}

// attemptKey is the idempotency key of action at attempt in this episode.
func attemptKey(i *Incident, action string, attempt int) string {
	return IdempotencyKey(i.ID, i.OpenedAt, action, attempt)
}
