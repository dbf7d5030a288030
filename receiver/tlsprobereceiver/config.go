package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"errors"
	"fmt"
	"net"
	"net/netip"
	"strconv"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configtls"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/clients"
	"github.com/certpulse/certpulse/internal/tlsinspect"
	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// DefaultProfile is the client profile a target uses when it names none.
const DefaultProfile = "default"

// Config is the tlsprobe receiver configuration.
type Config struct {
	// CollectionInterval is how often each target is probed; the first
	// probe of each target is offset so probes spread over the interval.
	CollectionInterval time.Duration `mapstructure:"collection_interval"`
	// Timeout bounds one whole probe of one target (all profiles).
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxConcurrency bounds the probes in flight.
	MaxConcurrency int `mapstructure:"max_concurrency"`
	// ExpiringSoon flags certificates that expire within this window.
	ExpiringSoon time.Duration `mapstructure:"expiring_soon"`
	// MaxChainCertificates bounds how many presented certificates are kept.
	MaxChainCertificates int `mapstructure:"max_chain_certificates"`
	// Vantage names where the probes run (certpulse.vantage); default: host name.
	Vantage string `mapstructure:"vantage"`

	OCSP OCSPConfig  `mapstructure:"ocsp"`
	CRL  FetchConfig `mapstructure:"crl"`
	AIA  FetchConfig `mapstructure:"aia"`
	// AllowPrivateFetchNetworks are the networks (CIDRs) that OCSP, CRL and
	// AIA fetches may reach although loopback, link-local, private or
	// unspecified: an internal PKI. Certificate URLs come from the probed
	// servers, so every other such address is refused (SSRF).
	AllowPrivateFetchNetworks []string `mapstructure:"allow_private_fetch_networks"`

	// ClientProfiles are named client profiles; "default" (system roots,
	// TLS 1.2+) exists unless redefined.
	ClientProfiles map[string]ProfileConfig `mapstructure:"client_profiles"`
	// ClientFamilies are the client presets (docs/clients.md) each result
	// of a profile that probes as default clients do is judged under:
	// their names go to certpulse.clients.failing when they would fail.
	// Default: all of openssl, python, node, gnutls, chrome, go, java.
	ClientFamilies []clients.Family `mapstructure:"client_families"`

	Targets []TargetConfig `mapstructure:"targets"`
	// TargetsFile holds more targets (`targets:` list, same schema); it is
	// re-read when it changes.
	TargetsFile string `mapstructure:"targets_file"`
	// TargetsFileCheckInterval is how often TargetsFile is checked for changes.
	TargetsFileCheckInterval time.Duration `mapstructure:"targets_file_check_interval"`

	// Trigger names a certpulse_trigger extension: a deployed, renewed or
	// rotation_planned lifecycle event received by this collector probes
	// the event's service at once, then at on_change.backoff.
	Trigger *component.ID `mapstructure:"trigger"`
	// Series is the series profile: full (default) or lean (at most 3
	// active series per target while healthy; series.go).
	Series string `mapstructure:"series"`
	// Vantages names a certpulse_vantages extension: this agent probes a
	// target only when it is one of the target's k vantages among the
	// live agents (rendezvous hashing); without it, every target.
	Vantages *component.ID  `mapstructure:"vantages"`
	OnChange OnChangeConfig `mapstructure:"on_change"`
	// Confirm re-probes a target that was healthy and fails, so that the
	// correlator's corroboration is met in seconds or the blip is seen as one.
	Confirm ConfirmConfig `mapstructure:"confirm"`
	// ExtraProbes bounds the probes triggers and confirmations add.
	ExtraProbes ExtraProbesConfig `mapstructure:"extra_probes"`
	// Batch hands the results of the probes that end within Timeout to
	// the pipelines in one call.
	Batch BatchConfig `mapstructure:"batch"`

	// Files are certificate files on this host (PEM bundles, DER,
	// kubeconfigs), judged without a handshake every collection_interval.
	// Every client profile's own cert_file is reported the same way.
	Files []FileTargetConfig `mapstructure:"files"`

	// TargetConfig is the single-endpoint form (`endpoint:` at the top
	// level), as receiver_creator uses it.
	TargetConfig `mapstructure:",squash"`

	metadata.MetricsBuilderConfig `mapstructure:",squash"`

	_ struct{}
}

// OnChangeConfig: probes after a lifecycle trigger.
type OnChangeConfig struct {
	// Backoff are the delays of the probes after the immediate one, while
	// a rollout propagates.
	Backoff []time.Duration `mapstructure:"backoff"`
}

