package vantagesextension

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension/extensiontest"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/certpulse/certpulse/internal/testkit/tb"
	"github.com/certpulse/certpulse/internal/vantage"
)

func TestValidate(t *testing.T) {
	k8s := func() *KubernetesConfig {
		return &KubernetesConfig{AuthType: "serviceAccount", Namespace: "certpulse", LabelSelector: "app=agent", RefreshInterval: 10 * time.Second}
	}
	for _, tc := range []struct {
		name string
		cfg  Config
		err  string
	}{
		{"static", Config{Self: "a", Count: 3, Static: []vantage.Member{{Name: "a"}, {Name: "b"}}}, ""},
		{"kubernetes", Config{Self: "a", Count: 3, Kubernetes: k8s()}, ""},
		{"no self", Config{Count: 3, Static: []vantage.Member{{Name: "a"}}}, "self is required"},
		{"count", Config{Self: "a", Count: 0, Static: []vantage.Member{{Name: "a"}}}, "count must be within 1..16"},
		{"no source", Config{Self: "a", Count: 3}, "a membership source is required"},
		{"two sources", Config{Self: "a", Count: 3, Static: []vantage.Member{{Name: "a"}}, Kubernetes: k8s()}, "exclusive"},
		{"kafka", Config{Self: "a", Count: 3, Kafka: &KafkaConfig{Brokers: []string{"k:9092"}, GroupID: "gw", RefreshInterval: time.Second}}, ""},
		{"kafka group", Config{Self: "a", Count: 3, Kafka: &KafkaConfig{Brokers: []string{"k:9092"}, RefreshInterval: time.Second}}, "brokers and group_id are required"},
		{"kafka and static", Config{Self: "a", Count: 3, Static: []vantage.Member{{Name: "a"}}, Kafka: &KafkaConfig{Brokers: []string{"k:9092"}, GroupID: "gw", RefreshInterval: time.Second}}, "exclusive"},
		{"duplicate member", Config{Self: "a", Count: 3, Static: []vantage.Member{{Name: "a"}, {Name: "a"}}}, "unique"},
		{"auth", Config{Self: "a", Count: 3, Kubernetes: &KubernetesConfig{AuthType: "token", Namespace: "n", LabelSelector: "x=y", RefreshInterval: time.Second}}, "auth_type"},
		{"selector", Config{Self: "a", Count: 3, Kubernetes: &KubernetesConfig{AuthType: "kubeConfig", RefreshInterval: time.Second}}, "label_selector are required"},
	} {
		err := tc.cfg.Validate()
		if tc.err == "" {
			assert.NoError(t, err, tc.name)
		} else if assert.Error(t, err, tc.name) {
			assert.Contains(t, err.Error(), tc.err, tc.name)
		}
	}
}

func TestUnmarshalDefaults(t *testing.T) {
	cfg := createDefaultConfig()
	require.NoError(t, cfg.Unmarshal(confmap.NewFromStringMap(map[string]any{"self": "a", "kubernetes": map[string]any{"namespace": "certpulse", "label_selector": "app=agent"}})))
	assert.Equal(t, 3, cfg.Count)
	assert.Equal(t, &KubernetesConfig{AuthType: "serviceAccount", Namespace: "certpulse", LabelSelector: "app=agent", RefreshInterval: 10 * time.Second, ZoneLabel: "topology.kubernetes.io/zone"}, cfg.Kubernetes)
	assert.NoError(t, cfg.Validate())
}

