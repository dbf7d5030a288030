package k8s

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
)

// access is one question to the real authorizer: may the ServiceAccount do
// verb on resource (across all namespaces unless namespace is set)?
type access struct {
	verb, resource, namespace string
	why                       string
}

// agentNeeds is what the agent's components read, from the shipped agent
// config: k8s_observer watches services and ingresses (observe_services,
// observe_ingresses; observe_pods for pods), k8sattributes reads pods,
// namespaces and replicasets, k8sobjects/certmanager cert-manager's
// certificates and certificaterequests and events.
var agentNeeds = []access{
	{verb: "list", resource: "services", why: "k8s_observer observe_services"},
	{verb: "watch", resource: "services", why: "k8s_observer observe_services"},
	{verb: "list", resource: "ingresses.networking.k8s.io", why: "k8s_observer observe_ingresses"},
	{verb: "watch", resource: "ingresses.networking.k8s.io", why: "k8s_observer observe_ingresses"},
	{verb: "list", resource: "pods", why: "k8s_observer observe_pods, k8sattributes, certpulse_vantages (the agent pods)"},
	{verb: "watch", resource: "pods", why: "k8s_observer observe_pods, k8sattributes"},
	{verb: "get", resource: "pods", namespace: "default", why: "k8sattributes"},
	{verb: "list", resource: "namespaces", why: "k8sattributes namespace labels"},
	{verb: "watch", resource: "namespaces", why: "k8sattributes namespace labels"},
	{verb: "list", resource: "replicasets.apps", why: "k8sattributes deployment name"},
	{verb: "watch", resource: "replicasets.apps", why: "k8sattributes deployment name"},
	{verb: "list", resource: "certificates.cert-manager.io", why: "k8sobjects/certmanager"},
	{verb: "watch", resource: "certificates.cert-manager.io", why: "k8sobjects/certmanager"},
	{verb: "list", resource: "certificaterequests.cert-manager.io", why: "k8sobjects/certmanager (the signed leaf)"},
	{verb: "watch", resource: "certificaterequests.cert-manager.io", why: "k8sobjects/certmanager (the signed leaf)"},
	{verb: "list", resource: "events", why: "k8sobjects/certmanager (Events about Certificates)"},
	{verb: "watch", resource: "events", why: "k8sobjects/certmanager (Events about Certificates)"},
}

// agentMustNot is what the agent has no reason to do: read secrets (its
// own come as mounted files and env), write anything, read what it does
// not use.
var agentMustNot = []access{
	{verb: "get", resource: "secrets", namespace: "certpulse", why: "its secrets are mounted, not read from the API"},
	{verb: "list", resource: "secrets", why: "no secret is the agent's business"},
	{verb: "list", resource: "configmaps", why: "its config is mounted"},
	{verb: "create", resource: "pods", namespace: "certpulse", why: "read-only"},
	{verb: "delete", resource: "services", namespace: "default", why: "read-only"},
	{verb: "patch", resource: "ingresses.networking.k8s.io", namespace: "default", why: "read-only"},
	{verb: "update", resource: "namespaces", why: "read-only"},
	{verb: "create", resource: "serviceaccounts/token", namespace: "certpulse", why: "no token minting"},
	{verb: "list", resource: "nodes", why: "observe_nodes is off in the shipped config"},
	{verb: "create", resource: "clusterrolebindings.rbac.authorization.k8s.io", why: "no escalation"},
	{verb: "list", resource: "orders.acme.cert-manager.io", why: "not read: Certificates and CertificateRequests say what happened"},
	{verb: "patch", resource: "certificates.cert-manager.io", namespace: "default", why: "read-only"},
	{verb: "create", resource: "events", namespace: "default", why: "read-only"},
}

// canI asks the real authorizer (SelfSubjectAccessReview) as kubeconfig's
// identity.
func canI(t *testing.T, c *cluster, kubeconfig string, a access) bool {
	t.Helper()
	args := []string{"auth", "can-i", a.verb, a.resource}
	if a.namespace != "" {
		args = append(args, "-n", a.namespace)
	} else {
		args = append(args, "--all-namespaces")
	}
	out, err := c.runAs(context.Background(), kubeconfig, args...)
	answer := strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	switch answer {
	case "yes":
		return true
	case "no":
		return false
	}
	t.Fatalf("can-i %v: %q %v", a, out, err)
	return false
}

// saKubeconfig is a kubeconfig with a fresh token of namespace/name.
func saKubeconfig(t *testing.T, c *cluster, namespace, name string) string {
	t.Helper()
	token := strings.TrimSpace(c.kubectlT(t, "create", "token", name, "-n", namespace, "--duration=15m"))
	p := filepath.Join(t.TempDir(), name+".kubeconfig")
	if err := c.writeKubeconfig(p, token); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestRBAC asks the real authorizer, as the agent's ServiceAccount with a
// token the API server issued, everything the agent needs (allowed) and
// what it must not do (refused), for the kustomize base and the chart.
func TestRBAC(t *testing.T) {
	c := getCluster(t)
	applyServerSide(t, c, "single-tier", kustomize(t, c, "single-tier"))
	accounts := []struct{ namespace, name string }{{"certpulse", "otelcol-certpulse"}}
	if _, ok := lookupEnv("CERTPULSE_HELM"); ok {
		ns := "certpulse-helm-rbac"
		applyServerSide(t, c, "namespace", []byte("apiVersion: v1\nkind: Namespace\nmetadata: {name: "+ns+"}\n"))
		applyServerSide(t, c, "helm chart", helmTemplate(t, ns), "-n", ns)
		sa := strings.TrimSpace(c.kubectlT(t, "get", "daemonset", "-n", ns, "-o", "jsonpath={.items[0].spec.template.spec.serviceAccountName}"))
		accounts = append(accounts, struct{ namespace, name string }{ns, sa})
	}
	for _, sa := range accounts {
		t.Run(sa.namespace+"/"+sa.name, func(t *testing.T) {
			kc := saKubeconfig(t, c, sa.namespace, sa.name)
			for _, a := range agentNeeds {
				if !canI(t, c, kc, a) {
					t.Errorf("refused %s %s (namespace %q): needed by %s", a.verb, a.resource, a.namespace, a.why)
				}
			}
			for _, a := range agentMustNot {
				if a.namespace == "certpulse" {
					a.namespace = sa.namespace
				}
				if canI(t, c, kc, a) {
					t.Errorf("allowed %s %s (namespace %q): %s", a.verb, a.resource, a.namespace, a.why)
				}
			}
		})
	}
}
