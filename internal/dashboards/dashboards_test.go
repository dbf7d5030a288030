package dashboards

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/tools/logql"
)

const dir = "../../distributions/grafana/dashboards"

// TestCommittedIsGenerated: the JSON in distributions/ is what `make
// dashboards` writes from this package.
func TestCommittedIsGenerated(t *testing.T) {
	for _, d := range All() {
		want, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(filepath.Join(dir, d.UID+".json"))
		if err != nil {
			t.Fatalf("%s: %v (run `make dashboards`)", d.UID, err)
		}
		if string(got) != string(want)+"\n" {
			t.Errorf("%s.json differs from the generator: run `make dashboards`", d.UID)
		}
	}
}

var varRef = regexp.MustCompile(`\$\{?([A-Za-z_][A-Za-z0-9_]*)`)

// TestStructure: unique panel ids, panels on the 24-column grid without
// overlaps, every panel on one of the two datasource variables, and every
// variable a query references defined.
func TestStructure(t *testing.T) {
	builtin := map[string]bool{"__auto": true, "__interval": true, "__range": true, "__rate_interval": true, "__all": true}
	for _, d := range All() {
		defined := map[string]bool{}
		for _, v := range d.Templating.List {
			defined[v.Name] = true
		}
		ids := map[int]bool{}
		type cell struct{ x, y int }
		used := map[cell]int{}
		for _, p := range d.Panels {
			if ids[p.ID] {
				t.Errorf("%s: panel id %d repeats", d.UID, p.ID)
			}
			ids[p.ID] = true
			g := p.GridPos
			if g.X < 0 || g.W <= 0 || g.H <= 0 || g.X+g.W > 24 {
				t.Errorf("%s: panel %q off the grid: %+v", d.UID, p.Title, g)
			}
			for x := g.X; x < g.X+g.W; x++ {
				for y := g.Y; y < g.Y+g.H; y++ {
					if o, ok := used[cell{x, y}]; ok {
						t.Errorf("%s: panel %q overlaps panel %d", d.UID, p.Title, o)
						x, y = g.X+g.W, g.Y+g.H
					}
					used[cell{x, y}] = p.ID
				}
			}
			if p.Datasource == nil || (p.Datasource.UID != "${mimir}" && p.Datasource.UID != "${loki}") {
				t.Errorf("%s: panel %q is not on the mimir or loki variable", d.UID, p.Title)
			}
			for _, tg := range p.Targets {
				if tg.Datasource == nil || tg.Datasource.UID != p.Datasource.UID {
					t.Errorf("%s: panel %q: a target on another datasource", d.UID, p.Title)
				}
				for _, m := range varRef.FindAllStringSubmatch(tg.Expr, -1) {
					if !defined[m[1]] && !builtin[m[1]] {
						t.Errorf("%s: panel %q uses $%s, which is not defined", d.UID, p.Title, m[1])
					}
				}
			}
		}
		for _, v := range d.Templating.List {
			if q, ok := v.Query.(string); ok && v.Type == "query" {
				for _, m := range varRef.FindAllStringSubmatch(q, -1) {
					if !defined[m[1]] {
						t.Errorf("%s: variable %s uses $%s, which is not defined", d.UID, v.Name, m[1])
					}
				}
			}
		}
	}
}

