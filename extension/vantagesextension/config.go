package vantagesextension // import "github.com/certpulse/certpulse/extension/vantagesextension"

import (
	"errors"
	"fmt"
	"time"

	"github.com/certpulse/certpulse/internal/vantage"
)

// Config: this agent's name, k, and where the membership comes from
// (exactly one of Static, Kubernetes and Kafka).
type Config struct {
	// Self is this agent's member name, the tlsprobe receivers' vantage
	// (in Kubernetes: the node name).
	Self string `mapstructure:"self"`
	// Count is k, the vantages per target. Default 3.
	Count int `mapstructure:"count"`
	// Static members (a fixed fleet; an agent that dies keeps its
	// targets until the list changes).
	Static []vantage.Member `mapstructure:"static"`
	// Kubernetes: the agents are the ready pods of the DaemonSet.
	Kubernetes *KubernetesConfig `mapstructure:"kubernetes"`
	// Kafka: the members are a consumer group's (the gateway tier).
	Kafka *KafkaConfig `mapstructure:"kafka"`

	_ struct{}
}

// KubernetesConfig reads the agent pods from the API server.
type KubernetesConfig struct {
	// AuthType: serviceAccount (in cluster) or kubeConfig (KUBECONFIG or
	// ~/.kube/config).
	AuthType string `mapstructure:"auth_type"`
	// Namespace and LabelSelector select the agent pods.
	Namespace     string `mapstructure:"namespace"`
	LabelSelector string `mapstructure:"label_selector"`
	// RefreshInterval: how often the pods are listed. Default 10s.
	RefreshInterval time.Duration `mapstructure:"refresh_interval"`
	// ZoneLabel: the pod label naming its zone (set by the
	// PodTopologyLabels admission or the DaemonSet). Default
	// topology.kubernetes.io/zone.
	ZoneLabel string `mapstructure:"zone_label"`
}

const maxCount = 16

func createDefaultConfig() *Config { return &Config{Count: 3} }

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Self == "" {
		errs = append(errs, errors.New("self is required (this agent's vantage name, e.g. ${env:NODE_NAME})"))
	}
	if c.Count < 1 || c.Count > maxCount {
		errs = append(errs, fmt.Errorf("count must be within 1..%d, got %d", maxCount, c.Count))
	}
	sources := 0
	for _, set := range []bool{len(c.Static) > 0, c.Kubernetes != nil, c.Kafka != nil} {
		if set {
			sources++
		}
	}
	switch {
	case sources > 1:
		errs = append(errs, errors.New("static, kubernetes and kafka are exclusive: one membership source"))
	case sources == 0:
		errs = append(errs, errors.New("a membership source is required: static, kubernetes or kafka"))
	}
	seen := map[string]bool{}
	for i, m := range c.Static {
		if m.Name == "" || seen[m.Name] {
			errs = append(errs, fmt.Errorf("static[%d]: names must be present and unique (got %q)", i, m.Name))
		}
		seen[m.Name] = true
	}
	if k := c.Kubernetes; k != nil {
		if k.AuthType != "serviceAccount" && k.AuthType != "kubeConfig" {
			errs = append(errs, fmt.Errorf("kubernetes::auth_type must be serviceAccount or kubeConfig, got %q", k.AuthType))
		}
		if k.Namespace == "" || k.LabelSelector == "" {
			errs = append(errs, errors.New("kubernetes: namespace and label_selector are required (the agent DaemonSet's pods)"))
		}
		if k.RefreshInterval < time.Second {
			errs = append(errs, fmt.Errorf("kubernetes::refresh_interval must be at least 1s, got %s", k.RefreshInterval))
		}
	}
	if k := c.Kafka; k != nil {
		if len(k.Brokers) == 0 || k.GroupID == "" {
			errs = append(errs, errors.New("kafka: brokers and group_id are required (the gateways' consumer group)"))
		}
		if k.RefreshInterval < time.Second {
			errs = append(errs, fmt.Errorf("kafka::refresh_interval must be at least 1s, got %s", k.RefreshInterval))
		}
	}
	return errors.Join(errs...)
}
