package tlscorrelator

import (
	"context"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/certpulse/certpulse/internal/attrs"
)

// fileStorage starts a real file_storage extension on dir.
func fileStorage(t *testing.T, dir string) (component.ID, component.Host) {
	f := filestorage.NewFactory()
	cfg := f.CreateDefaultConfig().(*filestorage.Config)
	cfg.Directory = dir
	id := component.MustNewID("file_storage")
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), cfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	return id, hosttest.With(map[component.ID]component.Component{id: ext})
}

// TestRestartMidIncident: the collector restarts while an incident is open;
// afterwards the incident is neither reopened nor re-paged, and resolves.
func TestRestartMidIncident(t *testing.T) {
	dir := t.TempDir()
	p := func(at time.Duration, v string, r attrs.Reason) probe {
		return probe{at: at, service: "pay", server: "pay.example.com", vantage: v, reason: r, chain: chainA, leaf: leafA, spki: spkiA, crit: "critical"}
	}
	id, host := fileStorage(t, dir)
	cfg := createDefaultConfig()
	cfg.Storage = &id
	h1 := newHarnessWithHost(t, cfg, host)
	h1.feed(p(0, "eu", attrs.ReasonOK), p(0, "us", attrs.ReasonOK),
		p(time.Minute, "eu", attrs.ReasonRevoked), p(time.Minute+5*time.Second, "us", attrs.ReasonRevoked), p(time.Minute+10*time.Second, "eu", attrs.ReasonRevoked))
	first := h1.incidents()
	require.NotEmpty(t, first)
	assert.Equal(t, "page", first[len(first)-1].severity)
	require.NoError(t, h1.proc.Shutdown(context.Background()))

	// A new process: new extension instance on the same directory.
	id2, host2 := fileStorage(t, dir)
	cfg2 := createDefaultConfig()
	cfg2.Storage = &id2
	h2 := newHarnessWithHost(t, cfg2, host2)
	h2.feed(p(2*time.Minute, "eu", attrs.ReasonRevoked), p(2*time.Minute+5*time.Second, "us", attrs.ReasonRevoked))
	assert.Empty(t, h2.incidents(), "no duplicate transition after the restart")
	for i := 0; i < 3; i++ {
		at := 3*time.Minute + time.Duration(i)*time.Minute
		h2.feed(p(at, "eu", attrs.ReasonOK), p(at, "us", attrs.ReasonOK))
	}
	after := h2.incidents()
	require.Len(t, after, 1)
	assert.Equal(t, "resolved", after[0].state)
	assert.Equal(t, first[0].id, after[0].id, "the same incident resolves")
}

func TestStorageMisconfigured(t *testing.T) {
	cfg := createDefaultConfig()
	id := component.MustNewID("file_storage")
	cfg.Storage = &id
	p, err := NewFactory().CreateLogs(context.Background(), newSettings(), cfg, nil)
	require.NoError(t, err)
	err = p.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), "storage extension file_storage is not configured")
}
