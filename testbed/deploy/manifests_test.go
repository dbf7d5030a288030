package deploy

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"

	"github.com/certpulse/certpulse/internal/testkit/proxytest"
)

// rendered is one kustomize overlay, every object strictly decoded.
type rendered struct {
	configMaps   map[string]*corev1.ConfigMap
	daemonSets   []*appsv1.DaemonSet
	statefulSets []*appsv1.StatefulSet
	clusterRoles []*rbacv1.ClusterRole
	bindings     []*rbacv1.ClusterRoleBinding
	services     []*corev1.Service
	policies     []*networkingv1.NetworkPolicy
	accounts     []*corev1.ServiceAccount
	namespaces   []*corev1.Namespace
}

// render runs `kubectl kustomize` (offline) on dir and decodes every object
// with sigs.k8s.io/yaml's strict mode into its k8s.io/api type: an unknown
// field or a wrong type fails.
func render(t *testing.T, dir string) rendered {
	t.Helper()
	kubectl := proxytest.Need(t, "kubectl")
	out, err := exec.Command(kubectl, "kustomize", dir).CombinedOutput()
	if err != nil {
		t.Fatalf("kubectl kustomize %s: %v\n%s", dir, err, out)
	}
	r := rendered{configMaps: map[string]*corev1.ConfigMap{}}
	for _, doc := range bytes.Split(out, []byte("\n---\n")) {
		if len(bytes.TrimSpace(doc)) == 0 {
			continue
		}
		var tm struct{ APIVersion, Kind string }
		if err := yaml.Unmarshal(doc, &tm); err != nil {
			t.Fatalf("%s: %v", dir, err)
		}
		switch tm.APIVersion + "/" + tm.Kind {
		case "v1/ConfigMap":
			cm := decode[corev1.ConfigMap](t, dir, doc)
			r.configMaps[cm.Name] = cm
		case "apps/v1/DaemonSet":
			r.daemonSets = append(r.daemonSets, decode[appsv1.DaemonSet](t, dir, doc))
		case "apps/v1/StatefulSet":
			r.statefulSets = append(r.statefulSets, decode[appsv1.StatefulSet](t, dir, doc))
		case "rbac.authorization.k8s.io/v1/ClusterRole":
			r.clusterRoles = append(r.clusterRoles, decode[rbacv1.ClusterRole](t, dir, doc))
		case "rbac.authorization.k8s.io/v1/ClusterRoleBinding":
			r.bindings = append(r.bindings, decode[rbacv1.ClusterRoleBinding](t, dir, doc))
		case "v1/Service":
			r.services = append(r.services, decode[corev1.Service](t, dir, doc))
		case "networking.k8s.io/v1/NetworkPolicy":
			r.policies = append(r.policies, decode[networkingv1.NetworkPolicy](t, dir, doc))
		case "v1/ServiceAccount":
			r.accounts = append(r.accounts, decode[corev1.ServiceAccount](t, dir, doc))
		case "v1/Namespace":
			r.namespaces = append(r.namespaces, decode[corev1.Namespace](t, dir, doc))
		default:
			t.Errorf("%s: unexpected object %s/%s (a Secret must never be rendered: reference it)", dir, tm.APIVersion, tm.Kind)
		}
	}
	return r
}

// decode decodes one object strictly: an unknown field or a wrong type fails.
func decode[T any](t *testing.T, dir string, doc []byte) *T {
	t.Helper()
	o := new(T)
	if err := yaml.UnmarshalStrict(doc, o); err != nil {
		t.Errorf("%s: %T does not decode strictly: %v", dir, o, err)
	}
	return o
}

// workload is a pod template with its name and kind.
type workload struct {
	name   string
	labels map[string]string
	spec   corev1.PodSpec
	claims []string // volumeClaimTemplates
}

