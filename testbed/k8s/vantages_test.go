package k8s

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// TestVantagesFromAgentPods runs three agents (the built distribution, as
// the base's ServiceAccount) whose certpulse_vantages extension reads the
// agent pods from the real API server: each of 20 targets is probed by
// k = 2 of them. When an agent's process is killed and its pod turns
// NotReady (what its kubelet would report; no kubelet runs here), the other
// two take its targets within the refresh and one interval; when it comes
// back and its pod is Ready, it takes them back.
func TestVantagesFromAgentPods(t *testing.T) {
	c := getCluster(t)
	bin := need(t, "CERTPULSE_BIN", "the built distribution")
	applyServerSide(t, c, "single-tier", kustomize(t, c, "single-tier"))
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	healthy, _ := lab.Endpoint("healthy")
	dir := t.TempDir()
	roots := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(roots, faultlab.PEM(lab.Root.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	var targets strings.Builder
	targets.WriteString("targets:\n")
	const n = 20
	for i := 0; i < n; i++ {
		fmt.Fprintf(&targets, "  - {endpoint: %q, server_name: t%02d.%s, ca_file: %q}\n", healthy.Address, i, healthy.ServerName, roots)
	}
	if err := os.WriteFile(filepath.Join(dir, "targets.yaml"), []byte(targets.String()), 0o600); err != nil {
		t.Fatal(err)
	}

	// The agents' pods (and their nodes), as the DaemonSet would have them.
	nodes := []string{"vt-node-a", "vt-node-b", "vt-node-c"}
	var objs strings.Builder
	objs.WriteString("apiVersion: v1\nkind: Namespace\nmetadata: {name: vantages}\n")
	for _, node := range nodes {
		// Tainted: the DaemonSets of other tests place no pods here.
		fmt.Fprintf(&objs, "---\napiVersion: v1\nkind: Node\nmetadata: {name: %s}\nspec: {taints: [{key: certpulse.dev/vantage-test, value: \"true\", effect: NoSchedule}]}\n", node)
		fmt.Fprintf(&objs, `---
apiVersion: v1
kind: Pod
metadata: {name: agent-%s, namespace: vantages, labels: {certpulse.dev/vantage-test: "true"}}
spec:
  nodeName: %s
  tolerations: [{key: certpulse.dev/vantage-test, operator: Exists}]
  containers: [{name: agent, image: otelcol-certpulse:test}]
`, node, node)
	}
	applyServerSide(t, c, "vantages", []byte(objs.String()))
	t.Cleanup(func() {
		_, _ = c.run(context.Background(), "delete", "namespace", "vantages", "--wait=false")
		_, _ = c.run(context.Background(), append([]string{"delete", "node", "--wait=false"}, nodes...)...)
	})
	setReady := func(node string, ready bool) {
		status := "True"
		if !ready {
			status = "False"
		}
		p, _ := json.Marshal(map[string]any{"status": map[string]any{"phase": "Running", "conditions": []map[string]string{{"type": "Ready", "status": status}}}})
		c.kubectlT(t, "patch", "pod", "agent-"+node, "-n", "vantages", "--subresource=status", "--type=merge", "-p", string(p))
	}
	for _, node := range nodes {
		setReady(node, true)
	}

	kc := saKubeconfig(t, c, "certpulse", "otelcol-certpulse")
	sinks := map[string]*tb.LogSink{}
	start := func(node string) func() {
		sink := tb.NewLogSink()
		sinks[node] = sink
		hs := httptest.NewServer(sink)
		t.Cleanup(hs.Close)
		cfg := fmt.Sprintf(`
extensions:
  certpulse_vantages:
    self: ${env:NODE_NAME}
    count: 2
    kubernetes: {auth_type: kubeConfig, namespace: vantages, label_selector: certpulse.dev/vantage-test=true, refresh_interval: 1s}
receivers:
  tlsprobe:
    collection_interval: 2s
    timeout: 1500ms
    ocsp: {timeout: 500ms}
    vantage: ${env:NODE_NAME}
    vantages: certpulse_vantages
    targets_file: %s
exporters:
  otlphttp: {endpoint: %s/agent}
service:
  extensions: [certpulse_vantages]
  telemetry: {metrics: {level: none}}
  pipelines:
    logs: {receivers: [tlsprobe], exporters: [otlphttp]}
`, filepath.Join(dir, "targets.yaml"), hs.URL)
		p := filepath.Join(dir, node+".yaml")
		if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		cmd := exec.CommandContext(ctx, bin, "--config", p)
		cmd.Env = append(os.Environ(), "KUBECONFIG="+kc, "NODE_NAME="+node)
		tb.Start(t, cmd)
		return cancel
	}
	stops := map[string]func(){}
	for _, node := range nodes {
		stops[node] = start(node)
	}
	// probers: per target, the agents that probed it in the next span.
	probers := func(span time.Duration) map[string]map[string]bool {
		count := func() map[string]map[string]int {
			out := map[string]map[string]int{}
			for node, s := range sinks {
				m := map[string]int{}
				for _, r := range s.All() {
					if r.EventName() == attrs.EventProbeResult {
						m[r.Attr(attrs.ServerAddress)]++
					}
				}
				out[node] = m
			}
			return out
		}
		before := count()
		time.Sleep(span)
		after := count()
		out := map[string]map[string]bool{}
		for node, m := range after {
			for server, k := range m {
				if k > before[node][server] {
					if out[server] == nil {
						out[server] = map[string]bool{}
					}
					out[server][node] = true
				}
			}
		}
		return out
	}
	check := func(what string, want func(ps map[string]bool) string) {
		t.Helper()
		eventually(t, 30*time.Second, func() string {
			got := probers(5 * time.Second)
			if len(got) != n {
				return fmt.Sprintf("%s: %d of %d targets probed", what, len(got), n)
			}
			for server, ps := range got {
				if msg := want(ps); msg != "" {
					return fmt.Sprintf("%s: %s: %s (%v)", what, server, msg, ps)
				}
			}
			return ""
		})
	}
	exactlyTwo := func(ps map[string]bool) string {
		if len(ps) != 2 {
			return fmt.Sprintf("%d vantages", len(ps))
		}
		return ""
	}
	check("three agents", exactlyTwo)
	load := map[string]int{}
	for _, ps := range probers(5 * time.Second) {
		for a := range ps {
			load[a]++
		}
	}
	t.Logf("targets per agent (k=2, %d targets, 3 agents): %v", n, load)

	// Agent a's process dies; its pod turns NotReady.
	stops["vt-node-a"]()
	killed := time.Now()
	setReady("vt-node-a", false)
	check("a gone", func(ps map[string]bool) string {
		if !ps["vt-node-b"] || !ps["vt-node-c"] || ps["vt-node-a"] {
			return "not taken over by b and c"
		}
		return ""
	})
	t.Logf("b and c probe every target %s after a was killed", time.Since(killed).Round(time.Second))

	// a comes back.
	stops["vt-node-a"] = start("vt-node-a")
	setReady("vt-node-a", true)
	check("a back", exactlyTwo)
	back := map[string]int{}
	for _, ps := range probers(5 * time.Second) {
		for a := range ps {
			back[a]++
		}
	}
	if back["vt-node-a"] == 0 {
		t.Errorf("a has no targets back: %v", back)
	}
}