func TestMembersOf(t *testing.T) {
	pod := func(node string, phase corev1.PodPhase, ready corev1.ConditionStatus, zone string, deleting bool) corev1.Pod {
		p := corev1.Pod{Spec: corev1.PodSpec{NodeName: node}, Status: corev1.PodStatus{Phase: phase, Conditions: []corev1.PodCondition{{Type: corev1.PodReady, Status: ready}}}}
		if zone != "" {
			p.Labels = map[string]string{"topology.kubernetes.io/zone": zone}
		}
		if deleting {
			now := metav1.Now()
			p.DeletionTimestamp = &now
		}
		return p
	}
	got := membersOf([]corev1.Pod{
		pod("n1", corev1.PodRunning, corev1.ConditionTrue, "eu-1a", false),
		pod("n2", corev1.PodRunning, corev1.ConditionFalse, "", false), // not ready
		pod("n3", corev1.PodPending, corev1.ConditionFalse, "", false), // not running
		pod("n4", corev1.PodRunning, corev1.ConditionTrue, "", true),   // being deleted
		pod("", corev1.PodRunning, corev1.ConditionTrue, "", false),    // not scheduled
		pod("n5", corev1.PodRunning, corev1.ConditionTrue, "", false),
	}, "topology.kubernetes.io/zone")
	assert.Equal(t, []vantage.Member{{Name: "n1", Zone: "eu-1a"}, {Name: "n5"}}, got)
}

func TestStaticStart(t *testing.T) {
	f := NewFactory()
	cfg := &Config{Self: "b", Count: 2, Static: []vantage.Member{{Name: "a"}, {Name: "b"}, {Name: "c"}}}
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
	ms, known := ext.(vantage.Provider).Vantages().Members()
	assert.True(t, known)
	assert.Len(t, ms, 3)
}

// TestKafkaGroupMembers: the members of a consumer group on a Kafka
// protocol broker (kfake), named by instance id or client id: a member
// that leaves the group leaves the membership at the next refresh, one
// that joins is added; two that share a name count once.
func TestKafkaGroupMembers(t *testing.T) {
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(tb.FreePort(t)), kfake.SeedTopics(4, "certpulse"), kfake.GroupMinSessionTimeout(time.Second))
	require.NoError(t, err)
	defer cluster.Close()
	brokers := cluster.ListenAddrs()
	join := func(clientID, instanceID string) *kgo.Client {
		opts := []kgo.Opt{kgo.SeedBrokers(brokers...), kgo.ClientID(clientID), kgo.ConsumerGroup("gateways"), kgo.ConsumeTopics("certpulse"),
			kgo.SessionTimeout(time.Second), kgo.HeartbeatInterval(200 * time.Millisecond)}
		if instanceID != "" {
			opts = append(opts, kgo.InstanceID(instanceID))
		}
		cl, err := kgo.NewClient(opts...)
		require.NoError(t, err)
		go func() {
			for ctx := context.Background(); ; {
				if fs := cl.PollFetches(ctx); fs.IsClientClosed() {
					return
				}
			}
		}()
		return cl
	}
	a := join("gw-a", "")
	defer a.Close()
	b := join("otel-collector", "gw-b") // static membership: the instance id names it
	f := NewFactory()
	cfg := &Config{Self: "gw-a", Count: 2, Kafka: &KafkaConfig{Brokers: brokers, GroupID: "gateways", ClientID: "certpulse-vantages", RefreshInterval: time.Second}}
	require.NoError(t, cfg.Validate())
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	defer func() { require.NoError(t, ext.Shutdown(context.Background())) }()
	set := ext.(vantage.Provider).Vantages()
	names := func() []string {
		ms, known := set.Members()
		if !known {
			return nil
		}
		var out []string
		for _, m := range ms {
			out = append(out, m.Name)
		}
		return out
	}
	assert.Eventually(t, func() bool { return assert.ObjectsAreEqual([]string{"gw-a", "gw-b"}, names()) }, 20*time.Second, 100*time.Millisecond, "members %v", names())
	b.Close() // leaves the group
	assert.Eventually(t, func() bool { return assert.ObjectsAreEqual([]string{"gw-a"}, names()) }, 20*time.Second, 100*time.Millisecond, "after gw-b left: %v", names())
	c := join("gw-c", "")
	defer c.Close()
	d := join("gw-c", "") // the same client id: one member
	defer d.Close()
	assert.Eventually(t, func() bool { return assert.ObjectsAreEqual([]string{"gw-a", "gw-c"}, names()) }, 20*time.Second, 100*time.Millisecond, "after gw-c joined twice: %v", names())
}
