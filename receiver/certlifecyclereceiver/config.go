package certlifecyclereceiver // import "github.com/certpulse/certpulse/receiver/certlifecyclereceiver"

import (
	"github.com/certpulse/certpulse/internal/listen"
	"go.opentelemetry.io/collector/component"

	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"

	"github.com/certpulse/certpulse/internal/signature"
)

// Config is the certlifecycle receiver configuration. The HTTP server
// settings (endpoint, tls, auth, cors, max_request_body_size, timeouts) are
// the collector's confighttp.ServerConfig.
type Config struct {
	confighttp.ServerConfig `mapstructure:",squash"`

	// Path is the URL path events are POSTed to.
	Path string `mapstructure:"path"`
	// HMAC adds a body signature check on top of the auth extension.
	HMAC HMACConfig `mapstructure:"hmac"`
	// MaxEventsPerRequest bounds a batch.
	MaxEventsPerRequest int `mapstructure:"max_events_per_request"`
	// MaxFieldLength bounds every string field (message: 4x).
	MaxFieldLength int `mapstructure:"max_field_length"`
	// MaxListLength bounds endpoints and SANs.
	MaxListLength int `mapstructure:"max_list_length"`
	// MaxPEMBytes bounds an embedded PEM certificate.
	MaxPEMBytes int `mapstructure:"max_pem_bytes"`
	// MaxClockSkew bounds how far in the future an event time may be.
	MaxClockSkew time.Duration `mapstructure:"max_clock_skew"`
	// DedupWindow is how long a delivered event id is remembered.
	DedupWindow time.Duration `mapstructure:"dedup_window"`
	// DedupMaxEntries bounds the remembered ids.
	DedupMaxEntries int `mapstructure:"dedup_max_entries"`
	// RetryAfter is sent with 503 when the pipeline refuses events.
	RetryAfter time.Duration `mapstructure:"retry_after"`
	// Trigger names a certpulse_trigger extension: a delivered deployed,
	// renewed or rotation_planned event makes this collector's tlsprobe
	// receivers probe the service's targets at once.
	Trigger *component.ID `mapstructure:"trigger"`

	_ struct{}
}

// HMACConfig: when Secret is set, every request must carry
// `<timestamp_header>: <unix seconds>` and
// `<signature_header>: sha256=<hex HMAC-SHA256(secret, timestamp + "." + body)>`,
// with the timestamp within max_skew of now (no replay of old requests).
type HMACConfig struct {
	Secret          configopaque.String `mapstructure:"secret"`
	SignatureHeader string              `mapstructure:"signature_header"`
	TimestampHeader string              `mapstructure:"timestamp_header"`
	MaxSkew         time.Duration       `mapstructure:"max_skew"`
}

func (h HMACConfig) enabled() bool { return h.Secret != "" }

const defaultEndpoint = "localhost:4380"

func createDefaultConfig() *Config {
	s := confighttp.NewDefaultServerConfig()
	s.NetAddr.Endpoint = defaultEndpoint
	s.MaxRequestBodySize = 1 << 20
	s.ReadTimeout = 30 * time.Second
	return &Config{
		ServerConfig: s,
		Path:         "/v1/lifecycle",
		HMAC: HMACConfig{
			SignatureHeader: signature.SignatureHeader,
			TimestampHeader: signature.TimestampHeader,
			MaxSkew:         5 * time.Minute,
		},
		MaxEventsPerRequest: 100,
		MaxFieldLength:      512,
		MaxListLength:       100,
		MaxPEMBytes:         32 << 10,
		MaxClockSkew:        5 * time.Minute,
		DedupWindow:         24 * time.Hour,
		DedupMaxEntries:     100000,
		RetryAfter:          5 * time.Second,
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
	if cfg.MaxRequestBodySize <= 0 {
		errs = append(errs, errors.New("max_request_body_size must be positive"))
	}
	for _, v := range []struct {
		name string
		n    int
	}{{"max_events_per_request", cfg.MaxEventsPerRequest}, {"max_field_length", cfg.MaxFieldLength}, {"max_list_length", cfg.MaxListLength}, {"max_pem_bytes", cfg.MaxPEMBytes}, {"dedup_max_entries", cfg.DedupMaxEntries}} {
		if v.n <= 0 {
			errs = append(errs, fmt.Errorf("%s must be positive", v.name))
		}
	}
	if cfg.DedupWindow <= 0 || cfg.RetryAfter <= 0 || cfg.MaxClockSkew <= 0 {
		errs = append(errs, errors.New("dedup_window, retry_after and max_clock_skew must be positive"))
	}
	if !listen.LoopbackOnly(cfg.NetAddr.Endpoint) {
		// Lifecycle events move incidents (deploys, maintenance windows,
		// remediation holds): off loopback, who sends them must be known.
		if !cfg.Auth.HasValue() {
			errs = append(errs, fmt.Errorf("auth is required when listening on %s (only a loopback address may go without)", cfg.NetAddr.Endpoint))
		}
		if !cfg.HMAC.enabled() {
			errs = append(errs, fmt.Errorf("hmac.secret is required when listening on %s (only a loopback address may go without)", cfg.NetAddr.Endpoint))
		}
	}
	if cfg.HMAC.enabled() {
		if len(cfg.HMAC.Secret) < 16 {
			errs = append(errs, errors.New("hmac.secret must be at least 16 bytes"))
		}
		if cfg.HMAC.MaxSkew <= 0 {
			errs = append(errs, errors.New("hmac.max_skew must be positive"))
		}
		if http.CanonicalHeaderKey(cfg.HMAC.SignatureHeader) == "" || cfg.HMAC.TimestampHeader == "" || strings.EqualFold(cfg.HMAC.SignatureHeader, cfg.HMAC.TimestampHeader) {
			errs = append(errs, errors.New("hmac.signature_header and hmac.timestamp_header must be set and differ"))
		}
	}
	return errors.Join(errs...)
}
