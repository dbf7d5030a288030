// Package rules checks the shipped Prometheus/Mimir ruler rules with
// promtool: syntax, and unit tests of every expiry tier and alert.
package rules

import (
	"os"
	"os/exec"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/certpulse/certpulse/internal/dashboards"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/tools/logql"
)

const dir = "../../distributions/prometheus"

// promtool is Debian's prometheus package's.
func promtool(t *testing.T) string { return proxytest.Need(t, "promtool") }

func TestRulesCheck(t *testing.T) {
	out, err := exec.Command(promtool(t), "check", "rules", dir+"/certpulse-rules.yaml").CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check rules: %v\n%s", err, out)
	}
}

func TestRulesUnitTests(t *testing.T) {
	cmd := exec.Command(promtool(t), "test", "rules", "certpulse-rules.test.yaml")
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool test rules: %v\n%s", err, out)
	}
	t.Logf("%s", out)
}

// TestLokiRulesParse: the Loki ruler rules' LogQL parses with
// @grafana/lezer-logql (tools/logql).
func TestLokiRulesParse(t *testing.T) {
	data, err := os.ReadFile("../../distributions/loki/certpulse-rules.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Groups []struct {
			Rules []struct {
				Alert string `yaml:"alert"`
				Expr  string `yaml:"expr"`
			} `yaml:"rules"`
		} `yaml:"groups"`
	}
	if err := yaml.Unmarshal(data, &f); err != nil {
		t.Fatal(err)
	}
	var exprs []string
	for _, g := range f.Groups {
		for _, r := range g.Rules {
			if r.Expr == "" || r.Alert == "" {
				t.Errorf("rule without alert name or expr: %+v", r)
			}
			if err := dashboards.CheckStreamSelectors(r.Expr); err != nil {
				t.Errorf("Loki rule %s: %v", r.Alert, err)
			}
			exprs = append(exprs, r.Expr)
		}
	}
	if err := logql.Available(); err != nil {
		proxytest.SkipOrFail(t, err.Error())
	}
	out, err := logql.Parse(exprs)
	if err != nil {
		t.Fatalf("Loki rules do not parse: %v", err)
	}
	t.Logf("%s", out)
}
