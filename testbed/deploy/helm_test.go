package deploy

import (
	"fmt"
	"os"
	"path"
	"path/filepath"
	"slices"
	"testing"

	corev1 "k8s.io/api/core/v1"
	rbacv1 "k8s.io/api/rbac/v1"
	"sigs.k8s.io/yaml"
)

// chartKeys are the top-level keys of the official opentelemetry-collector
// chart's values.schema.json (chart 0.170.0), which rejects any other.
var chartKeys = []string{"additionalLabels", "affinity", "alternateConfig", "annotations", "apiVersion", "autoscaling", "clusterRole",
	"command", "config", "configMap", "dnsConfig", "dnsPolicy", "enableConfigChecksumAnnotation", "enabled", "extraContainers", "extraEnvs",
	"extraEnvsFrom", "extraManifests", "extraVolumeMounts", "extraVolumes", "fullnameOverride", "global", "hostAliases", "hostNetwork",
	"hostPID", "httproute", "image", "imagePullSecrets", "ingress", "initContainers", "internalTelemetryViaOTLP", "lifecycleHooks",
	"livenessProbe", "mode", "nameOverride", "namespaceOverride", "networkPolicy", "nodeSelector", "podAnnotations", "podDisruptionBudget",
	"podLabels", "podMonitor", "podSecurityContext", "ports", "presets", "priorityClassName", "prometheusRule", "readinessProbe",
	"replicaCount", "resizePolicy", "resources", "revisionHistoryLimit", "rewriteDeprecatedComponentNames", "rollout", "runtimeClassName",
	"schedulerName", "securityContext", "service", "serviceAccount", "serviceMonitor", "shareProcessNamespace", "startupProbe",
	"statefulset", "terminationGracePeriodSeconds", "tolerations", "topologySpreadConstraints", "useGOMEMLIMIT"}

// strictInto re-encodes part of the values and decodes it strictly into a
// Kubernetes type.
func strictInto(t *testing.T, what string, v any, into any) {
	t.Helper()
	b, err := yaml.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.UnmarshalStrict(b, into); err != nil {
		t.Errorf("values %s does not decode strictly: %v", what, err)
	}
}

