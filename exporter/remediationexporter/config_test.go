package remediationexporter

import (
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/confmap/confmaptest"
	"go.opentelemetry.io/collector/confmap/xconfmap"

	"github.com/certpulse/certpulse/exporter/remediationexporter/internal/metadata"
	"github.com/certpulse/certpulse/internal/attrs"
)

func load(t *testing.T, name string) (*Config, error) {
	cm, err := confmaptest.LoadConf(filepath.Join("testdata", "config.yaml"))
	require.NoError(t, err)
	cfg := NewFactory().CreateDefaultConfig()
	sub, err := cm.Sub(component.NewIDWithName(metadata.Type, name).String())
	require.NoError(t, err)
	if err := sub.Unmarshal(cfg); err != nil {
		return nil, err // rejected while decoded (unknown severity, risk)
	}
	return cfg.(*Config), xconfmap.Validate(cfg)
}

func TestConfig(t *testing.T) {
	cfg, err := load(t, "")
	require.NoError(t, err)
	assert.Equal(t, 30*time.Minute, cfg.Guardrails.Cooldown)
	assert.Equal(t, 3, cfg.Guardrails.MaxAttempts)
	assert.Equal(t, 20, cfg.Guardrails.Budget)
	assert.True(t, cfg.QueueSettings.HasValue())
	assert.False(t, cfg.Approval.HasValue())

	cfg, err = load(t, "full")
	require.NoError(t, err)
	assert.Equal(t, 15*time.Minute, cfg.Guardrails.Cooldown)
	require.Len(t, cfg.Policies, 2)
	p := cfg.Policies[0]
	assert.True(t, p.verify())
	assert.Equal(t, attrs.RiskLow, risk(&p, &p.Actions[0]))
	assert.Equal(t, "#payments", p.Actions[1].Labels["team_channel"])
	q := cfg.Policies[1]
	assert.False(t, q.verify())
	assert.Equal(t, attrs.RiskHigh, risk(&q, &q.Actions[0]), "pins are high risk by default")
	assert.Equal(t, 2*time.Hour, cfg.Approval.Get().TTL)
	assert.Equal(t, "audit-secret-0123456789", string(cfg.Audit.Get().HMACSecret))
	require.NotNil(t, cfg.Storage)

	for name, want := range map[string]string{
		"bad_operation":    `operation "restart-everything" must be one of`,
		"bad_url":          "must be an absolute http(s) URL",
		"bad_template":     "body template",
		"no_actions":       "at least one action is required",
		"duplicate_policy": "duplicate policy name",
		"bad_type":         `type "email" must be webhook or alertmanager`,
		"bad_guardrails":   "max_attempts >= 1",
		"bad_severity":     `min_severity' unknown severity "urgent"`,
		"bad_audit":        "audit.endpoint",
	} {
		_, err := load(t, name)
		require.Error(t, err, name)
		assert.Contains(t, err.Error(), want, name)
	}
}

// TestRiskIsDecodedStrictly: an unknown risk class fails while the config
// is decoded, naming the value; low and high decode.
func TestRiskIsDecodedStrictly(t *testing.T) {
	for _, c := range []struct {
		risk string
		err  string
	}{{"low", ""}, {"high", ""}, {"medium", `unknown risk "medium": low or high`}} {
		cm := confmap.NewFromStringMap(map[string]any{"policies": []any{map[string]any{
			"name": "p", "risk": c.risk,
			"actions": []any{map[string]any{"name": "a", "type": "webhook", "operation": "reload", "url": "http://127.0.0.1:1/", "risk": c.risk}},
		}}})
		cfg := createDefaultConfig()
		err := cm.Unmarshal(cfg)
		if c.err == "" {
			require.NoError(t, err, c.risk)
			assert.Equal(t, attrs.Risk(c.risk), cfg.Policies[0].Risk)
			assert.Equal(t, attrs.Risk(c.risk), cfg.Policies[0].Actions[0].Risk)
			continue
		}
		require.Error(t, err, c.risk)
		assert.Contains(t, err.Error(), c.err)
	}
}
