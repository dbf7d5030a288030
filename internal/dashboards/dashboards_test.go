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
