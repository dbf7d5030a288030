package remediationexporter

import (
	"context"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/certpulse/certpulse/internal/attrs"
)

type bearer struct {
	host  hosttest.Host
	value string
}

func approvalConfig(t *testing.T) ApprovalConfig {
	s := confighttp.NewDefaultServerConfig()
	s.NetAddr.Endpoint = "127.0.0.1:0"
	return ApprovalConfig{ServerConfig: s, TTL: time.Hour}
}

// withBearer puts the approval server behind a real bearertokenauth extension.
func withBearer(t *testing.T, cfg *Config) bearer {
	f := bearertokenauthextension.NewFactory()
	ecfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
	ecfg.BearerToken = configopaque.String("operator-token")
	id := component.MustNewID("bearertokenauth")
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), ecfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	a := cfg.Approval.Get()
	a.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: id}})
	return bearer{host: hosttest.With(map[component.ID]component.Component{id: ext}), value: "operator-token"}
}

// TestApprovalRefusesCrossOriginPosts: a page on another origin cannot make
// an operator's browser approve or release the brake (CSRF).
func TestApprovalRefusesCrossOriginPosts(t *testing.T) {
	hook := newHookServer(t)
	cfg := testConfig(webhookPolicy("pins", hook.URL, "pins"))
	cfg.Approval = configoptional.Some(approvalConfig(t))
	token := withBearer(t, cfg)
	e := startExporter(t, cfg, token.host)
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityPage))
	pend := e.r.pendingList()
	require.Len(t, pend, 1)
	form := url.Values{"id": {pend[0].ID}, "decision": {"approve"}, "by": {"mallory"}}
	req, _ := http.NewRequest(http.MethodPost, "http://"+e.r.approvalAddr+"/ui/decide", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", "Bearer "+token.value)
	req.Header.Set("Origin", "https://evil.example")
	req.Header.Set("Sec-Fetch-Site", "cross-site")
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusForbidden, res.StatusCode)
	assert.Empty(t, hook.calls())
	assert.Len(t, e.r.pendingList(), 1, "still held")
}