// TestHelmValues checks distributions/kubernetes/helm/values.yaml for the
// official chart (which cannot be fetched here): keys the chart's schema
// knows, the image and command `make image` produces, strictly typed pod
// fields, RBAC for k8s_observer (the kubernetesAttributes preset adds
// k8sattributes' own), and a collector config the built binary validates.
func TestHelmValues(t *testing.T) {
	bin := need(t, "CERTPULSE_BIN", "the chart's collector config is checked with the built binary's validate")
	image := need(t, "CERTPULSE_IMAGE", "the values must reference the image `make image` builds")
	b, err := os.ReadFile(filepath.Join(repo(t), "distributions/kubernetes/helm/values.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]any
	if err := yaml.UnmarshalStrict(b, &v); err != nil {
		t.Fatal(err)
	}
	for k := range v {
		if !slices.Contains(chartKeys, k) {
			t.Errorf("values key %q is not in the chart's schema", k)
		}
	}
	if v["mode"] != "daemonset" {
		t.Errorf("mode %v, want daemonset", v["mode"])
	}
	if got := fmt.Sprintf("%v:%v", dig(v, "image", "repository"), dig(v, "image", "tag")); got != image {
		t.Errorf("image %s, want %s", got, image)
	}
	if dig(v, "command", "name") != "otelcol-certpulse" {
		t.Errorf("command.name %v: the image's binary is /otelcol-certpulse", dig(v, "command", "name"))
	}
	if v["rewriteDeprecatedComponentNames"] != false {
		t.Errorf("rewriteDeprecatedComponentNames must be false (contrib v0.145.0 names the processor k8sattributes)")
	}
	if dig(v, "presets", "kubernetesAttributes", "enabled") != true {
		t.Errorf("presets.kubernetesAttributes.enabled must be true")
	}
	var (
		inits  []corev1.Container
		vols   []corev1.Volume
		mounts []corev1.VolumeMount
		envs   []corev1.EnvVar
		rules  []rbacv1.PolicyRule
		cms    []corev1.ConfigMap
		podSC  corev1.PodSecurityContext
		sc     corev1.SecurityContext
		res    corev1.ResourceRequirements
	)
	strictInto(t, "initContainers", v["initContainers"], &inits)
	strictInto(t, "extraVolumes", v["extraVolumes"], &vols)
	strictInto(t, "extraVolumeMounts", v["extraVolumeMounts"], &mounts)
	strictInto(t, "extraEnvs", v["extraEnvs"], &envs)
	strictInto(t, "clusterRole.rules", dig(v, "clusterRole", "rules"), &rules)
	strictInto(t, "extraManifests", v["extraManifests"], &cms)
	strictInto(t, "podSecurityContext", v["podSecurityContext"], &podSC)
	strictInto(t, "securityContext", v["securityContext"], &sc)
	strictInto(t, "resources", v["resources"], &res)
	if podSC.RunAsNonRoot == nil || !*podSC.RunAsNonRoot || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem ||
		sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || sc.Capabilities == nil || !slices.Contains(sc.Capabilities.Drop, "ALL") {
		t.Errorf("the collector must run non-root, read-only, without privilege escalation or capabilities")
	}
	if len(res.Limits) < 2 || len(res.Requests) < 2 {
		t.Errorf("resources: set cpu and memory requests and limits")
	}
	volByName := map[string]corev1.Volume{}
	for _, vol := range vols {
		volByName[vol.Name] = vol
	}
	for _, c := range inits {
		for _, m := range c.VolumeMounts {
			if _, ok := volByName[m.Name]; !ok {
				t.Errorf("init container %s mounts unknown volume %s", c.Name, m.Name)
			}
		}
	}
	files := map[string]string{}
	mountOf := map[string]corev1.VolumeMount{}
	for _, m := range mounts {
		vol, ok := volByName[m.Name]
		if !ok {
			t.Errorf("extraVolumeMounts: unknown volume %s", m.Name)
			continue
		}
		mountOf[m.MountPath] = m
		if vol.ConfigMap != nil {
			for _, cm := range cms {
				if cm.Name == vol.ConfigMap.Name {
					for k, d := range cm.Data {
						files[path.Join(m.MountPath, k)] = d
					}
				}
			}
		}
	}

	// The collector config: validates, names only mounted files.
	cfg, _ := v["alternateConfig"].(map[string]any)
	raw, err := yaml.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"MY_POD_IP": "127.0.0.1", "OTEL_K8S_NODE_NAME": "node-1", "OTEL_K8S_NAMESPACE": "certpulse"}
	for _, e := range envs {
		env[e.Name] = e.Value
		if e.ValueFrom != nil {
			env[e.Name] = "secret-value-0123456789abcdef"
		}
	}
	if err := validate(t, bin, string(raw), env); err != nil {
		t.Errorf("alternateConfig does not validate: %v", err)
	}
	if tf := dig(cfg, "receivers", "tlsprobe", "targets_file"); tf != nil {
		if _, ok := files[fmt.Sprint(tf)]; !ok {
			t.Errorf("targets_file %v is not provided by a mounted ConfigMap from extraManifests", tf)
		}
	}
	if dir := dig(cfg, "extensions", "file_storage", "directory"); dir != nil {
		m, ok := mountOf[fmt.Sprint(dir)]
		if !ok || m.ReadOnly || volByName[m.Name].HostPath == nil {
			t.Errorf("file_storage directory %v must be a writable hostPath mount", dir)
		}
	}
	// RBAC: the chart's preset covers k8sattributes; the rules cover the
	// observer exactly.
	need := requiredRules(t, rendered{configMaps: map[string]*corev1.ConfigMap{"values": {Data: map[string]string{"config.yaml": string(raw)}}}})
	compareRules(t, "clusterRole.rules", rules, need)
}
