package certlifecyclereceiver

import (
	"context"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"net/http"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/extension/triggerextension"
	"github.com/certpulse/certpulse/internal/trigger"
	"github.com/certpulse/certpulse/receiver/certlifecyclereceiver/internal/metadata"
)

// TestDeployFiresTrigger: a delivered deployed (renewed, rotation_planned)
// event fires the certpulse_trigger hub for its service; a duplicate or an
// event of another type does not.
func TestDeployFiresTrigger(t *testing.T) {
	f := triggerextension.NewFactory()
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), f.CreateDefaultConfig())
	require.NoError(t, err)
	id := component.NewID(f.Type())
	hub := ext.(trigger.Provider).Hub()
	var mu sync.Mutex
	var got []trigger.Event
	defer hub.Subscribe(func(ev trigger.Event) { mu.Lock(); got = append(got, ev); mu.Unlock() })()

	cfg := testConfig()
	cfg.Trigger = &id
	host := hosttest.With(map[component.ID]component.Component{id: ext})
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), new(consumertest.LogsSink))
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })

	deploy := map[string]any{"type": "deployed", "id": "d-1", "service": "payments-api", "endpoints": []string{"api.example.com:443"}}
	require.Equal(t, http.StatusOK, post(t, r, "application/json", mustJSON(deploy), nil).status)
	require.Equal(t, http.StatusOK, post(t, r, "application/json", mustJSON(deploy), nil).status) // duplicate
	require.Equal(t, http.StatusOK, post(t, r, "application/json", mustJSON(map[string]any{"type": "issued", "id": "i-1", "service": "payments-api"}), nil).status)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []trigger.Event{{Type: "deployed", Service: "payments-api", Endpoints: []string{"api.example.com:443"}}}, got)

	// A trigger that is not configured fails the start.
	missing := component.MustNewIDWithName("certpulse_trigger", "nope")
	cfg2 := testConfig()
	cfg2.Trigger = &missing
	r2, err := newReceiver(cfg2, receivertest.NewNopSettings(metadata.Type), new(consumertest.LogsSink))
	require.NoError(t, err)
	assert.ErrorContains(t, r2.Start(context.Background(), host), "certpulse_trigger/nope is not configured")
}