func (r rendered) workloads() []workload {
	var out []workload
	for _, d := range r.daemonSets {
		out = append(out, workload{name: "DaemonSet/" + d.Name, labels: d.Spec.Template.Labels, spec: d.Spec.Template.Spec})
	}
	for _, s := range r.statefulSets {
		w := workload{name: "StatefulSet/" + s.Name, labels: s.Spec.Template.Labels, spec: s.Spec.Template.Spec}
		for _, c := range s.Spec.VolumeClaimTemplates {
			w.claims = append(w.claims, c.Name)
		}
		out = append(out, w)
	}
	return out
}

func TestKubernetesOverlays(t *testing.T) {
	bin := need(t, "CERTPULSE_BIN", "the manifests' collector configs are checked with the built binary's validate")
	image := need(t, "CERTPULSE_IMAGE", "the manifests must reference the image `make image` builds")
	for _, overlay := range []string{"single-tier", "gateway"} {
		t.Run(overlay, func(t *testing.T) {
			r := render(t, filepath.Join(repo(t), "distributions/kubernetes/overlays", overlay))
			ws := r.workloads()
			wantKinds := map[string]int{"single-tier": 1, "gateway": 2}
			if len(ws) != wantKinds[overlay] {
				t.Fatalf("%d workloads, want %d", len(ws), wantKinds[overlay])
			}
			for _, w := range ws {
				checkWorkload(t, r, w, bin, image)
			}
			checkRBAC(t, r)
			checkServices(t, r, ws)
		})
	}
}

// checkWorkload checks one pod template against its collector config.
func checkWorkload(t *testing.T, r rendered, w workload, bin, image string) {
	t.Helper()
	spec := w.spec
	if sc := spec.SecurityContext; sc == nil || sc.SeccompProfile == nil || sc.SeccompProfile.Type != corev1.SeccompProfileTypeRuntimeDefault {
		t.Errorf("%s: pod seccompProfile must be RuntimeDefault", w.name)
	}
	podNonRoot := spec.SecurityContext != nil && spec.SecurityContext.RunAsNonRoot != nil && *spec.SecurityContext.RunAsNonRoot
	for _, c := range append(slices.Clone(spec.InitContainers), spec.Containers...) {
		sc := c.SecurityContext
		if sc == nil {
			t.Errorf("%s/%s: no securityContext", w.name, c.Name)
			continue
		}
		if sc.Privileged != nil && *sc.Privileged {
			t.Errorf("%s/%s: privileged", w.name, c.Name)
		}
		if sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation {
			t.Errorf("%s/%s: allowPrivilegeEscalation must be false", w.name, c.Name)
		}
		if sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
			t.Errorf("%s/%s: readOnlyRootFilesystem must be true", w.name, c.Name)
		}
		if sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
			t.Errorf("%s/%s: capabilities must drop ALL", w.name, c.Name)
		}
		for _, res := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
			if q, ok := c.Resources.Requests[res]; !ok || q.IsZero() {
				t.Errorf("%s/%s: no %s request", w.name, c.Name, res)
			}
			if q, ok := c.Resources.Limits[res]; !ok || q.IsZero() {
				t.Errorf("%s/%s: no %s limit", w.name, c.Name, res)
			}
		}
	}
	// Init containers may run as root only to chown the state directory.
	for _, c := range spec.InitContainers {
		if add := c.SecurityContext.Capabilities.Add; len(add) > 1 || (len(add) == 1 && add[0] != "CHOWN") {
			t.Errorf("%s/%s: adds capabilities %v (CHOWN at most)", w.name, c.Name, add)
		}
	}
	if len(spec.Containers) != 1 {
		t.Fatalf("%s: %d containers, want the collector alone", w.name, len(spec.Containers))
	}
	c := spec.Containers[0]
	nonRoot := podNonRoot
	if c.SecurityContext.RunAsNonRoot != nil {
		nonRoot = *c.SecurityContext.RunAsNonRoot
	}
	if !nonRoot {
		t.Errorf("%s: the collector must run as non-root", w.name)
	}
	if c.Image != image {
		t.Errorf("%s: image %q, want %q (what `make image` builds)", w.name, c.Image, image)
	}
	// The config the container reads, through its volume mount.
	if len(c.Args) != 2 || c.Args[0] != "--config" {
		t.Fatalf("%s: args %v, want --config <path>", w.name, c.Args)
	}
	files := mountedFiles(t, r, w, c)
	config, ok := files[c.Args[1]]
	if !ok {
		t.Fatalf("%s: %s is not in a mounted ConfigMap", w.name, c.Args[1])
	}
	env := containerEnv(t, r, w, c)
	if err := validate(t, bin, config, env); err != nil {
		t.Errorf("%s: the mounted config does not validate: %v", w.name, err)
	}
	var cfg map[string]any
	if err := yaml.Unmarshal([]byte(config), &cfg); err != nil {
		t.Fatal(err)
	}
	// Liveness and readiness probe the health_check port.
	hc := expandEnv(fmt.Sprint(dig(cfg, "extensions", "health_check", "endpoint")), env)
	_, hcPort, err := net.SplitHostPort(hc)
	if err != nil {
		t.Fatalf("%s: health_check endpoint %v", w.name, hc)
	}
	for name, p := range map[string]*corev1.Probe{"liveness": c.LivenessProbe, "readiness": c.ReadinessProbe} {
		if p == nil || p.HTTPGet == nil {
			t.Errorf("%s: no HTTP %s probe", w.name, name)
			continue
		}
		if got := containerPort(c, p.HTTPGet.Port.String()); fmt.Sprint(got) != hcPort {
			t.Errorf("%s: %s probe port %s is %d, health_check listens on %s", w.name, name, p.HTTPGet.Port.String(), got, hcPort)
		}
	}
	// Files the config names are mounted: targets file, file_storage.
	if tf := dig(cfg, "receivers", "tlsprobe", "targets_file"); tf != nil {
		if _, ok := files[fmt.Sprint(tf)]; !ok {
			t.Errorf("%s: targets_file %v is not mounted", w.name, tf)
		}
	}
	if dir := dig(cfg, "extensions", "file_storage", "directory"); dir != nil {
		d := expandEnv(fmt.Sprint(dir), env)
		m := mountAt(c, d)
		if m == nil || m.ReadOnly {
			t.Errorf("%s: file_storage directory %s is not a writable mount", w.name, d)
		} else if v := volume(spec, m.Name); v == nil && !slices.Contains(w.claims, m.Name) {
			t.Errorf("%s: volume %s for file_storage not found", w.name, m.Name)
		} else if v != nil && v.HostPath == nil {
			t.Errorf("%s: file_storage on %s must survive pod restarts (hostPath or PVC)", w.name, m.Name)
		}
	}
}

