package deploy

import (
	"path/filepath"
	"slices"
	"sort"
	"testing"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	psapi "k8s.io/pod-security-admission/api"
	"k8s.io/pod-security-admission/policy"
)

// podSecurityExceptions: what a workload may need beyond the restricted
// level, by the Pod Security check's forbidden reason, and why. Anything
// else a workload fails of restricted fails the test.
var podSecurityExceptions = map[string]map[string]string{
	"DaemonSet/otelcol-certpulse-agent": {
		// The node's certificate files (kubeadm PKI, kubelet serving
		// certificates) and the agent's state directory (persistent queue,
		// correlator and remediation state) live on the node.
		"hostPath volumes":        "node files: certificate files to watch, state that survives the pod",
		"restricted volume types": "the same hostPath volumes, as restricted words it",
		// state-dir-owner: a hostPath directory is created root-owned and
		// fsGroup does not apply to hostPath; one init container chowns it
		// as root with CAP_CHOWN alone.
		"runAsNonRoot != true":      "state-dir-owner chowns the state directory",
		"runAsUser=0":               "state-dir-owner chowns the state directory",
		"unrestricted capabilities": "state-dir-owner adds CHOWN",
	},
}

// TestPodSecurity runs the Pod Security admission policy (the library the
// API server's admission plugin is built on, offline) on every workload of
// every overlay: each passes its namespace's enforce level, and of the
// restricted level fails only what podSecurityExceptions lists for it.
func TestPodSecurity(t *testing.T) {
	eval, err := policy.NewEvaluator(policy.DefaultChecks())
	if err != nil {
		t.Fatal(err)
	}
	for _, overlay := range []string{"single-tier", "gateway"} {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, filepath.Join(repo(t), "distributions/kubernetes/overlays", overlay))
			if len(r.namespaces) != 1 {
				t.Fatalf("%d namespaces rendered, want 1", len(r.namespaces))
			}
			ns := r.namespaces[0]
			level, err := psapi.ParseLevel(ns.Labels[psapi.EnforceLevelLabel])
			if err != nil {
				t.Fatalf("namespace %s: %s: %v", ns.Name, psapi.EnforceLevelLabel, err)
			}
			v := ns.Labels[psapi.EnforceVersionLabel]
			if v == "" {
				v = "latest" // admission's default
			}
			version, err := psapi.ParseVersion(v)
			if err != nil {
				t.Fatalf("namespace %s: %s: %v", ns.Name, psapi.EnforceVersionLabel, err)
			}
			for _, w := range r.workloads() {
				meta := &metav1.ObjectMeta{Labels: w.labels}
				spec := w.spec
				if forbidden := failed(eval.EvaluatePod(psapi.LevelVersion{Level: level, Version: version}, meta, &spec)); len(forbidden) > 0 {
					t.Errorf("%s: admission refuses it at %s (namespace %s): %v", w.name, level, ns.Name, forbidden)
				}
				restricted := psapi.LevelVersion{Level: psapi.LevelRestricted, Version: version}
				for _, reason := range failed(eval.EvaluatePod(restricted, meta, &spec)) {
					if _, ok := podSecurityExceptions[w.name][reason]; !ok {
						t.Errorf("%s: fails restricted on %q, which it has no reason to", w.name, reason)
					}
				}
				// The root exceptions belong to the chown init container
				// alone: without it, only the volumes may fail.
				spec.InitContainers = slices.DeleteFunc(slices.Clone(spec.InitContainers), func(c corev1.Container) bool { return c.Name == "state-dir-owner" })
				for _, reason := range failed(eval.EvaluatePod(restricted, meta, &spec)) {
					if reason != "hostPath volumes" && reason != "restricted volume types" {
						t.Errorf("%s without state-dir-owner: fails restricted on %q", w.name, reason)
					}
				}
			}
		})
	}
}

func failed(results []policy.CheckResult) []string {
	var out []string
	for _, r := range results {
		if !r.Allowed && !slices.Contains(out, r.ForbiddenReason) {
			out = append(out, r.ForbiddenReason)
		}
	}
	sort.Strings(out)
	return out
}