// ConfirmConfig: re-probes after a healthy target fails.
type ConfirmConfig struct {
	// Attempts is how many re-probes (0 turns confirmation off).
	Attempts int           `mapstructure:"attempts"`
	Interval time.Duration `mapstructure:"interval"`
}

// ExtraProbesConfig is the budget (token bucket) of triggered and
// confirmation probes; the regular schedule does not use it.
type ExtraProbesConfig struct {
	PerSecond float64 `mapstructure:"per_second"`
	Burst     int     `mapstructure:"burst"`
}

// BatchConfig: results handed to the pipelines together. One call per
// probe costs each probe a pass through every processor and three
// transactions of an exporter's persistent queue.
type BatchConfig struct {
	// Timeout: how long a result may wait for others (0: each probe's
	// results at once). At most 10s.
	Timeout time.Duration `mapstructure:"timeout"`
	// MaxSize: probes (and log records) in a batch; a full batch is handed
	// off at once.
	MaxSize int `mapstructure:"max_size"`
}

// OCSPConfig configures OCSP checks.
type OCSPConfig struct {
	// CheckResponder asks the leaf's AIA OCSP responder.
	CheckResponder bool          `mapstructure:"check_responder"`
	Timeout        time.Duration `mapstructure:"timeout"`
	// MaxStapleAge flags stapled responses older than this.
	MaxStapleAge time.Duration `mapstructure:"max_staple_age"`
	// CacheTTL bounds reuse of a responder answer (never past nextUpdate).
	CacheTTL time.Duration `mapstructure:"cache_ttl"`
	MaxBytes int64         `mapstructure:"max_bytes"`
}

// FetchConfig configures a bounded, cached HTTP fetch (CRL, AIA caIssuers).
type FetchConfig struct {
	Enabled  bool          `mapstructure:"enabled"`
	Timeout  time.Duration `mapstructure:"timeout"`
	MaxBytes int64         `mapstructure:"max_bytes"`
	CacheTTL time.Duration `mapstructure:"cache_ttl"`
}

// ProfileConfig is a client profile: trust store (ca_file, ca_pem,
// include_system_ca_certs_pool), min_version, max_version, cipher_suites and
// an optional client certificate (cert_file/key_file), as in configtls.
type ProfileConfig struct {
	configtls.ClientConfig `mapstructure:",squash"`
}

// TargetConfig is one endpoint to probe.
type TargetConfig struct {
	// Endpoint is host:port to dial.
	Endpoint string `mapstructure:"endpoint"`
	// ServerName is the SNI and the name checked; default: host part.
	ServerName string `mapstructure:"server_name"`
	Service    string `mapstructure:"service"`
	Owner      string `mapstructure:"owner"`
	// Environment becomes deployment.environment.name.
	Environment string `mapstructure:"environment"`
	// Criticality is low, medium, high or critical (default medium).
	Criticality string `mapstructure:"criticality"`
	// CAFile adds trust anchors for this target to every profile.
	CAFile string `mapstructure:"ca_file"`
	// Pins are "sha256/<base64 SPKI hash>"; any match in the chain passes.
	Pins []string `mapstructure:"pins"`
	// Profiles lists the client profiles to validate under; default ["default"].
	Profiles []string `mapstructure:"profiles"`
	// StartTLS is "" or "smtp".
	StartTLS string `mapstructure:"starttls"`
	// CollectionInterval overrides the receiver's interval for this target.
	// (In the single-endpoint form it is the receiver's own key.)
	CollectionInterval time.Duration `mapstructure:"collection_interval"`

	// Nodes probes every edge node behind the name: `all` (every A/AAAA
	// address the endpoint's host resolves to, re-resolved every
	// interval, at most max_nodes) or a list of ip:port. Each node's
	// result is its own record; the nodes are compared (chain, protocol,
	// cipher, OCSP staple) and, every resumption.every-th probe, checked
	// for session resumption across neighbours.
	Nodes []string `mapstructure:"nodes"`
	// MaxNodes bounds the addresses `nodes: all` probes (default 16); the
	// first max_nodes in address order are probed, the rest are counted.
	MaxNodes int `mapstructure:"max_nodes"`
	// Resumption configures the cross-node session resumption check.
	Resumption ResumptionConfig `mapstructure:"resumption"`
	// ExpectResumption: a name where no node resumes sessions at all is
	// resumption_failed rather than resumption_unsupported (info).
	ExpectResumption bool `mapstructure:"expect_resumption"`
}