var envRef = regexp.MustCompile(`\$\{env:([A-Z0-9_]+)\}`)

func expandEnv(s string, env map[string]string) string {
	return envRef.ReplaceAllStringFunc(s, func(m string) string { return env[envRef.FindStringSubmatch(m)[1]] })
}

// dig walks nested maps; nil when a key is missing.
func dig(m map[string]any, keys ...string) any {
	var cur any = m
	for _, k := range keys {
		mm, ok := cur.(map[string]any)
		if !ok {
			return nil
		}
		cur = mm[k]
	}
	return cur
}

func containerPort(c corev1.Container, nameOrNumber string) int32 {
	for _, p := range c.Ports {
		if p.Name == nameOrNumber || fmt.Sprint(p.ContainerPort) == nameOrNumber {
			return p.ContainerPort
		}
	}
	return 0
}

func mountAt(c corev1.Container, dir string) *corev1.VolumeMount {
	for i, m := range c.VolumeMounts {
		if m.MountPath == dir {
			return &c.VolumeMounts[i]
		}
	}
	return nil
}

func volume(spec corev1.PodSpec, name string) *corev1.Volume {
	for i, v := range spec.Volumes {
		if v.Name == name {
			return &spec.Volumes[i]
		}
	}
	return nil
}

// mountedFiles maps file paths in the container to ConfigMap contents.
func mountedFiles(t *testing.T, r rendered, w workload, c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, m := range c.VolumeMounts {
		v := volume(w.spec, m.Name)
		if v == nil {
			if !slices.Contains(w.claims, m.Name) {
				t.Errorf("%s: mount %s has no volume", w.name, m.Name)
			}
			continue
		}
		if v.ConfigMap == nil {
			continue
		}
		cm, ok := r.configMaps[v.ConfigMap.Name]
		if !ok {
			t.Errorf("%s: volume %s names ConfigMap %s, which is not rendered", w.name, v.Name, v.ConfigMap.Name)
			continue
		}
		for k, data := range cm.Data {
			out[path.Join(m.MountPath, k)] = data
		}
	}
	return out
}

