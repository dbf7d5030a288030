package certlifecyclereceiver

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/certpulse/certpulse/receiver/certlifecyclereceiver/internal/metadata"
)

func load(t *testing.T, name string) (*Config, error) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	require.NoError(t, sub.Unmarshal(cfg))
	return cfg.(*Config), xconfmap.Validate(cfg)
}

func TestConfig(t *testing.T) {
	cfg, err := load(t, "")
	require.NoError(t, err)
	assert.Equal(t, "localhost:4380", cfg.NetAddr.Endpoint)
	assert.Equal(t, "/v1/lifecycle", cfg.Path)
	assert.EqualValues(t, 1<<20, cfg.MaxRequestBodySize)
	assert.False(t, cfg.HMAC.enabled())

	cfg, err = load(t, "full")
	require.NoError(t, err)
	assert.Equal(t, "/hooks/lifecycle", cfg.Path)
	assert.True(t, cfg.Auth.HasValue())
	assert.True(t, cfg.HMAC.enabled())
	assert.Equal(t, 2*time.Minute, cfg.HMAC.MaxSkew)
	assert.Equal(t, "X-Certpulse-Signature", cfg.HMAC.SignatureHeader)
	assert.Equal(t, 50, cfg.MaxEventsPerRequest)

	for name, want := range map[string]string{
		"short_secret": "hmac.secret must be at least 16 bytes",
		"bad_path":     `path "hooks" must start with /`,
		"zero_batch":   "max_events_per_request must be positive",
		// Off loopback both are required.
		"open_without_auth": "auth is required when listening on 0.0.0.0:4380",
	} {
		_, err := load(t, name)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), want)
	}
	_, err = load(t, "open_without_auth")
	assert.Contains(t, err.Error(), "hmac.secret is required when listening on 0.0.0.0:4380")
}