// ResumptionConfig: the cross-node session resumption check of a `nodes`
// target. Each node resumes a session its neighbour issued (a ring: N
// checks per version, not N^2), for TLS 1.3 and TLS 1.2 tickets.
type ResumptionConfig struct {
	// Every runs the check on every Nth probe of the target (default 5;
	// 0 turns it off).
	Every *int `mapstructure:"every"`
}

// nodesAll is the `nodes: all` form.
const nodesAll = "all"

// defaultMaxNodes bounds `nodes: all` unless max_nodes says otherwise.
const defaultMaxNodes = 16

// maxMaxNodes is the largest max_nodes accepted.
const maxMaxNodes = 256

// defaultResumptionEvery: the resumption check runs on every 5th probe.
const defaultResumptionEvery = 5

// resumptionEvery is the effective resumption.every (0: off).
func (t TargetConfig) resumptionEvery() int {
	if t.Resumption.Every == nil {
		return defaultResumptionEvery
	}
	return *t.Resumption.Every
}

// maxNodes is the effective max_nodes.
func (t TargetConfig) maxNodes() int {
	if t.MaxNodes == 0 {
		return defaultMaxNodes
	}
	return t.MaxNodes
}

func createDefaultConfig() *Config {
	d := tlsinspect.DefaultOptions()
	return &Config{
		CollectionInterval:   30 * time.Second,
		Series:               SeriesFull,
		Timeout:              d.Timeout,
		MaxConcurrency:       64,
		ExpiringSoon:         d.ExpiringSoon,
		MaxChainCertificates: d.MaxChainCerts,
		OCSP: OCSPConfig{
			CheckResponder: d.OCSP.CheckResponder,
			Timeout:        d.OCSP.Timeout,
			MaxStapleAge:   d.OCSP.MaxStapleAge,
			CacheTTL:       d.OCSP.CacheTTL,
			MaxBytes:       d.OCSP.MaxBytes,
		},
		CRL:                      FetchConfig(d.CRL),
		AIA:                      FetchConfig(d.AIA),
		TargetsFileCheckInterval: 10 * time.Second,
		OnChange:                 OnChangeConfig{Backoff: []time.Duration{5 * time.Second, 15 * time.Second, 30 * time.Second}},
		Confirm:                  ConfirmConfig{Attempts: 2, Interval: 2 * time.Second},
		ExtraProbes:              ExtraProbesConfig{PerSecond: 20, Burst: 200},
		Batch:                    BatchConfig{Timeout: 200 * time.Millisecond, MaxSize: 256},
		MetricsBuilderConfig:     metadata.DefaultMetricsBuilderConfig(),
	}
}