// containerEnv resolves the container's environment as the kubelet would,
// with stand-in values for the downward API and Secret references (which
// must all name certpulse-secrets: values never live in the manifests).
func containerEnv(t *testing.T, r rendered, w workload, c corev1.Container) map[string]string {
	env := map[string]string{"PATH": os.Getenv("PATH")}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Errorf("%s: envFrom other than a ConfigMap", w.name)
			continue
		}
		cm, ok := r.configMaps[ef.ConfigMapRef.Name]
		if !ok {
			t.Errorf("%s: envFrom ConfigMap %s is not rendered", w.name, ef.ConfigMapRef.Name)
			continue
		}
		for k, v := range cm.Data {
			env[k] = v
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			env[e.Name] = e.Value
		case e.ValueFrom.SecretKeyRef != nil:
			if e.ValueFrom.SecretKeyRef.Name != "certpulse-secrets" {
				t.Errorf("%s: %s references Secret %s; the README documents certpulse-secrets", w.name, e.Name, e.ValueFrom.SecretKeyRef.Name)
			}
			env[e.Name] = "secret-value-0123456789abcdef"
		case e.ValueFrom.FieldRef != nil && e.ValueFrom.FieldRef.FieldPath == "status.podIP":
			env[e.Name] = "127.0.0.1"
		case e.ValueFrom.FieldRef != nil:
			env[e.Name] = "node-1"
		case e.ValueFrom.ResourceFieldRef != nil:
			env[e.Name] = "536870912"
		}
	}
	return env
}

// requiredRules lists the (group, resource) pairs the configured observers,
// k8sobjects receivers and processors read, from the collector configs of the overlay.
func requiredRules(t *testing.T, r rendered) map[string]bool {
	need := map[string]bool{}
	for _, cm := range r.configMaps {
		data, ok := cm.Data["config.yaml"]
		if !ok {
			continue
		}
		var cfg map[string]any
		if err := yaml.Unmarshal([]byte(data), &cfg); err != nil {
			t.Fatal(err)
		}
		for id, v := range asMap(cfg["extensions"]) {
			if strings.Split(id, "/")[0] != "k8s_observer" {
				continue
			}
			o := asMap(v)
			if b, ok := o["observe_pods"].(bool); !ok || b { // default true
				need["/pods"] = true
			}
			for key, res := range map[string]string{"observe_nodes": "/nodes", "observe_services": "/services", "observe_ingresses": "networking.k8s.io/ingresses"} {
				if b, _ := o[key].(bool); b {
					need[res] = true
				}
			}
		}
		for id, v := range asMap(cfg["receivers"]) {
			if strings.Split(id, "/")[0] != "k8sobjects" {
				continue
			}
			objs, _ := asMap(v)["objects"].([]any)
			for _, o := range objs {
				need[fmt.Sprint(asMap(o)["group"])+"/"+fmt.Sprint(asMap(o)["name"])] = true
			}
		}
		for id := range asMap(cfg["processors"]) {
			if strings.Split(id, "/")[0] == "k8sattributes" {
				need["/pods"], need["/namespaces"], need["apps/replicasets"] = true, true, true
			}
		}
	}
	return need
}

func asMap(v any) map[string]any {
	m, _ := v.(map[string]any)
	return m
}

