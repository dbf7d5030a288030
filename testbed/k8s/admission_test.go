package k8s

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// restrictedExceptions: what Pod Security's restricted level may find
// against the agent's pods (the namespace enforces privileged and audits
// restricted), as the real admission plugin words it. testbed/deploy's
// TestPodSecurity says why each is needed; here the real server confirms
// that it finds these and nothing else, and that the gateway finds nothing.
var restrictedExceptions = []string{
	"hostPath volumes", "restricted volume types", // node files and state
	"runAsNonRoot != true", "runAsUser=0", "unrestricted capabilities", // the state-dir-owner init container
}

// applyServerSide applies manifests with server-side apply: the API server
// decodes them strictly (an unknown field or a wrong type fails), runs the
// admission chain, and refuses immutable-field changes to what is stored.
// Any warning (a deprecated API, a Pod Security warn level) fails too.
func applyServerSide(t *testing.T, c *cluster, what string, manifests []byte, extra ...string) {
	t.Helper()
	f := filepath.Join(t.TempDir(), "manifests.yaml")
	if err := os.WriteFile(f, manifests, 0o600); err != nil {
		t.Fatal(err)
	}
	args := append([]string{"apply", "--server-side", "--field-manager=certpulse-test", "--validate=strict", "-f", f}, extra...)
	out, err := c.run(context.Background(), args...)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if strings.Contains(string(out), "Warning:") {
		t.Errorf("%s: the API server warned:\n%s", what, out)
	}
	t.Logf("%s:\n%s", what, out)
}

func kustomize(t *testing.T, c *cluster, overlay string) []byte {
	t.Helper()
	out, err := exec.Command(c.kubectl, "kustomize", filepath.Join(repo(), "distributions/kubernetes/overlays", overlay)).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", overlay, err, out)
	}
	return out
}

// helmTemplate renders the official collector chart with our values.
func helmTemplate(t *testing.T, namespace string) []byte {
	t.Helper()
	helm := need(t, "CERTPULSE_HELM", "helm renders the official collector chart")
	chart := filepath.Join(repo(), "..", "shared", "helm", "opentelemetry-collector-0.170.0.tgz")
	if _, err := os.Stat(chart); err != nil {
		t.Fatalf("the chart: %v", err)
	}
	cmd := exec.Command(helm, "template", "certpulse", chart, "--namespace", namespace, "--kube-version", "v1.34.4",
		"-f", filepath.Join(repo(), "distributions/kubernetes/helm/values.yaml"))
	cmd.Env = append(os.Environ(), "HELM_CACHE_HOME="+t.TempDir(), "HELM_CONFIG_HOME="+t.TempDir(), "HELM_DATA_HOME="+t.TempDir())
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("helm template: %v\n%s", err, out)
	}
	return out
}

// podsOf lists the names of the pods in namespace owned by kind/name.
func podsOf(c *cluster, namespace, kind, name string) ([]string, error) {
	out, err := c.run(context.Background(), "get", "pods", "-n", namespace, "-o", "json")
	if err != nil {
		return nil, err
	}
	var list struct {
		Items []struct {
			Metadata struct {
				Name            string
				OwnerReferences []struct{ Kind, Name string }
			}
		}
	}
	if err := json.Unmarshal(out, &list); err != nil {
		return nil, err
	}
	var pods []string
	for _, p := range list.Items {
		for _, o := range p.Metadata.OwnerReferences {
			if o.Kind == kind && o.Name == name {
				pods = append(pods, p.Metadata.Name)
			}
		}
	}
	return pods, nil
}

// workloadsIn lists namespace's DaemonSets and StatefulSets as kind/name.
func workloadsIn(t *testing.T, c *cluster, namespace string) []string {
	t.Helper()
	out := c.kubectlT(t, "get", "daemonsets,statefulsets,deployments", "-n", namespace, "-o", "jsonpath={range .items[*]}{.kind}/{.metadata.name}{\"\\n\"}{end}")
	var ws []string
	for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
		if l != "" {
			ws = append(ws, l)
		}
	}
	return ws
}

