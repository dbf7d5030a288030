package e2e

import (
	"sort"
	"strings"
	"testing"

	"github.com/prometheus/otlptranslator"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
)

// lokiIndexLabels is Loki's default list of resource attributes that become
// stream labels (distributor.otlp_config, default_resource_attributes_as_index_labels);
// everything else becomes structured metadata.
var lokiIndexLabels = []string{"service.name", "service.namespace", "service.instance.id", "deployment.environment", "deployment.environment.name",
	"cloud.region", "cloud.availability_zone", "k8s.cluster.name", "k8s.namespace.name", "k8s.pod.name", "k8s.container.name", "container.name",
	"k8s.replicaset.name", "k8s.deployment.name", "k8s.statefulset.name", "k8s.daemonset.name", "k8s.cronjob.name", "k8s.job.name"}

// lokiStream computes the stream labels Loki gives a record: its resource
// attributes in the index list, named as Loki names them (dots to
// underscores, the Prometheus OTLP label rules).
func lokiStream(t *testing.T, r logtest.Record) map[string]string {
	namer := otlptranslator.LabelNamer{}
	out := map[string]string{}
	for _, k := range lokiIndexLabels {
		if v, ok := r.Resource.Attributes().Get(k); ok {
			name, err := namer.Build(k)
			if err != nil {
				t.Fatalf("label %s: %v", k, err)
			}
			out[name] = v.AsString()
		}
	}
	return out
}

// checkLokiContract: the records certpulse sends to Loki make few, stable
// streams (service x environment x region at most), nothing per endpoint or
// per certificate is a stream label, and every certpulse.* field is a valid
// structured-metadata name.
func checkLokiContract(t *testing.T, logsPath string) {
	t.Helper()
	recs := logtest.ReadFile(logsPath)
	if len(recs) == 0 {
		t.Fatal("no records to check")
	}
	streams := map[string]bool{}
	services, envs, regions := map[string]bool{}, map[string]bool{}, map[string]bool{}
	perEndpoint := map[string]bool{}
	namer := otlptranslator.LabelNamer{}
	for _, r := range recs {
		labels := lokiStream(t, r)
		for k := range labels {
			switch k {
			case "service_name", "deployment_environment_name", "cloud_region":
			default:
				t.Errorf("stream label %s on a %s record: only service, environment and region may index", k, r.EventName())
			}
		}
		var key []string
		for k, v := range labels {
			key = append(key, k+"="+v)
		}
		sort.Strings(key)
		streams[strings.Join(key, ",")] = true
		services[labels["service_name"]], envs[labels["deployment_environment_name"]], regions[labels["cloud_region"]] = true, true, true
		for _, k := range []string{attrs.ServerAddress, attrs.ChainSHA256, attrs.TLSServerHash, attrs.SPKISHA256, attrs.FilePath, attrs.IncidentID} {
			if v := r.Attr(k); v != "" {
				perEndpoint[v] = true
			}
		}
		for k := range r.Attributes().All() {
			if strings.HasPrefix(k, "certpulse.") {
				if _, err := namer.Build(k); err != nil {
					t.Errorf("attribute %s cannot be structured metadata: %v", k, err)
				}
			}
		}
	}
	if max := len(services) * len(envs) * len(regions); len(streams) > max {
		t.Errorf("%d streams, more than service x environment x region (%d)", len(streams), max)
	}
	for s := range streams {
		for _, kv := range strings.Split(s, ",") {
			if _, v, _ := strings.Cut(kv, "="); perEndpoint[v] {
				t.Errorf("stream %s carries a per-endpoint or per-certificate value", s)
			}
		}
	}
	t.Logf("Loki streams: %d for %d records (%d services, %d environments, %d regions)", len(streams), len(recs), len(services), len(envs), len(regions))
}