// checkRBAC: the ClusterRole grants get/list/watch on exactly what the
// configs read, and is bound to the workloads' ServiceAccount.
func checkRBAC(t *testing.T, r rendered) {
	t.Helper()
	if len(r.clusterRoles) != 1 || len(r.bindings) != 1 || len(r.accounts) != 1 {
		t.Fatalf("%d ClusterRoles, %d bindings, %d ServiceAccounts; want one each", len(r.clusterRoles), len(r.bindings), len(r.accounts))
	}
	for _, rule := range r.clusterRoles[0].Rules {
		if !slices.Equal(rule.Verbs, []string{"get", "list", "watch"}) {
			t.Errorf("rule %v: verbs %v, want get/list/watch only", rule.Resources, rule.Verbs)
		}
	}
	compareRules(t, "ClusterRole", r.clusterRoles[0].Rules, requiredRules(t, r))
	b, sa := r.bindings[0], r.accounts[0]
	if b.RoleRef.Name != r.clusterRoles[0].Name || len(b.Subjects) != 1 || b.Subjects[0].Name != sa.Name || b.Subjects[0].Namespace != sa.Namespace {
		t.Errorf("ClusterRoleBinding %s does not bind %s to ServiceAccount %s/%s", b.Name, r.clusterRoles[0].Name, sa.Namespace, sa.Name)
	}
	for _, w := range r.workloads() {
		if w.spec.ServiceAccountName != sa.Name {
			t.Errorf("%s runs as ServiceAccount %q, want %q", w.name, w.spec.ServiceAccountName, sa.Name)
		}
	}
}

// compareRules reports what rules lack of need, and what they grant beyond it.
func compareRules(t *testing.T, what string, rules []rbacv1.PolicyRule, need map[string]bool) {
	t.Helper()
	granted := map[string]bool{}
	for _, rule := range rules {
		for _, g := range rule.APIGroups {
			for _, res := range rule.Resources {
				granted[g+"/"+res] = true
			}
		}
	}
	for k := range need {
		if !granted[k] {
			t.Errorf("%s lacks %s (needed by the configured observers/processors)", what, k)
		}
	}
	for k := range granted {
		if !need[k] {
			t.Errorf("%s grants %s, which no configured component reads", what, k)
		}
	}
}

// checkServices: every Service and NetworkPolicy selects a workload and
// names ports its collector container exposes.
func checkServices(t *testing.T, r rendered, ws []workload) {
	t.Helper()
	selects := func(sel map[string]string) *workload {
		for i, w := range ws {
			match := len(sel) > 0
			for k, v := range sel {
				if w.labels[k] != v {
					match = false
				}
			}
			if match {
				return &ws[i]
			}
		}
		return nil
	}
	for _, s := range r.services {
		w := selects(s.Spec.Selector)
		if w == nil {
			t.Errorf("Service %s selects no workload", s.Name)
			continue
		}
		for _, p := range s.Spec.Ports {
			if containerPort(w.spec.Containers[0], p.TargetPort.String()) == 0 {
				t.Errorf("Service %s: targetPort %s is not a port of %s", s.Name, p.TargetPort.String(), w.name)
			}
		}
	}
	for _, np := range r.policies {
		w := selects(np.Spec.PodSelector.MatchLabels)
		if w == nil {
			t.Errorf("NetworkPolicy %s selects no workload", np.Name)
			continue
		}
		for _, in := range np.Spec.Ingress {
			for _, p := range in.Ports {
				if containerPort(w.spec.Containers[0], p.Port.String()) == 0 {
					t.Errorf("NetworkPolicy %s: port %s is not a port of %s", np.Name, p.Port.String(), w.name)
				}
			}
		}
	}
}

// TestGatewayConfigCopy keeps the gateway overlay's config (kustomize reads
// only files under its directory) equal to the distribution's gateway.yaml.
func TestGatewayConfigCopy(t *testing.T) {
	strip := func(p string) string {
		b, err := os.ReadFile(filepath.Join(repo(t), p))
		if err != nil {
			t.Fatal(err)
		}
		s := string(b)
		return s[strings.Index(s, "\nextensions:"):]
	}
	if a, b := strip("distributions/otelcol-certpulse/gateway.yaml"), strip("distributions/kubernetes/overlays/gateway/gateway.yaml"); a != b {
		t.Errorf("distributions/kubernetes/overlays/gateway/gateway.yaml differs from distributions/otelcol-certpulse/gateway.yaml below the header comment")
	}
}
