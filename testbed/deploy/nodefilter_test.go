package deploy

import (
	"testing"
)

// TestAgentK8sAttributesNodeFilter: every agent (DaemonSet) config filters
// k8sattributes to its own node, by an env var its DaemonSet sets: without
// it every agent caches every pod of the cluster.
func TestAgentK8sAttributesNodeFilter(t *testing.T) {
	for _, f := range []string{"distributions/kubernetes/base/agent.yaml", "distributions/kubernetes/overlays/gateway/agent-kafka.yaml"} {
		cfg := loadYAML(t, f)
		if got := dig(cfg, "processors", "k8sattributes", "filter", "node_from_env_var"); got != "NODE_NAME" {
			t.Errorf("%s: k8sattributes filter.node_from_env_var = %v, want NODE_NAME (the DaemonSet's downward API)", f, got)
		}
	}
}
