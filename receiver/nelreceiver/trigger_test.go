package nelreceiver

import (
	"context"
	"net/http"
	"strings"
	"sync"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/extension/triggerextension"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"github.com/certpulse/certpulse/internal/trigger"
	"github.com/certpulse/certpulse/receiver/nelreceiver/internal/metadata"
)

// TestFailureReportFiresTrigger: a failure report fires the trigger for
// its service once per trigger_interval; a success report does not.
func TestFailureReportFiresTrigger(t *testing.T) {
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
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), new(consumertest.LogsSink))
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), hosttest.With(map[component.ID]component.Component{id: ext})))
	t.Cleanup(func() { _ = r.Shutdown(context.Background()) })
	u := "http://" + r.addr + cfg.Path

	okReport := `{"type":"network-error","url":"https://app.test/","body":{"type":"ok","status_code":200}}`
	resp, _ := send(t, http.MethodPost, u, "", reportsType, "["+okReport+"]")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	resp, _ = send(t, http.MethodPost, u, "", reportsType, "["+chromeReport+"]")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	other := strings.Replace(chromeReport, "date_invalid", "authority_invalid", 1)
	resp, _ = send(t, http.MethodPost, u, "", reportsType, "["+other+"]")
	require.Equal(t, http.StatusNoContent, resp.StatusCode)
	mu.Lock()
	defer mu.Unlock()
	assert.Equal(t, []trigger.Event{{Type: trigger.EdgeFailures, Service: "app"}}, got, "once per trigger_interval")
}
