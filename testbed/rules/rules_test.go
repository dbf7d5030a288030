// Package rules checks the shipped Prometheus/Mimir ruler rules with
// promtool: syntax, and unit tests of every expiry tier and alert.
package rules

import (
	"os"
	"os/exec"
	"testing"
)

const dir = "../../distributions/prometheus"

func promtool(t *testing.T) string {
	p, err := exec.LookPath("promtool")
	if err != nil {
		msg := "promtool not installed (Debian's prometheus package; scripts/install-test-deps.sh installs it)"
		if os.Getenv("CI") == "true" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	return p
}

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
