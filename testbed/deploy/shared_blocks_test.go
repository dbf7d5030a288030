package deploy

import (
	"reflect"
	"slices"
	"testing"
)

// TestSharedConfigBlocksAgree: the shipped configs each carry their own copy
// of the incident-metrics connector and of transform/mimir_labels (a
// collector config, a ConfigMap file and the Helm values must each stand
// alone). Every copy equals single-tier.yaml's; the gateway, which has no
// probe metrics, keeps the routing-key statements only (a prefix); every
// config with the correlator feeds the connector.
func TestSharedConfigBlocksAgree(t *testing.T) {
	load := func(p string) map[string]any {
		m := loadYAML(t, p)
		if alt, ok := m["alternateConfig"].(map[string]any); ok {
			return alt // Helm values
		}
		return m
	}
	get := func(m map[string]any, path ...string) any {
		var v any = m
		for _, k := range path {
			mm, _ := v.(map[string]any)
			v = mm[k]
		}
		return v
	}
	if a, b := get(load("distributions/edge/single-tier.yaml"), "connectors", "tlsedge"), get(load("distributions/edge/agent.yaml"), "connectors", "tlsedge"); a == nil || !reflect.DeepEqual(a, b) {
		t.Error("distributions/edge/agent.yaml: connectors.tlsedge differs from edge/single-tier.yaml's (or is missing)")
	}
	// edge/single-tier.yaml restates the correlator pipeline's receivers
	// (a list is replaced, not merged): single-tier.yaml's, plus tlsedge.
	st := get(load("distributions/otelcol-certpulse/single-tier.yaml"), "service", "pipelines", "logs", "receivers").([]any)
	if got := get(load("distributions/edge/single-tier.yaml"), "service", "pipelines", "logs", "receivers"); !reflect.DeepEqual(got, append(slices.Clone(st), "tlsedge")) {
		t.Errorf("distributions/edge/single-tier.yaml: logs receivers %v, want single-tier.yaml's %v plus tlsedge", got, st)
	}
	ref := load("distributions/otelcol-certpulse/single-tier.yaml")
	conn := get(ref, "connectors", "signaltometrics/incidents")
	stmts, _ := get(ref, "processors", "transform/mimir_labels", "metric_statements").([]any)
	if conn == nil || len(stmts) != 1 {
		t.Fatal("single-tier.yaml lacks the connector or transform/mimir_labels")
	}
	refStmts := get(stmts[0].(map[string]any), "statements").([]any)
	for _, p := range []string{
		"distributions/otelcol-certpulse/agent.yaml",
		"distributions/otelcol-certpulse/gateway.yaml",
		"distributions/kubernetes/base/agent.yaml",
		"distributions/kubernetes/overlays/gateway/gateway.yaml",
		"distributions/kubernetes/overlays/gateway/agent-kafka.yaml",
		"distributions/kubernetes/helm/values.yaml",
	} {
		cfg := load(p)
		if get(cfg, "processors", "tlscorrelator") != nil {
			if !reflect.DeepEqual(get(cfg, "connectors", "signaltometrics/incidents"), conn) {
				t.Errorf("%s: connectors.signaltometrics/incidents differs from single-tier.yaml's (or is missing)", p)
			}
		}
		s, _ := get(cfg, "processors", "transform/mimir_labels", "metric_statements").([]any)
		if s == nil {
			continue
		}
		got := get(s[0].(map[string]any), "statements").([]any)
		if len(s) != 1 || len(got) > len(refStmts) || !reflect.DeepEqual(got, refStmts[:len(got)]) {
			t.Errorf("%s: transform/mimir_labels is not single-tier.yaml's (or its leading statements)", p)
		}
	}
}