// inspectOptions maps the config onto tlsinspect options (Validate reports
// bad networks).
func (cfg *Config) inspectOptions() tlsinspect.Options {
	allow, _ := tlsinspect.ParseNetworks(cfg.AllowPrivateFetchNetworks)
	return tlsinspect.Options{
		AllowPrivateFetch: allow,
		Timeout:           cfg.Timeout,
		ExpiringSoon:      cfg.ExpiringSoon,
		MaxChainCerts:     cfg.MaxChainCertificates,
		OCSP: tlsinspect.OCSPOptions{
			CheckResponder: cfg.OCSP.CheckResponder,
			Timeout:        cfg.OCSP.Timeout,
			MaxStapleAge:   cfg.OCSP.MaxStapleAge,
			CacheTTL:       cfg.OCSP.CacheTTL,
			MaxBytes:       cfg.OCSP.MaxBytes,
		},
		CRL: tlsinspect.FetchOptions(cfg.CRL),
		AIA: tlsinspect.FetchOptions(cfg.AIA),
	}
}

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if cfg.CollectionInterval <= 0 {
		errs = append(errs, errors.New("collection_interval must be positive"))
	}
	if cfg.MaxConcurrency <= 0 {
		errs = append(errs, errors.New("max_concurrency must be positive"))
	}
	if cfg.Series != "" && cfg.Series != SeriesFull && cfg.Series != SeriesLean {
		errs = append(errs, fmt.Errorf("series must be full or lean, got %q", cfg.Series))
	}
	if cfg.Timeout > 0 && cfg.CollectionInterval > 0 && cfg.Timeout > cfg.CollectionInterval {
		errs = append(errs, fmt.Errorf("timeout (%s) must not exceed collection_interval (%s)", cfg.Timeout, cfg.CollectionInterval))
	}
	if cfg.OCSP.Timeout > 0 && cfg.Timeout > 0 && cfg.OCSP.CheckResponder && cfg.OCSP.Timeout >= cfg.Timeout {
		errs = append(errs, fmt.Errorf("ocsp.timeout (%s) must be shorter than timeout (%s)", cfg.OCSP.Timeout, cfg.Timeout))
	}
	if _, err := tlsinspect.ParseNetworks(cfg.AllowPrivateFetchNetworks); err != nil {
		errs = append(errs, err)
	}
	if err := cfg.inspectOptions().Validate(); err != nil {
		errs = append(errs, err)
	}
	for _, d := range cfg.OnChange.Backoff {
		if d <= 0 || d > time.Hour {
			errs = append(errs, fmt.Errorf("on_change.backoff: %s must be between 0 and 1h", d))
		}
	}
	if len(cfg.OnChange.Backoff) > 8 {
		errs = append(errs, errors.New("on_change.backoff: at most 8 delays"))
	}
	if cfg.Confirm.Attempts < 0 || cfg.Confirm.Attempts > 5 || (cfg.Confirm.Attempts > 0 && cfg.Confirm.Interval <= 0) {
		errs = append(errs, errors.New("confirm: attempts 0-5 and a positive interval"))
	}
	if cfg.Batch.Timeout < 0 || cfg.Batch.Timeout > 10*time.Second {
		errs = append(errs, fmt.Errorf("batch.timeout: %s must be between 0 (no batching) and 10s", cfg.Batch.Timeout))
	}
	if cfg.Batch.Timeout > 0 && (cfg.Batch.MaxSize < 1 || cfg.Batch.MaxSize > 65536) {
		errs = append(errs, fmt.Errorf("batch.max_size: %d must be between 1 and 65536", cfg.Batch.MaxSize))
	}
	if cfg.ExtraProbes.PerSecond <= 0 || cfg.ExtraProbes.Burst < 1 {
		errs = append(errs, errors.New("extra_probes: per_second must be positive and burst at least 1"))
	}
	if cfg.TargetsFile != "" && cfg.TargetsFileCheckInterval <= 0 {
		errs = append(errs, errors.New("targets_file_check_interval must be positive"))
	}
	for _, f := range cfg.ClientFamilies {
		if _, ok := clients.Preset(f); !ok {
			errs = append(errs, fmt.Errorf("client_families: unknown family %q (known: %s)", f, clients.Join(clients.Families())))
		}
	}
	for name, p := range cfg.ClientProfiles {
		if name == "" {
			errs = append(errs, errors.New("client_profiles: empty profile name"))
		}
		if p.Insecure || p.InsecureSkipVerify {
			errs = append(errs, fmt.Errorf("client_profiles::%s: insecure and insecure_skip_verify make no sense for a probe that validates itself", name))
		}
		if err := p.Validate(); err != nil {
			errs = append(errs, fmt.Errorf("client_profiles::%s: %w", name, err))
		}
	}
	if cfg.Endpoint == "" && len(cfg.Targets) == 0 && cfg.TargetsFile == "" && len(cfg.Files) == 0 {
		errs = append(errs, errors.New("no targets: set endpoint, targets, targets_file or files"))
	}
	for i, f := range cfg.Files {
		if err := f.validate(); err != nil {
			errs = append(errs, fmt.Errorf("files[%d]: %w", i, err))
		}
	}
	all := cfg.Targets
	if cfg.Endpoint != "" {
		all = append([]TargetConfig{cfg.TargetConfig}, all...)
	} else if !cfg.TargetConfig.isZero() {
		errs = append(errs, errors.New("target fields (server_name, service, pins, ...) are set at the top level but endpoint is not"))
	}
	if err := validateTargets(all, cfg.profileNames(), "targets"); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// isZero ignores collection_interval, which the single-endpoint form shares
// with the receiver's own key.
func (t TargetConfig) isZero() bool {
	return t.Endpoint == "" && t.ServerName == "" && t.Service == "" && t.Owner == "" && t.Environment == "" &&
		t.Criticality == "" && t.CAFile == "" && len(t.Pins) == 0 && len(t.Profiles) == 0 && t.StartTLS == "" &&
		len(t.Nodes) == 0 && t.MaxNodes == 0 && t.Resumption.Every == nil && !t.ExpectResumption
}

func (cfg *Config) profileNames() map[string]bool {
	names := map[string]bool{DefaultProfile: true}
	for n := range cfg.ClientProfiles {
		names[n] = true
	}
	return names
}

