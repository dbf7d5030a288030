package tlsprobereceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

func loadConfig(t *testing.T, name string) (*Config, error) {
	t.Helper()
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config), xconfmap.Validate(cfg)
}

func TestLoadConfig(t *testing.T) {
	cfg, err := loadConfig(t, "")
	require.NoError(t, err)
	assert.Equal(t, 30*time.Second, cfg.CollectionInterval)
	assert.Equal(t, 5*time.Second, cfg.Timeout)
	assert.True(t, cfg.OCSP.CheckResponder)
	assert.Equal(t, 24*time.Hour, cfg.OCSP.MaxStapleAge)
	assert.Equal(t, 30*24*time.Hour, cfg.ExpiringSoon)
	assert.Equal(t, BatchConfig{Timeout: 200 * time.Millisecond, MaxSize: 256}, cfg.Batch)

	cfg, err = loadConfig(t, "full")
	require.NoError(t, err)
	assert.Equal(t, time.Minute, cfg.CollectionInterval)
	assert.Equal(t, 16, cfg.MaxConcurrency)
	assert.Equal(t, "eu-west-1a", cfg.Vantage)
	assert.False(t, cfg.CRL.Enabled)
	assert.Equal(t, 12*time.Hour, cfg.OCSP.MaxStapleAge)
	require.Len(t, cfg.Targets, 2)
	assert.Equal(t, []string{"default", "legacy", "strict"}, cfg.Targets[0].Profiles)
	assert.Equal(t, "smtp", cfg.Targets[1].StartTLS)
	assert.Equal(t, 5*time.Minute, cfg.Targets[1].CollectionInterval)
	assert.Equal(t, "1.3", cfg.ClientProfiles["strict"].MinVersion)
	assert.Equal(t, BatchConfig{Timeout: time.Second, MaxSize: 64}, cfg.Batch)

	cfg, err = loadConfig(t, "nodes")
	require.NoError(t, err)
	assert.Equal(t, []string{"all"}, cfg.Targets[0].Nodes)
	assert.Equal(t, 8, cfg.Targets[0].maxNodes())
	assert.Equal(t, 3, cfg.Targets[0].resumptionEvery())
	assert.Equal(t, 5, cfg.Targets[1].resumptionEvery(), "default: every 5th probe")
	assert.Equal(t, 16, cfg.Targets[1].maxNodes())
	assert.Equal(t, []string{"X25519MLKEM768"}, cfg.ClientProfiles["pq-only"].CurvePreferences)

	cfg, err = loadConfig(t, "single")
	require.NoError(t, err)
	assert.Equal(t, "10.1.2.3:8443", cfg.Endpoint)
	assert.Equal(t, "discovered", cfg.Service)
}

func TestConfigErrors(t *testing.T) {
	for name, want := range map[string]string{
		"bad_criticality":             `criticality "urgent" must be one of low, medium, high, critical`,
		"bad_endpoint":                `endpoint "a.example.com" must be host:port`,
		"bad_pin":                     `is not sha256/<base64 of 32 bytes>`,
		"unknown_profile":             `unknown client profile "nosuch"`,
		"unknown_family":              `client_families: unknown family "curl" (known: openssl,python,node,gnutls,chrome,go,java)`,
		"duplicate":                   `duplicate of targets[0]`,
		"no_targets":                  `no targets: set endpoint, targets, targets_file or files`,
		"timeout_exceeds_interval":    `timeout (10s) must not exceed collection_interval (5s)`,
		"bad_starttls":                `starttls "imap" is not supported`,
		"insecure_profile":            `insecure and insecure_skip_verify make no sense`,
		"bad_networks":                `allow_private_fetch_networks: "10.0.0.0/33" is not a CIDR (10.0.0.0/8) or an address`,
		"bad_files":                   "files[0]: path \"/etc/kubernetes/pki/[*.crt\" is not a valid glob pattern",
		"bad_nodes":                   `nodes: "10.0.0.1" must be ip:port (or the single value "all")`,
		"nodes_all_needs_name":        `nodes: all needs a host name to resolve; endpoint "10.0.0.1:443" is an address`,
		"nodes_options_without_nodes": "max_nodes, resumption and expect_resumption need nodes",
		"bad_max_nodes":               "max_nodes must be between 1 and 256",
		"bad_batch_timeout":           "batch.timeout: 1m0s must be between 0 (no batching) and 10s",
		"bad_batch_size":              "batch.max_size: 0 must be between 1 and 65536",
	} {
		t.Run(name, func(t *testing.T) {
			_, err := loadConfig(t, name)
			require.Error(t, err)
			assert.Contains(t, err.Error(), want)
		})
	}
}

func TestUnknownKeyRejected(t *testing.T) {
	cm := map[string]any{"targets": []any{map[string]any{"endpoint": "a:443", "severity": "x"}}}
	cfg := NewFactory().CreateDefaultConfig()
	err := confmapFrom(cm).Unmarshal(cfg)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "severity")
}
