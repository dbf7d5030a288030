package tlsprobereceiver

import (
	"testing"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

func result(profile string, reason attrs.Reason) tlsinspect.Result {
	r := tlsinspect.Result{Profile: profile, Established: true}
	if reason != attrs.ReasonOK {
		r.Findings = []tlsinspect.Finding{{Reason: reason}}
	}
	return r
}

func TestTargetMemory(t *testing.T) {
	m := newTargetMemory()
	rounds := []struct {
		results     []tlsinspect.Result
		unconfirmed []string
	}{
		{results: []tlsinspect.Result{result("default", attrs.ReasonOK), result("legacy", attrs.ReasonOK)}},
		{results: []tlsinspect.Result{result("default", attrs.ReasonExpiredLeaf), result("legacy", attrs.ReasonOK)}, unconfirmed: []string{"default"}},
		{results: []tlsinspect.Result{result("default", attrs.ReasonExpiredLeaf), result("legacy", attrs.ReasonOK)}}, // failing before: confirmed
	}
	for i, rd := range rounds {
		got := m.unconfirmedFailures("n1", rd.results)
		m.countFailures("n1", rd.results)
		if len(got) != len(rd.unconfirmed) {
			t.Errorf("round %d: unconfirmed %v, want %v", i, got, rd.unconfirmed)
		}
		for _, p := range rd.unconfirmed {
			if !got[p] {
				t.Errorf("round %d: %s not unconfirmed", i, p)
			}
		}
	}
	if n := m.failures[[3]string{"n1", "default", string(attrs.ReasonExpiredLeaf)}]; n != 2 || len(m.failures) != 1 {
		t.Errorf("failures %v, want default/expired_leaf 2 only", m.failures)
	}
}

func TestMemoriesForgetRemovedTargets(t *testing.T) {
	ms := newMemories()
	a := ms.of("a")
	a.countFailures("", []tlsinspect.Result{result("default", attrs.ReasonHostnameMismatch)})
	ms.of("b")
	ms.keep(map[string]bool{"a": true})
	if ms.of("a") != a || len(ms.m) != 1 {
		t.Fatalf("kept %d memories; a kept: %v", len(ms.m), ms.of("a") == a)
	}
}