// validateTargets checks every target and that no two share an identity.
func validateTargets(ts []TargetConfig, profiles map[string]bool, where string) error {
	var errs []error
	seen := map[string]int{}
	for i, t := range ts {
		if err := t.validate(profiles); err != nil {
			errs = append(errs, fmt.Errorf("%s[%d] (%s): %w", where, i, t.Endpoint, err))
			continue
		}
		k := t.key()
		if j, dup := seen[k]; dup {
			errs = append(errs, fmt.Errorf("%s[%d] (%s): duplicate of %s[%d] (same endpoint, server_name and starttls)", where, i, t.Endpoint, where, j))
		}
		seen[k] = i
	}
	return errors.Join(errs...)
}

func (t TargetConfig) validate(profiles map[string]bool) error {
	var errs []error
	host, port, err := net.SplitHostPort(t.Endpoint)
	if err != nil || host == "" {
		errs = append(errs, fmt.Errorf("endpoint %q must be host:port", t.Endpoint))
	} else if p, err := strconv.Atoi(port); err != nil || p < 1 || p > 65535 {
		errs = append(errs, fmt.Errorf("endpoint %q: port must be 1-65535", t.Endpoint))
	}
	if t.Criticality != "" && !attrs.ValidCriticality(t.Criticality) {
		errs = append(errs, fmt.Errorf("criticality %q must be one of low, medium, high, critical", t.Criticality))
	}
	for _, p := range t.Pins {
		if _, err := tlsinspect.NormalizePin(p); err != nil {
			errs = append(errs, err)
		}
	}
	for _, p := range t.Profiles {
		if !profiles[p] {
			errs = append(errs, fmt.Errorf("unknown client profile %q", p))
		}
	}
	switch t.StartTLS {
	case "", "smtp":
	default:
		errs = append(errs, fmt.Errorf("starttls %q is not supported (smtp)", t.StartTLS))
	}
	if t.CollectionInterval < 0 {
		errs = append(errs, errors.New("collection_interval must not be negative"))
	}
	errs = append(errs, t.validateNodes())
	for _, s := range []struct{ name, v string }{{"server_name", t.ServerName}, {"service", t.Service}, {"owner", t.Owner}, {"environment", t.Environment}} {
		if len(s.v) > 253 {
			errs = append(errs, fmt.Errorf("%s is longer than 253 characters", s.name))
		}
	}
	return errors.Join(errs...)
}

// validateNodes checks nodes, max_nodes and resumption.
func (t TargetConfig) validateNodes() error {
	var errs []error
	if t.MaxNodes < 0 || t.MaxNodes > maxMaxNodes {
		errs = append(errs, fmt.Errorf("max_nodes must be between 1 and %d (0: %d)", maxMaxNodes, defaultMaxNodes))
	}
	if e := t.Resumption.Every; e != nil && (*e < 0 || *e > 1000) {
		errs = append(errs, errors.New("resumption.every must be between 0 (off) and 1000"))
	}
	if len(t.Nodes) == 0 {
		if t.MaxNodes != 0 || t.Resumption.Every != nil || t.ExpectResumption {
			errs = append(errs, errors.New("max_nodes, resumption and expect_resumption need nodes"))
		}
		return errors.Join(errs...)
	}
	if t.StartTLS != "" {
		errs = append(errs, errors.New("nodes cannot be combined with starttls"))
	}
	if len(t.Nodes) == 1 && t.Nodes[0] == nodesAll {
		if host, _, err := net.SplitHostPort(t.Endpoint); err == nil {
			if _, err := netip.ParseAddr(host); err == nil {
				errs = append(errs, fmt.Errorf("nodes: all needs a host name to resolve; endpoint %q is an address", t.Endpoint))
			}
		}
		return errors.Join(errs...)
	}
	if len(t.Nodes) > maxMaxNodes {
		errs = append(errs, fmt.Errorf("nodes: at most %d", maxMaxNodes))
	}
	seen := map[string]bool{}
	for _, n := range t.Nodes {
		ap, err := netip.ParseAddrPort(n)
		if err != nil || ap.Port() == 0 {
			errs = append(errs, fmt.Errorf("nodes: %q must be ip:port (or the single value %q)", n, nodesAll))
			continue
		}
		if seen[ap.String()] {
			errs = append(errs, fmt.Errorf("nodes: %q is listed twice", n))
		}
		seen[ap.String()] = true
	}
	return errors.Join(errs...)
}

// key identifies a target: what is dialed, the name asked for and the
// STARTTLS protocol.
func (t TargetConfig) key() string {
	return t.Endpoint + "|" + t.ServerName + "|" + t.StartTLS
}
