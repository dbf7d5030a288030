package tb

import (
	"testing"

	"github.com/certpulse/certpulse/internal/dashboards"
)

// CheckPanels runs every PromQL query of dashboard uid's panels that want
// selects (all of them when want is nil), with Grafana's variables
// substituted (endpoint for $endpoint), on the Prometheus at prom, and
// fails the test for any query that errs, or returns no data unless
// mayBeEmpty (nil: none may) says the expression may. It returns the number
// of queries run.
func CheckPanels(t testing.TB, prom, uid, endpoint string, want, mayBeEmpty func(expr string) bool) int {
	t.Helper()
	total := 0
	for _, d := range dashboards.All() {
		if d.UID != uid {
			continue
		}
		for _, p := range d.Panels {
			if p.Datasource == nil || p.Datasource.UID != "${mimir}" {
				continue
			}
			for _, tg := range p.Targets {
				if want != nil && !want(tg.Expr) {
					continue
				}
				total++
				expr := dashboards.Substitute(tg.Expr, endpoint)
				n, err := PromQuery(prom, expr)
				switch {
				case err != nil:
					t.Errorf("%s / %s: %v\n  %s", uid, p.Title, err, expr)
				case n == 0 && (mayBeEmpty == nil || !mayBeEmpty(expr)):
					t.Errorf("%s / %s: no data\n  %s", uid, p.Title, expr)
				}
			}
		}
	}
	if total == 0 {
		t.Errorf("dashboard %s: no panel selected", uid)
	}
	return total
}
