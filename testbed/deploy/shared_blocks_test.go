package deploy

import (
	"encoding/json"
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

// TestAuditTopic: every agent that publishes to Kafka publishes the
// remediation audit events again on the audit topic, with the main topic's
// settings and partitioning (kafka/audit equals kafka/logs but for the
// topic; logs/audit runs logs' processors behind the filter), and every
// gateway's audit_trail reads that topic.
func TestAuditTopic(t *testing.T) {
	get := func(m any, path ...string) any {
		for _, k := range path {
			mm, _ := m.(map[string]any)
			m = mm[k]
		}
		return m
	}
	for _, p := range []string{"distributions/otelcol-certpulse/agent.yaml", "distributions/kubernetes/overlays/gateway/agent-kafka.yaml"} {
		cfg := loadYAML(t, p)
		main, audit := get(cfg, "exporters", "kafka/logs"), get(cfg, "exporters", "kafka/audit")
		if main == nil || audit == nil {
			t.Errorf("%s: kafka/logs and kafka/audit exporters expected", p)
			continue
		}
		if topic := get(audit, "logs", "topic"); topic != "certpulse-audit" {
			t.Errorf("%s: kafka/audit publishes to %v, want certpulse-audit", p, topic)
		}
		same := func(m any) any {
			b, _ := json.Marshal(m)
			var c map[string]any
			_ = json.Unmarshal(b, &c)
			delete(c["logs"].(map[string]any), "topic")
			return c
		}
		if !reflect.DeepEqual(same(main), same(audit)) {
			t.Errorf("%s: kafka/audit's settings differ from kafka/logs' (other than the topic)", p)
		}
		procs, _ := get(cfg, "service", "pipelines", "logs", "processors").([]any)
		want := append([]any{procs[0], "filter/remediation_only"}, procs[1:]...)
		ap := get(cfg, "service", "pipelines", "logs/audit")
		if !reflect.DeepEqual(get(ap, "processors"), want) || !reflect.DeepEqual(get(ap, "receivers"), []any{"certlifecycle"}) || !reflect.DeepEqual(get(ap, "exporters"), []any{"kafka/audit"}) {
			t.Errorf("%s: logs/audit is %v, want certlifecycle -> %v -> kafka/audit", p, ap, want)
		}
		if f := get(cfg, "processors", "filter/remediation_only", "logs", "log_record"); !reflect.DeepEqual(f, []any{`log.event_name != "certpulse.lifecycle.remediation"`}) {
			t.Errorf("%s: filter/remediation_only keeps %v", p, f)
		}
	}
	for _, p := range []string{"distributions/otelcol-certpulse/gateway.yaml", "distributions/kubernetes/overlays/gateway/gateway.yaml"} {
		if topic := get(loadYAML(t, p), "exporters", "remediation", "audit_trail", "topic"); topic != "certpulse-audit" {
			t.Errorf("%s: audit_trail reads %v, want certpulse-audit", p, topic)
		}
	}
}
