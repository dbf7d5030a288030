package tlsprobereceiver

import (
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// TestTargetPoolShares: targets that are probed alike share one spec and
// targets with the same labels one labels value; any difference is its own.
func TestTargetPoolShares(t *testing.T) {
	profA := []tlsinspect.Profile{{Name: "default"}}
	profB := []tlsinspect.Profile{{Name: "default"}} // equal, another resolution
	base := targetSpec{profiles: profA, interval: time.Minute, fromFile: true}
	for _, tc := range []struct {
		name  string
		other func(s targetSpec) targetSpec
		same  bool
	}{
		{"identical", func(s targetSpec) targetSpec { return s }, true},
		{"pins copied, equal", func(s targetSpec) targetSpec { s.pins = nil; return s }, true},
		{"starttls", func(s targetSpec) targetSpec { s.startTLS = "smtp"; return s }, false},
		{"pins", func(s targetSpec) targetSpec { s.pins = []string{"sha256/x"}; return s }, false},
		{"pins split differently", func(s targetSpec) targetSpec { s.pins = []string{"a\nb"}; return s }, false},
		{"profiles resolved apart", func(s targetSpec) targetSpec { s.profiles = profB; return s }, false},
		{"fewer profiles", func(s targetSpec) targetSpec { s.profiles = profA[:0]; return s }, false},
		{"interval", func(s targetSpec) targetSpec { s.interval = time.Hour; return s }, false},
		{"inline", func(s targetSpec) targetSpec { s.fromFile = false; return s }, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var p targetPool
			first := base
			if tc.name == "pins split differently" {
				first.pins = []string{"a", "b"}
			}
			a := p.spec(first)
			b := p.spec(tc.other(first))
			if (a == b) != tc.same {
				t.Errorf("shared = %v, want %v", a == b, tc.same)
			}
		})
	}

	var p targetPool
	l1 := p.labels(&targetLabels{service: "shop", criticality: "high"})
	l2 := p.labels(&targetLabels{service: "shop", criticality: "high"})
	l3 := p.labels(&targetLabels{service: "shop", criticality: "low"})
	if l1 != l2 || l1 == l3 {
		t.Errorf("labels: same shared %v, different apart %v", l1 == l2, l1 != l3)
	}
}
