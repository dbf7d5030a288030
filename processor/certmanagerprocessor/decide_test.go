package certmanagerprocessor

import (
	"crypto/x509"
	"math/big"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

func TestDecideCertificate(t *testing.T) {
	now := time.Date(2026, 12, 3, 10, 0, 0, 0, time.UTC)
	base := object{kind: kindCertificate, event: "MODIFIED", namespace: "shop", name: "web", uid: "u1", service: "web", secretName: "web-tls",
		revision: 2, ready: "True", notAfter: now.Add(60 * 24 * time.Hour), renewalTime: now.Add(30 * 24 * time.Hour)}
	with := func(f func(*object)) object { o := base; f(&o); return o }
	prev := &certState{uid: "u1", namespace: "shop", name: "web", service: "web", revision: 2, renewalTime: base.renewalTime}
	leaf := &x509.Certificate{SerialNumber: big.NewInt(7)}
	failed := now.Add(-time.Minute)
	for _, tc := range []struct {
		name    string
		prev    *certState
		obj     object
		pending *issued
		want    []string // event types
		forget  bool
		leaf    bool
	}{
		{name: "first sight, healthy: nothing (a revision already there is not a renewal)", obj: base},
		{name: "first sight, failing: renewal_failed", obj: with(func(o *object) { o.lastFailure = failed; o.issuingMsg = "ACME order failed" }), want: []string{attrs.LifecycleRenewalFailed}},
		{name: "first sight, Ready False for a reason that is not a failure", obj: with(func(o *object) { o.ready, o.readyReason = "False", "DoesNotExist" })},
		{name: "first sight, Ready False Expired, no failure time", obj: with(func(o *object) { o.ready, o.readyReason = "False", "Expired" }), want: []string{attrs.LifecycleRenewalFailed}},
		{name: "no change", prev: prev, obj: base},
		{name: "revision 0 to 1: issued", prev: &certState{uid: "u1", service: "web"}, obj: with(func(o *object) { o.revision = 1 }), want: []string{attrs.LifecycleIssued}},
		{name: "revision up: renewed", prev: prev, obj: with(func(o *object) { o.revision = 3 }), want: []string{attrs.LifecycleRenewed}},
		{name: "renewed with the request's leaf", prev: prev, obj: with(func(o *object) { o.revision = 3 }), pending: &issued{revision: 3, leaf: leaf}, want: []string{attrs.LifecycleRenewed}, leaf: true},
		{name: "a leaf for another revision is not attached", prev: prev, obj: with(func(o *object) { o.revision = 3 }), pending: &issued{revision: 4, leaf: leaf}, want: []string{attrs.LifecycleRenewed}},
		{name: "new failure time: renewal_failed", prev: prev, obj: with(func(o *object) { o.lastFailure = failed }), want: []string{attrs.LifecycleRenewalFailed}},
		{name: "same failure again: nothing", prev: &certState{uid: "u1", service: "web", revision: 2, failure: failed.Format(time.RFC3339)}, obj: with(func(o *object) { o.lastFailure = failed })},
		{name: "renewalTime passed over an hour ago: overdue", prev: prev, obj: with(func(o *object) { o.renewalTime = now.Add(-2 * time.Hour) }), want: []string{attrs.LifecycleRenewalOverdue}},
		{name: "renewalTime passed minutes ago: not yet", prev: prev, obj: with(func(o *object) { o.renewalTime = now.Add(-10 * time.Minute) })},
		{name: "overdue reported once", prev: &certState{uid: "u1", service: "web", revision: 2, overdueFor: now.Add(-2 * time.Hour)}, obj: with(func(o *object) { o.renewalTime = now.Add(-2 * time.Hour) })},
		{name: "deleted: retired, forgotten", prev: prev, obj: with(func(o *object) { o.event = watchDeleted }), want: []string{attrs.LifecycleRetired}, forget: true},
		{name: "deleted, never seen: nothing", obj: with(func(o *object) { o.event = watchDeleted }), forget: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			next, evs := decideCertificate(tc.prev, tc.obj, tc.pending, now, time.Hour)
			var got []string
			for _, ev := range evs {
				got = append(got, ev.typ)
				if ev.id == "" || ev.state.service != "web" {
					t.Errorf("event %+v: want an id and service web", ev)
				}
				if (ev.leaf != nil) != tc.leaf {
					t.Errorf("leaf attached = %v, want %v", ev.leaf != nil, tc.leaf)
				}
			}
			if len(got) != len(tc.want) || (len(got) > 0 && got[0] != tc.want[0]) {
				t.Errorf("events %v, want %v", got, tc.want)
			}
			if (next == nil) != tc.forget {
				t.Errorf("state kept = %v, want %v", next != nil, !tc.forget)
			}
		})
	}
}

// Event ids are deterministic: every agent that watches the same
// Certificate names its events alike, so copies are recognizable.
func TestEventIDsDeterministic(t *testing.T) {
	now := time.Now()
	o := object{kind: kindCertificate, namespace: "a", name: "b", uid: "u", revision: 5}
	_, a := decideCertificate(&certState{uid: "u", revision: 4}, o, nil, now, time.Hour)
	_, b := decideCertificate(&certState{uid: "u", revision: 4}, o, nil, now.Add(time.Minute), time.Hour)
	if len(a) != 1 || len(b) != 1 || a[0].id != b[0].id {
		t.Fatalf("ids differ: %v %v", a, b)
	}
}
