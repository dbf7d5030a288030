package tlsedgeconnector

import (
	"errors"
	"fmt"
	"time"

	"github.com/certpulse/certpulse/connector/tlsedgeconnector/internal/metadata"
	"github.com/certpulse/certpulse/internal/hostname"
)

// Config is the tlsedge connector's configuration.
type Config struct {
	// Interval: how often the metrics are emitted (cumulative). Default 15s.
	Interval time.Duration `mapstructure:"interval"`
	// WindowInterval: how often each node's window record (handshakes,
	// failures by reason, resumptions) is sent to the correlator, whose
	// step detector (edge.fast) judges it within seconds. Default 2s; a
	// node without handshakes sends none.
	WindowInterval time.Duration `mapstructure:"window_interval"`
	// MaxServerNames bounds the SNI label: the busiest names (re-ranked
	// every interval) keep their own series, the rest count as "other".
	// Default 50.
	MaxServerNames int `mapstructure:"max_server_names"`
	// MaxClientClasses bounds the what-if's client class label (first
	// seen are kept, the rest are "other"). Default 50.
	MaxClientClasses int `mapstructure:"max_client_classes"`
	// MaxSeries bounds the series of each metric (every label combination
	// of tlsedge.handshakes, hello_retries, early_data): beyond it a new
	// handshake combination counts its version, cipher and group as
	// "other", and beyond it plus a tenth its listener and SNI too; a new
	// hello-retry or early-data combination counts listener and SNI (and
	// method) as "other". Default 20000.
	MaxSeries int `mapstructure:"max_series"`
	// SeriesIdle: a series (label combination) that has not moved for
	// this long is no longer emitted and forgotten. Default 1h.
	SeriesIdle time.Duration `mapstructure:"series_idle"`
	// MaxConnections bounds the table that counts a connection once for
	// proxies that log no request number (HAProxy, Caddy): connections
	// idle for ConnectionIdle are forgotten first. Default 100000.
	MaxConnections int `mapstructure:"max_connections"`
	// ConnectionIdle: a connection not seen for this long is forgotten
	// (its next record counts as a new handshake). Default 5m.
	ConnectionIdle time.Duration `mapstructure:"connection_idle"`
	// Services map SNI names and listeners to services (first match wins).
	// Records with neither fall back to their own service.name, then to
	// the SNI (bounded), then to the listener.
	Services []ServiceConfig `mapstructure:"services"`
	// Policies are candidate TLS policies for the what-if.
	Policies []PolicyConfig `mapstructure:"policies"`

	metadata.MetricsBuilderConfig `mapstructure:",squash"`
}

// ServiceConfig names the service behind some server names or listeners.
type ServiceConfig struct {
	Name string `mapstructure:"name"`
	// ServerNames: exact names or "*.example.com" (one label).
	ServerNames []string `mapstructure:"server_names"`
	// Listeners: listen addresses as the proxy logs them (ip:port), for
	// records without SNI (nginx's error log).
	Listeners   []string `mapstructure:"listeners"`
	Environment string   `mapstructure:"environment"`
}

func createDefaultConfig() *Config {
	return &Config{
		Interval:             15 * time.Second,
		WindowInterval:       2 * time.Second,
		MaxServerNames:       50,
		MaxClientClasses:     50,
		MaxSeries:            20000,
		SeriesIdle:           time.Hour,
		MaxConnections:       100000,
		ConnectionIdle:       5 * time.Minute,
		MetricsBuilderConfig: metadata.DefaultMetricsBuilderConfig(),
	}
}

// Validate checks the configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.Interval < time.Second {
		errs = append(errs, fmt.Errorf("interval must be at least 1s, got %s", c.Interval))
	}
	if c.WindowInterval < 100*time.Millisecond || c.WindowInterval > 5*time.Minute {
		errs = append(errs, fmt.Errorf("window_interval must be within 100ms and 5m, got %s", c.WindowInterval))
	}
	for name, v := range map[string]int{"max_server_names": c.MaxServerNames, "max_client_classes": c.MaxClientClasses,
		"max_series": c.MaxSeries, "max_connections": c.MaxConnections} {
		if v < 1 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", name, v))
		}
	}
	if c.SeriesIdle < c.Interval {
		errs = append(errs, fmt.Errorf("series_idle (%s) must be at least interval (%s)", c.SeriesIdle, c.Interval))
	}
	if c.ConnectionIdle <= 0 {
		errs = append(errs, fmt.Errorf("connection_idle must be positive, got %s", c.ConnectionIdle))
	}
	for i, s := range c.Services {
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("services[%d]: name is required", i))
		}
		if len(s.ServerNames) == 0 && len(s.Listeners) == 0 {
			errs = append(errs, fmt.Errorf("services[%d] (%s): needs server_names or listeners", i, s.Name))
		}
	}
	seen := map[string]bool{}
	for i, p := range c.Policies {
		errs = append(errs, p.validate(i, seen)...)
	}
	return errors.Join(errs...)
}

func (p PolicyConfig) validate(i int, seen map[string]bool) []error {
	var errs []error
	at := fmt.Sprintf("policies[%d]", i)
	switch {
	case p.Name == "":
		errs = append(errs, fmt.Errorf("%s: name is required", at))
	case seen[p.Name]:
		errs = append(errs, fmt.Errorf("%s: name %q is used twice", at, p.Name))
	}
	seen[p.Name] = true
	if _, ok := presets[p.Preset]; p.Preset != "" && !ok {
		errs = append(errs, fmt.Errorf("%s (%s): unknown preset %q (modern, intermediate, old)", at, p.Name, p.Preset))
	}
	if p.MinVersion != "" && versionRank(versionName(p.MinVersion)) == 0 {
		errs = append(errs, fmt.Errorf("%s (%s): unknown min_version %q (1.0, 1.1, 1.2, 1.3)", at, p.Name, p.MinVersion))
	}
	for _, c := range p.Ciphers {
		if !knownCipher(c) {
			errs = append(errs, fmt.Errorf("%s (%s): unknown cipher %q (OpenSSL or IANA name)", at, p.Name, c))
		} else if isTLS13Suite(cipherName(c)) {
			errs = append(errs, fmt.Errorf("%s (%s): %s is a TLS 1.3 suite: list it under ciphers_tls13", at, p.Name, c))
		}
	}
	for _, c := range p.CiphersTLS13 {
		if !isTLS13Suite(cipherName(c)) {
			errs = append(errs, fmt.Errorf("%s (%s): %q is not a TLS 1.3 suite", at, p.Name, c))
		}
	}
	for _, g := range p.Groups {
		if _, ok := groups[g]; !ok {
			errs = append(errs, fmt.Errorf("%s (%s): unknown group %q (X25519, P256, P384, P521, X25519MLKEM768, ...)", at, p.Name, g))
		}
	}
	if p.Preset == "" && p.MinVersion == "" && len(p.Ciphers)+len(p.CiphersTLS13)+len(p.Groups) == 0 {
		errs = append(errs, fmt.Errorf("%s (%s): sets nothing (preset, min_version, ciphers, ciphers_tls13 or groups)", at, p.Name))
	}
	return errs
}

// serviceFor finds the service of a record by SNI, then listener.
func (c *Config) serviceFor(sni, listener string) (ServiceConfig, bool) {
	for _, s := range c.Services {
		for _, n := range s.ServerNames {
			if hostname.Match(n, sni) {
				return s, true
			}
		}
	}
	for _, s := range c.Services {
		for _, l := range s.Listeners {
			if l == listener && l != "" {
				return s, true
			}
		}
	}
	return ServiceConfig{}, false
}
