package certmanagerprocessor // import "github.com/certpulse/certpulse/processor/certmanagerprocessor"

import (
	"errors"
	"fmt"
	"time"

	"go.opentelemetry.io/collector/component"
)

// Config is the certmanager processor's configuration.
type Config struct {
	// Trigger names a certpulse_trigger extension: an issued or renewed
	// certificate makes the probes of its service look at once, as a hook
	// sender's `renewed` does.
	Trigger *component.ID `mapstructure:"trigger"`
	// Environment is deployment.environment.name of the events (the
	// cluster's; cert-manager objects do not say).
	Environment string `mapstructure:"environment"`
	// Cluster is k8s.cluster.name of the events, when set.
	Cluster string `mapstructure:"cluster"`
	// OverdueAfter: a Certificate whose status.renewalTime passed this long
	// ago without a new revision is renewal_overdue (cert-manager retries
	// with backoff; a renewal normally lands within minutes).
	OverdueAfter time.Duration `mapstructure:"overdue_after"`
	// CheckInterval is how often renewal times are checked (watch events
	// come only when an object changes; an overdue renewal changes none).
	CheckInterval time.Duration `mapstructure:"check_interval"`
	// MaxCertificates bounds the Certificates tracked; beyond it a new one
	// is logged and counted (outcome overflow), not tracked.
	MaxCertificates int `mapstructure:"max_certificates"`
	// ServiceAnnotation on a Certificate names the certpulse service it
	// serves; without it, the Ingress that owns it (ingress-shim), else
	// the Certificate's name.
	ServiceAnnotation string `mapstructure:"service_annotation"`

	_ struct{}
}

func createDefaultConfig() *Config {
	return &Config{
		OverdueAfter:      time.Hour,
		CheckInterval:     time.Minute,
		MaxCertificates:   10000,
		ServiceAnnotation: "certpulse.dev/service",
	}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.OverdueAfter < 0 {
		errs = append(errs, fmt.Errorf("overdue_after must not be negative, got %s", cfg.OverdueAfter))
	}
	if cfg.CheckInterval < time.Second {
		errs = append(errs, fmt.Errorf("check_interval must be at least 1s, got %s", cfg.CheckInterval))
	}
	if cfg.MaxCertificates < 1 {
		errs = append(errs, fmt.Errorf("max_certificates must be at least 1, got %d", cfg.MaxCertificates))
	}
	if cfg.ServiceAnnotation == "" {
		errs = append(errs, errors.New("service_annotation must not be empty"))
	}
	return errors.Join(errs...)
}