// TestPromQLParses: every PromQL expression (panels and variable queries
// aside from label_values), with Grafana's variables substituted, parses
// with Prometheus's own parser: promtool checks them as recording rules.
func TestPromQLParses(t *testing.T) {
	promtool := proxytest.Need(t, "promtool") // Debian's prometheus package
	var rules strings.Builder
	rules.WriteString("groups:\n  - name: dashboards\n    rules:\n")
	n := 0
	for _, d := range All() {
		for _, p := range d.Panels {
			if p.Datasource.UID != "${mimir}" {
				continue
			}
			for _, tg := range p.Targets {
				n++
				expr, _ := json.Marshal(Substitute(tg.Expr, "api.example.com"))
				fmt.Fprintf(&rules, "      - record: dashboard:%s:%d\n        expr: %s\n", strings.ReplaceAll(d.UID, "-", "_"), n, expr)
			}
		}
	}
	f := filepath.Join(t.TempDir(), "exprs.yaml")
	if err := os.WriteFile(f, []byte(rules.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("PromQL of the dashboards does not parse: %v\n%s", err, out)
	}
	t.Logf("%d PromQL expressions parse", n)
}

// TestLogQLParses: every LogQL expression (Loki panels and the lifecycle
// annotation), with Grafana's variables substituted, parses with
// @grafana/lezer-logql, the grammar Grafana's own editor uses (Apache-2.0),
// run with node from tools/logql (scripts/install-test-deps.sh installs it).
func TestLogQLParses(t *testing.T) {
	if err := logql.Available(); err != nil {
		proxytest.SkipOrFail(t, err.Error())
	}
	var exprs []string
	for _, d := range All() {
		for _, e := range d.LogQL() {
			exprs = append(exprs, Substitute(e.Expr, "api.example.com"))
		}
	}
	out, err := logql.Parse(exprs)
	if err != nil {
		t.Fatalf("LogQL of the dashboards does not parse: %v", err)
	}
	t.Logf("%s", out)
}

// TestIncidentMeansEvaluate: the incidents dashboard's MTTD, time to act and
// MTTR panels, evaluated by promtool on histograms as signaltometrics writes
// them: a reason whose incidents all opened on their first failing probe
// has a mean of 0 s and must show 0, not nothing; a reason with no incident
// in the range shows nothing (not NaN); one that began in the range counts
// its first incident.
func TestIncidentMeansEvaluate(t *testing.T) {
	promtool := proxytest.Need(t, "promtool")
	exprs := map[string]string{}
	for _, d := range All() {
		if d.UID != "certpulse-incidents" {
			continue
		}
		for _, p := range d.Panels {
			for _, m := range []string{"time_to_detect", "time_to_act", "time_to_fix"} {
				if len(p.Targets) == 1 && strings.Contains(p.Targets[0].Expr, "certpulse_incident_"+m+"_sum") {
					exprs[m] = Substitute(p.Targets[0].Expr, "")
				}
			}
		}
	}
	if len(exprs) != 3 {
		t.Fatalf("found %d of the 3 mean panels: %v", len(exprs), exprs)
	}
	// Samples every minute for 2h; the panels' range is the last hour
	// (Substitute: $__range = 1h), evaluated at 2h.
	//   expired: an incident 30 minutes before the range (mean 20 s) and
	//     one in it detected at once (0 s): mean 0 in the range.
	//   bad_chain: its first incident in the range, 12 s.
	//   stale: incidents only before the range: nothing.
	series := func(m, reason, auto, sum, count string) string {
		l := fmt.Sprintf(`service_name="pay",certpulse_reason=%q,certpulse_incident_automated=%q`, reason, auto)
		return fmt.Sprintf("      - series: 'certpulse_incident_%s_sum{%s}'\n        values: '%s'\n", m, l, sum) +
			fmt.Sprintf("      - series: 'certpulse_incident_%s_count{%s}'\n        values: '%s'\n", m, l, count)
	}
	var b strings.Builder
	b.WriteString("rule_files: []\nevaluation_interval: 1m\ntests:\n  - interval: 1m\n    input_series:\n")
	for m := range exprs {
		b.WriteString(series(m, "expired", "true", "20x90 20x30", "1x90 2x30"))
		b.WriteString(series(m, "bad_chain", "true", "_x90 12x30", "_x90 1x30"))
		b.WriteString(series(m, "stale", "false", "7x120", "1x120"))
	}
	b.WriteString("    promql_expr_test:\n")
	for m, e := range exprs {
		by := `certpulse_reason="%s",certpulse_incident_automated="true"`
		if m == "time_to_act" {
			by = `certpulse_reason="%s"`
		}
		q, _ := json.Marshal(e)
		fmt.Fprintf(&b, "      - expr: %s\n        eval_time: 2h\n        exp_samples:\n", q)
		fmt.Fprintf(&b, "          - labels: '{%s}'\n            value: 0\n", fmt.Sprintf(by, "expired"))
		fmt.Fprintf(&b, "          - labels: '{%s}'\n            value: 12\n", fmt.Sprintf(by, "bad_chain"))
	}
	f := filepath.Join(t.TempDir(), "means.test.yaml")
	if err := os.WriteFile(f, []byte(b.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command(promtool, "test", "rules", f).CombinedOutput(); err != nil {
		t.Fatalf("incident mean panels on promtool: %v\n%s\n%s", err, out, b.String())
	}
}
