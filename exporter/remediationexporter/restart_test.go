package remediationexporter

import (
	"context"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"net/http"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/filestorage"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/certpulse/certpulse/internal/attrs"
)

// collector is one run of the exporter on a real file_storage directory:
// restart = stop it and start another on the same directory.
type collector struct {
	e    *testExporter
	stop func()
}

func startCollector(t *testing.T, cfg *Config, dir string, withAuth bool) (*collector, bearer) {
	t.Helper()
	f := filestorage.NewFactory()
	scfg := f.CreateDefaultConfig().(*filestorage.Config)
	scfg.Directory = dir
	sid := component.MustNewID("file_storage")
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), scfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	host := hosttest.With(map[component.ID]component.Component{sid: ext})
	var tok bearer
	if withAuth {
		tok = withBearer(t, cfg)
		for id, x := range tok.host.Ext {
			host.Ext[id] = x
		}
		tok.host = host
	}
	cfg.Storage = &sid
	require.NoError(t, cfg.Validate())
	r, err := newRemediator(cfg, exportertestSettings())
	require.NoError(t, err)
	require.NoError(t, r.start(context.Background(), host))
	c := &collector{e: &testExporter{r: r}}
	stopped := false
	c.stop = func() {
		if stopped {
			return
		}
		stopped = true
		require.NoError(t, r.shutdown(context.Background()))
		require.NoError(t, ext.Shutdown(context.Background()))
	}
	t.Cleanup(c.stop)
	return c, tok
}

// TestRestartMidCooldown: an action ran, the collector restarts within the
// cooldown; the same incident escalating again does not run it twice, and
// the attempt counter continues after the cooldown.
func TestRestartMidCooldown(t *testing.T) {
	dir := t.TempDir()
	hook := newHookServer(t)
	mk := func() *Config {
		cfg := testConfig(webhookPolicy("p", hook.URL, "reload"))
		cfg.Guardrails.Cooldown = 10 * time.Minute
		return cfg
	}
	now := time.Now()
	c1, _ := startCollector(t, mk(), dir, false)
	c1.e.r.setNow(func() time.Time { return now })
	c1.e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	require.Equal(t, []string{"inc-1:reload:1"}, hook.calls())
	c1.stop()

	c2, _ := startCollector(t, mk(), dir, false)
	c2.e.r.setNow(func() time.Time { return now.Add(time.Minute) })
	c2.e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert)) // redelivered from the queue
	c2.e.send(t, incident("inc-1", attrs.StateEscalated, attrs.SeverityPage))
	assert.Equal(t, []string{"inc-1:reload:1"}, hook.calls(), "cooldown survived the restart")
	c2.e.r.setNow(func() time.Time { return now.Add(11 * time.Minute) })
	c2.e.send(t, incident("inc-1", attrs.StateEscalated, attrs.SeverityPage))
	assert.Equal(t, []string{"inc-1:reload:1", "inc-1:reload:2"}, hook.calls(), "attempts continue, keys never reused")
}

// TestRestartWithPendingApproval: a held high-risk action survives a
// restart (neither lost nor duplicated) and runs once when approved; the
// brake survives too.
func TestRestartWithPendingApproval(t *testing.T) {
	dir := t.TempDir()
	hook := newHookServer(t)
	mk := func() *Config {
		cfg := testConfig(webhookPolicy("pins", hook.URL, "pins"))
		cfg.Approval = configoptional.Some(approvalConfig(t))
		return cfg
	}
	c1, _ := startCollector(t, mk(), dir, true)
	c1.e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityPage))
	before := c1.e.r.pendingList()
	require.Len(t, before, 1)
	c1.e.r.mu.Lock()
	c1.e.r.engageBrakeLocked(context.Background(), "test", "tester")
	c1.e.r.saveLocked(context.Background())
	c1.e.r.mu.Unlock()
	c1.stop()

	c2, tok := startCollector(t, mk(), dir, true)
	after := c2.e.r.pendingList()
	require.Len(t, after, 1, "pending approval not lost")
	assert.Equal(t, before[0].ID, after[0].ID)
	assert.True(t, c2.e.r.brakeState().Engaged, "brake survived the restart")
	c2.e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityPage)) // redelivery
	assert.Len(t, c2.e.r.pendingList(), 1, "not duplicated by a redelivered record")

	res := apiPost(t, c2.e.r, "/api/v1/pending/"+after[0].ID+"/approve", `{"by":"alice"}`, tok.value)
	assert.Equal(t, http.StatusConflict, res.StatusCode, "brake engaged: approval does not run")
	assert.Empty(t, hook.calls())
	assert.Len(t, c2.e.r.pendingList(), 1, "the action stays held")

	// After another restart: the operator releases the brake, then approves.
	c2.stop()
	c3, tok := startCollector(t, mk(), dir, true)
	res = apiPost(t, c3.e.r, "/api/v1/brake/release", `{"by":"alice","why":"ok"}`, tok.value)
	require.Equal(t, http.StatusOK, res.StatusCode)
	c3.e.r.setNow(func() time.Time { return time.Now().Add(time.Hour) }) // past the cooldown
	c3.e.send(t, incident("inc-1", attrs.StateEscalated, attrs.SeverityPage))
	p := c3.e.r.pendingList()
	require.Len(t, p, 1, "no second approval piles up for the same incident")
	c3.e.r.setNow(time.Now)
	res = apiPost(t, c3.e.r, "/api/v1/pending/"+p[0].ID+"/approve", `{"by":"alice"}`, tok.value)
	require.Equal(t, http.StatusOK, res.StatusCode)
	c3.stop()
	c4, _ := startCollector(t, mk(), dir, true)
	assert.Empty(t, c4.e.r.pendingList())
	assert.Equal(t, []string{"inc-1:reload:1"}, hook.calls(), "ran once, the attempt that was approved")
}
