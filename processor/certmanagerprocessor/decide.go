package certmanagerprocessor // import "github.com/certpulse/certpulse/processor/certmanagerprocessor"

import (
	"cmp"
	"crypto/x509"
	"fmt"
	"strconv"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// certState is what the processor remembers of one Certificate.
type certState struct {
	uid         string
	namespace   string
	name        string
	service     string
	secretName  string
	dnsNames    []string
	revision    int64
	notAfter    time.Time
	renewalTime time.Time
	// failure identifies the latest failure reported (lastFailureTime, or
	// the Ready condition's reason when cert-manager set no time).
	failure string
	// overdueFor is the renewalTime already reported overdue.
	overdueFor time.Time
}

// issued is a signed leaf from a CertificateRequest, for the revision it
// was requested for, waiting for the Certificate to reach that revision.
type issued struct {
	revision int64
	leaf     *x509.Certificate
}

// lcEvent is one lifecycle event to emit.
type lcEvent struct {
	typ      string
	id       string
	at       time.Time
	message  string
	state    certState // the Certificate as of the event
	leaf     *x509.Certificate
	notAfter time.Time
}

// Ready reasons that are not failures: before the first issuance, during
// one.
var benignNotReady = map[string]bool{"": true, "DoesNotExist": true, "InProgress": true, "Pending": true, "Issuing": true, "MissingData": true}

// failureKey names the failure o reports, "" when none.
func failureKey(o object) string {
	if !o.lastFailure.IsZero() {
		return o.lastFailure.UTC().Format(time.RFC3339)
	}
	if o.ready == "False" && !benignNotReady[o.readyReason] {
		return "ready:" + o.readyReason
	}
	return ""
}

func eventID(uid, kind, key string) string { return "cert-manager/" + uid + "/" + kind + "/" + key }

// decideCertificate is what a change of one Certificate means: the state to
// keep (nil: forget it) and the events to emit. prev is nil on first sight:
// after a restart every Certificate is seen anew, and a revision already
// there is not a renewal (it happened before), but a failure is reported.
// pending is the leaf a CertificateRequest produced, if any; overdueAfter
// is Config.OverdueAfter. Pure.
func decideCertificate(prev *certState, o object, pending *issued, now time.Time, overdueAfter time.Duration) (*certState, []lcEvent) {
	if o.event == watchDeleted {
		if prev == nil {
			return nil, nil
		}
		return nil, []lcEvent{{typ: attrs.LifecycleRetired, id: eventID(prev.uid, "deleted", strconv.FormatInt(prev.revision, 10)), at: now,
			message: fmt.Sprintf("Certificate %s/%s deleted", o.namespace, o.name), state: *prev}}
	}
	next := &certState{uid: o.uid, namespace: o.namespace, name: o.name, service: cmp.Or(o.service, o.name), secretName: o.secretName,
		dnsNames: o.dnsNames, revision: o.revision, notAfter: o.notAfter, renewalTime: o.renewalTime, failure: failureKey(o)}
	var evs []lcEvent
	if prev != nil {
		next.overdueFor = prev.overdueFor
		if o.revision > prev.revision {
			typ := attrs.LifecycleRenewed
			if prev.revision == 0 && o.revision == 1 {
				typ = attrs.LifecycleIssued
			}
			ev := lcEvent{typ: typ, id: eventID(o.uid, "revision", strconv.FormatInt(o.revision, 10)), at: now, state: *next, notAfter: o.notAfter,
				message: fmt.Sprintf("cert-manager %s Certificate %s/%s (revision %d, secret %s)", typ, o.namespace, o.name, o.revision, o.secretName)}
			if pending != nil && pending.revision == o.revision {
				ev.leaf = pending.leaf
			}
			evs = append(evs, ev)
		}
	}
	if next.failure != "" && (prev == nil || prev.failure != next.failure) {
		msg := cmp.Or(o.issuingMsg, o.readyMessage, o.readyReason)
		evs = append(evs, lcEvent{typ: attrs.LifecycleRenewalFailed, id: eventID(o.uid, "failure", next.failure), at: cmp.Or(o.lastFailure, now), state: *next,
			message: fmt.Sprintf("cert-manager could not issue Certificate %s/%s: %s", o.namespace, o.name, msg)})
	}
	if ev, ok := decideOverdue(next, now, overdueAfter); ok {
		next.overdueFor = next.renewalTime
		evs = append(evs, ev)
	}
	return next, evs
}

// decideOverdue reports st as renewal_overdue when its renewalTime passed
// more than after ago and was not reported yet. Pure.
func decideOverdue(st *certState, now time.Time, after time.Duration) (lcEvent, bool) {
	if st.renewalTime.IsZero() || now.Before(st.renewalTime.Add(after)) || st.overdueFor.Equal(st.renewalTime) {
		return lcEvent{}, false
	}
	key := st.renewalTime.UTC().Format(time.RFC3339)
	return lcEvent{typ: attrs.LifecycleRenewalOverdue, id: eventID(st.uid, "overdue", key), at: now, state: *st, notAfter: st.notAfter,
		message: fmt.Sprintf("cert-manager has not renewed Certificate %s/%s: renewalTime %s passed, still revision %d (expires %s)",
			st.namespace, st.name, key, st.revision, st.notAfter.UTC().Format(time.RFC3339))}, true
}