// waitForPods waits until every workload in namespace has a pod: its
// controller created it and the real admission chain (ServiceAccount, Pod
// Security at the namespace's enforce level, ...) admitted it. A refused
// pod shows as the workload's FailedCreate event, which the failure quotes.
func waitForPods(t *testing.T, c *cluster, namespace string) {
	t.Helper()
	ws := workloadsIn(t, c, namespace)
	if len(ws) == 0 {
		t.Fatalf("no workloads in %s", namespace)
	}
	for _, w := range ws {
		kind, name, _ := strings.Cut(w, "/")
		if kind == "Deployment" {
			continue // pods belong to its ReplicaSet
		}
		eventually(t, 60*time.Second, func() string {
			pods, err := podsOf(c, namespace, kind, name)
			if err != nil {
				return err.Error()
			}
			if len(pods) > 0 {
				return ""
			}
			ev, _ := c.run(context.Background(), "get", "events", "-n", namespace, "--field-selector", "involvedObject.name="+name, "-o", "custom-columns=REASON:.reason,MESSAGE:.message")
			return fmt.Sprintf("%s: no pod admitted within 60s; its events:\n%s", w, ev)
		})
	}
}

var violationReason = regexp.MustCompile(`(?:": |\), )([^()]+?) \(`)

// auditViolations reads the API server's audit log: for each pod created in
// namespace, the restricted-level findings Pod Security's audit mode
// recorded.
func auditViolations(t *testing.T, c *cluster, namespace string) map[string][]string {
	t.Helper()
	f, err := os.Open(filepath.Join(c.dir, "audit.log"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	out := map[string][]string{}
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var ev struct {
			Verb      string
			Stage     string
			ObjectRef struct{ Resource, Namespace, Name string }
			// The pod's generated name is only in the response.
			ResponseStatus struct{ Code int }
			Annotations    map[string]string
		}
		if json.Unmarshal(sc.Bytes(), &ev) != nil || ev.Verb != "create" || ev.Stage != "ResponseComplete" ||
			ev.ObjectRef.Resource != "pods" || ev.ObjectRef.Namespace != namespace {
			continue
		}
		key := ev.ObjectRef.Name
		if key == "" {
			key = fmt.Sprintf("pod#%d", len(out))
		}
		v := ev.Annotations["pod-security.kubernetes.io/audit-violations"]
		var reasons []string
		for _, m := range violationReason.FindAllStringSubmatch(v, -1) {
			reasons = append(reasons, m[1])
		}
		out[key] = reasons
	}
	return out
}

// TestAdmission applies both kustomize overlays (single tier, then the
// switch to the gateway tier over it: immutable fields must allow it) and
// the Helm-rendered chart to a real API server, gives the cluster a node so
// the DaemonSet controller creates the agents' pods, and requires every
// workload's pod to be admitted at its namespace's Pod Security level, with
// restricted's audit findings only the documented exceptions.
func TestAdmission(t *testing.T) {
	c := getCluster(t)
	// One node (no kubelet): the DaemonSet controller creates a pod for it.
	applyServerSide(t, c, "node", []byte(`apiVersion: v1
kind: Node
metadata:
  name: lab-node-1
  labels: {kubernetes.io/hostname: lab-node-1, kubernetes.io/os: linux, topology.kubernetes.io/zone: lab-a}
`))
	// Admission (TaintNodesByCondition) taints a new node not-ready until
	// its kubelet reports; there is no kubelet, and no node lifecycle
	// controller to put the taint back.
	c.kubectlT(t, "taint", "node", "lab-node-1", "node.kubernetes.io/not-ready:NoSchedule-")

	applied := []string{"certpulse"}
	for _, overlay := range []string{"single-tier", "gateway"} {
		t.Run(overlay, func(t *testing.T) {
			applyServerSide(t, c, overlay, kustomize(t, c, overlay))
			waitForPods(t, c, "certpulse")
		})
	}
	t.Run("helm", func(t *testing.T) {
		// The chart's install instructions create the namespace; give it
		// the base's Pod Security labels.
		ns := "certpulse-helm"
		applyServerSide(t, c, "namespace", []byte(`apiVersion: v1
kind: Namespace
metadata:
  name: `+ns+`
  labels:
    pod-security.kubernetes.io/enforce: privileged
    pod-security.kubernetes.io/enforce-version: v1.34
    pod-security.kubernetes.io/audit: restricted
    pod-security.kubernetes.io/audit-version: v1.34
`))
		manifests := helmTemplate(t, ns)
		applied = append(applied, ns)
		applyServerSide(t, c, "helm chart", manifests, "-n", ns)
		waitForPods(t, c, ns)
	})

	t.Run("restricted-namespace", func(t *testing.T) { restrictedNamespace(t, c) })

	for _, ns := range applied {
		found := auditViolations(t, c, ns)
		if len(found) == 0 {
			t.Errorf("%s: no pod creations in the audit log", ns)
		}
		for pod, reasons := range found {
			gateway := strings.Contains(pod, "gateway")
			for _, r := range reasons {
				if gateway || !slices.Contains(restrictedExceptions, r) {
					t.Errorf("%s/%s: Pod Security restricted finds %q, not a documented exception", ns, pod, r)
				}
			}
			t.Logf("%s/%s: restricted findings %v", ns, pod, reasons)
		}
	}
}

// restrictedNamespace is the check that the checks above can fail: in a
// namespace that enforces restricted, the real server refuses a pod made
// from the agent's template (its hostPath volumes) and admits the
// gateway's.
func restrictedNamespace(t *testing.T, c *cluster) {
	ns := "certpulse-restricted"
	applyServerSide(t, c, "namespace", []byte(`apiVersion: v1
kind: Namespace
metadata:
  name: `+ns+`
  labels: {pod-security.kubernetes.io/enforce: restricted, pod-security.kubernetes.io/enforce-version: v1.34}
`))
	// The pods' ServiceAccount, so that only Pod Security can refuse them.
	applyServerSide(t, c, "serviceaccount", []byte("apiVersion: v1\nkind: ServiceAccount\nmetadata: {name: otelcol-certpulse, namespace: "+ns+"}\n"))
	for _, w := range []struct {
		kind, name string
		admitted   bool
	}{{"daemonset", "otelcol-certpulse-agent", false}, {"statefulset", "otelcol-certpulse-gateway", true}} {
		var obj struct {
			Spec struct {
				Template struct {
					Metadata map[string]any `json:"metadata"`
					Spec     map[string]any `json:"spec"`
				}
				VolumeClaimTemplates []struct{ Metadata struct{ Name string } }
			}
		}
		if err := json.Unmarshal([]byte(c.kubectlT(t, "get", w.kind, w.name, "-n", "certpulse", "-o", "json")), &obj); err != nil {
			t.Fatal(err)
		}
		meta := obj.Spec.Template.Metadata
		if meta == nil {
			meta = map[string]any{}
		}
		meta["name"], meta["namespace"] = w.name+"-check", ns
		// A StatefulSet's claims become volumes of its pods.
		for _, vc := range obj.Spec.VolumeClaimTemplates {
			vols, _ := obj.Spec.Template.Spec["volumes"].([]any)
			obj.Spec.Template.Spec["volumes"] = append(vols, map[string]any{"name": vc.Metadata.Name,
				"persistentVolumeClaim": map[string]any{"claimName": vc.Metadata.Name + "-" + w.name + "-0"}})
		}
		pod, _ := json.Marshal(map[string]any{"apiVersion": "v1", "kind": "Pod", "metadata": meta, "spec": obj.Spec.Template.Spec})
		f := filepath.Join(t.TempDir(), "pod.json")
		if err := os.WriteFile(f, pod, 0o600); err != nil {
			t.Fatal(err)
		}
		out, err := c.run(context.Background(), "apply", "--server-side", "--dry-run=server", "-f", f)
		switch {
		case w.admitted && err != nil:
			t.Errorf("%s: restricted refuses it: %v", w.name, err)
		case !w.admitted && err == nil:
			t.Errorf("%s: restricted admitted it (%s): the privileged namespace would not be needed", w.name, out)
		case !w.admitted && !strings.Contains(err.Error(), "restricted volume types"):
			t.Errorf("%s: refused, but not for its hostPath volumes: %v", w.name, err)
		}
	}
}
