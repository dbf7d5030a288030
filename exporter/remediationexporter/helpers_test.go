package remediationexporter

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/exporter"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/exporter/remediationexporter/internal/metadata"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/records"
	"github.com/certpulse/certpulse/internal/signature"
)

const hookSecret = "hook-secret-0123456789"

// hookServer is a real webhook receiver on 127.0.0.1 that checks the
// signature and records every delivery.
type hookServer struct {
	*httptest.Server
	mu       sync.Mutex
	keys     []string
	bodies   []string
	badSig   int
	failNext int           // answer 500 this many times
	delay    time.Duration // sleep before answering
	// onRequest runs when a request arrives, before it is answered.
	onRequest func()
}

func newHookServer(t *testing.T) *hookServer {
	h := &hookServer{}
	h.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		h.mu.Lock()
		if r.Header.Get(signature.SignatureHeader) != signature.Value([]byte(hookSecret), r.Header.Get(signature.TimestampHeader), body) {
			h.badSig++
		}
		h.keys = append(h.keys, r.Header.Get(HeaderIdempotencyKey))
		h.bodies = append(h.bodies, string(body))
		fail := h.failNext > 0
		if fail {
			h.failNext--
		}
		delay, on := h.delay, h.onRequest
		h.mu.Unlock()
		if on != nil {
			on()
		}
		time.Sleep(delay)
		if fail {
			w.WriteHeader(http.StatusInternalServerError)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(h.Close)
	return h
}

func (h *hookServer) calls() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.keys...)
}

func webhookPolicy(name, url, operation string) PolicyConfig {
	f := false
	return PolicyConfig{Name: name, Verify: &f, Actions: []ActionConfig{{Name: "reload", Type: "webhook", Operation: operation, URL: url, HMACSecret: hookSecret,
		Body: `{"incident":"{{.Incident.ID}}","service":"{{.Incident.Service}}","key":"{{.IdempotencyKey}}"}`}}}
}

func testConfig(policies ...PolicyConfig) *Config {
	cfg := createDefaultConfig()
	cfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	cfg.Policies = policies
	cfg.ActionRetry.InitialInterval = 10 * time.Millisecond
	cfg.ActionRetry.MaxInterval = 50 * time.Millisecond
	cfg.ActionRetry.MaxElapsedTime = 2 * time.Second
	cfg.TrailSecret = testTrailSecret // the deployment's remediation exporters share it
	return cfg
}

const testTrailSecret = "trail-secret-0123456789"

type testExporter struct {
	exporter.Logs
	r *remediator
}

// startExporter builds the exporter through its factory (queue disabled so
// push is synchronous) and exposes its remediator.
func startExporter(t *testing.T, cfg *Config, host component.Host) *testExporter {
	t.Helper()
	require.NoError(t, cfg.Validate())
	set := exportertest.NewNopSettings(metadata.Type)
	r, err := newRemediator(cfg, set)
	require.NoError(t, err)
	require.NoError(t, r.start(context.Background(), host))
	t.Cleanup(func() { _ = r.shutdown(context.Background()) })
	return &testExporter{r: r}
}

func (e *testExporter) send(t *testing.T, incs ...Incident) {
	t.Helper()
	require.NoError(t, e.r.push(context.Background(), incidentLogs(incs...)))
	e.r.waitIdle() // actions run and audits post in the background
}

// incidentLogs renders incidents as the correlator emits them: through the
// one codec both components share.
func incidentLogs(incs ...Incident) plog.Logs {
	ld := plog.NewLogs()
	for i := range incs {
		inc := incs[i]
		if inc.Time.IsZero() {
			inc.Time = time.Now()
		}
		records.AppendIncident(ld, "test", &inc)
	}
	// noise the exporter must ignore
	ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords().AppendEmpty().SetEventName(attrs.EventProbeResult)
	return ld
}

func incident(id string, state attrs.State, severity attrs.SeverityLevel) Incident {
	return Incident{ID: id, State: state, Severity: severity, Reason: "expired_leaf", Service: "payments", Environment: "prod", Owner: "team-pay", Summary: "[" + string(severity) + "] " + string(state) + " expired_leaf on payments", Endpoints: []string{"api.example.com:443"}}
}

func nopHost() component.Host { return componenttest.NewNopHost() }

// exportertestSettings has a stable ID: storage is keyed by it, so a
// restarted exporter finds its state.
func exportertestSettings() exporter.Settings {
	set := exportertest.NewNopSettings(metadata.Type)
	set.ID = component.NewID(metadata.Type)
	return set
}
