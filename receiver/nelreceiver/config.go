package nelreceiver // import "github.com/certpulse/certpulse/receiver/nelreceiver"

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/certpulse/certpulse/internal/hostname"
)

// Config is the nel receiver's configuration. The HTTP server settings
// (endpoint, tls, max_request_body_size, timeouts) are the collector's
// confighttp.ServerConfig. Browsers send reports without credentials, so
// there is no auth: what bounds the endpoint is the services mapping (an
// origin no service names is refused), the body and batch bounds and the
// per-client rate limit.
type Config struct {
	confighttp.ServerConfig `mapstructure:",squash"`

	// Path is the URL path of the reporting endpoint (the Report-To
	// header's url). Default /nel.
	Path string `mapstructure:"path"`
	// Services map the reported origins' hosts to services (first match
	// wins). A report for a host none names is dropped (counted as
	// unknown_host): a client-chosen host never becomes a service.
	Services []ServiceConfig `mapstructure:"services"`
	// MaxReportsPerRequest bounds a batch. Default 100.
	MaxReportsPerRequest int `mapstructure:"max_reports_per_request"`
	// MaxFieldLength bounds the url and every other string field; longer
	// makes the report invalid (the user agent is cut). Default 2048.
	MaxFieldLength int `mapstructure:"max_field_length"`
	// MaxAge: reports the browser held longer than this are stale (dropped,
	// counted). Default 1h.
	MaxAge time.Duration `mapstructure:"max_age"`
	// Dedup: a report with the url, type and phase of one from the same
	// client within Window is a repeat (Chromium reloads an error page on
	// its own, each reload sending another report) and is counted once.
	Dedup DedupConfig `mapstructure:"dedup"`
	// RateLimit bounds requests per client address.
	RateLimit RateLimitConfig `mapstructure:"rate_limit"`
	// ClientAddressHeader: behind a proxy, the header holding the client's
	// address (its last value: the one the proxy appended), for the rate
	// limit and dedup. Empty (default): the connection's peer address.
	ClientAddressHeader string `mapstructure:"client_address_header"`
	// IncludeClientAddress puts client.address on records. Default false:
	// nothing stored identifies a user.
	IncludeClientAddress bool `mapstructure:"include_client_address"`
	// Trigger names a certpulse_trigger extension: a failure report for a
	// service makes this collector's tlsprobe receivers probe the
	// service's targets at once (at most once per TriggerInterval per
	// service). For agents whose correlator runs elsewhere (the gateway
	// tier); a local correlator with its own trigger fires on the incident.
	Trigger *component.ID `mapstructure:"trigger"`
	// TriggerInterval bounds the triggers per service. Default 1m.
	TriggerInterval time.Duration `mapstructure:"trigger_interval"`

	_ struct{}
}

// ServiceConfig names the service behind some hosts.
type ServiceConfig struct {
	Name string `mapstructure:"name"`
	// ServerNames: exact hosts or "*.example.com" (one label).
	ServerNames []string `mapstructure:"server_names"`
	Environment string   `mapstructure:"environment"`
	Owner       string   `mapstructure:"owner"`
	Criticality string   `mapstructure:"criticality"`
}

// DedupConfig bounds the repeat filter.
type DedupConfig struct {
	Window     time.Duration `mapstructure:"window"`
	MaxEntries int           `mapstructure:"max_entries"`
}

// RateLimitConfig is a token bucket per client address.
type RateLimitConfig struct {
	// RequestsPerSecond refills the bucket; Burst is its size. Default 1
	// and 10: a browser sends a batch per minute or so, a burst after an
	// outage.
	RequestsPerSecond float64 `mapstructure:"requests_per_second"`
	Burst             int     `mapstructure:"burst"`
	// MaxClients bounds the addresses tracked; when all are busy a new
	// address is refused (429) until one is idle. Default 10000.
	MaxClients int `mapstructure:"max_clients"`
}

const defaultEndpoint = "localhost:4390"

func createDefaultConfig() *Config {
	s := confighttp.NewDefaultServerConfig()
	s.NetAddr.Endpoint = defaultEndpoint
	s.MaxRequestBodySize = 64 << 10
	s.ReadTimeout = 10 * time.Second
	s.ReadHeaderTimeout = 5 * time.Second
	return &Config{
		ServerConfig:         s,
		Path:                 "/nel",
		MaxReportsPerRequest: 100,
		MaxFieldLength:       2048,
		MaxAge:               time.Hour,
		Dedup:                DedupConfig{Window: 30 * time.Second, MaxEntries: 100000},
		RateLimit:            RateLimitConfig{RequestsPerSecond: 1, Burst: 10, MaxClients: 10000},
		TriggerInterval:      time.Minute,
	}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.NetAddr.Endpoint == "" {
		errs = append(errs, errors.New("endpoint is required"))
	}
	if !strings.HasPrefix(cfg.Path, "/") {
		errs = append(errs, fmt.Errorf("path %q must start with /", cfg.Path))
	}
	if cfg.MaxRequestBodySize <= 0 || cfg.MaxRequestBodySize > 16<<20 {
		errs = append(errs, fmt.Errorf("max_request_body_size must be within 1 and 16 MiB, got %d", cfg.MaxRequestBodySize))
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"max_reports_per_request", cfg.MaxReportsPerRequest}, {"max_field_length", cfg.MaxFieldLength}, {"dedup.max_entries", cfg.Dedup.MaxEntries}, {"rate_limit.burst", cfg.RateLimit.Burst}, {"rate_limit.max_clients", cfg.RateLimit.MaxClients}} {
		if v.n <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive, got %d", v.name, v.n))
		}
	}
	if cfg.MaxAge <= 0 || cfg.Dedup.Window <= 0 || cfg.TriggerInterval <= 0 {
		errs = append(errs, errors.New("max_age, dedup.window and trigger_interval must be positive"))
	}
	if cfg.RateLimit.RequestsPerSecond <= 0 {
		errs = append(errs, fmt.Errorf("rate_limit.requests_per_second must be positive, got %g", cfg.RateLimit.RequestsPerSecond))
	}
	if h := cfg.ClientAddressHeader; h != "" && !headerName(h) {
		errs = append(errs, fmt.Errorf("client_address_header %q is not a header name", h))
	}
	if len(cfg.Services) == 0 {
		errs = append(errs, errors.New("services: at least one is required (reports for hosts no service names are dropped)"))
	}
	for i, s := range cfg.Services {
		if s.Name == "" {
			errs = append(errs, fmt.Errorf("services[%d]: name is required", i))
		}
		if len(s.ServerNames) == 0 {
			errs = append(errs, fmt.Errorf("services[%d] (%s): server_names is required", i, s.Name))
		}
		for _, n := range s.ServerNames {
			if n == "" || strings.ContainsAny(n, "/: ") || strings.Contains(strings.TrimPrefix(n, "*."), "*") {
				errs = append(errs, fmt.Errorf("services[%d] (%s): %q is not a host or *.host", i, s.Name, n))
			}
		}
	}
	return errors.Join(errs...)
}

// headerName: an HTTP header name (RFC 9110 token).
func headerName(h string) bool {
	for i := 0; i < len(h); i++ {
		c := h[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

// serviceFor finds the service of a host.
func (cfg *Config) serviceFor(host string) (*ServiceConfig, bool) {
	for i := range cfg.Services {
		for _, n := range cfg.Services[i].ServerNames {
			if hostname.Match(n, host) {
				return &cfg.Services[i], true
			}
		}
	}
	return nil, false
}
