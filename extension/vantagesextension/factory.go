package vantagesextension // import "github.com/certpulse/certpulse/extension/vantagesextension"

import (
	"context"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/extension"

	"github.com/certpulse/certpulse/internal/vantage"
)

// Type is the component type.
var Type = component.MustNewType("certpulse_vantages")

// NewFactory returns the certpulse_vantages extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(Type, func() component.Config { return createDefaultConfig() },
		func(_ context.Context, set extension.Settings, cfg component.Config) (extension.Extension, error) {
			c := cfg.(*Config)
			return &vantagesExtension{cfg: c, set: vantage.NewSet(c.Self, c.Count), logger: set.Logger}, nil
		}, component.StabilityLevelAlpha)
}

// Unmarshal fills the kubernetes and kafka sections' defaults when present.
func (c *Config) Unmarshal(conf *confmap.Conf) error {
	if err := conf.Unmarshal(c); err != nil {
		return err
	}
	if k := c.Kubernetes; k != nil {
		if k.RefreshInterval == 0 {
			k.RefreshInterval = 10 * time.Second
		}
		if k.ZoneLabel == "" {
			k.ZoneLabel = "topology.kubernetes.io/zone"
		}
		if k.AuthType == "" {
			k.AuthType = "serviceAccount"
		}
	}
	if k := c.Kafka; k != nil {
		if k.RefreshInterval == 0 {
			k.RefreshInterval = 10 * time.Second
		}
		if k.ClientID == "" {
			k.ClientID = "certpulse-vantages"
		}
	}
	return nil
}
