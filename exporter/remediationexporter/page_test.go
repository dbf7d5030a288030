package remediationexporter

import (
	"context"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"io"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/basicauthextension"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensiontest"

	"github.com/certpulse/certpulse/internal/attrs"
)

// withBasicAuth puts the approval server behind a real basicauth extension
// (what a browser speaks); the username is the audited identity.
func withBasicAuth(t *testing.T, cfg *Config) component.Host {
	f := basicauthextension.NewFactory()
	ecfg := f.CreateDefaultConfig().(*basicauthextension.Config)
	ecfg.Htpasswd = &basicauthextension.HtpasswdSettings{Inline: "alice:wonderland"}
	id := component.MustNewID("basicauth")
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), ecfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	cfg.Approval.Get().Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: id}})
	return hosttest.With(map[component.ID]component.Component{id: ext})
}

// browser starts headless Chromium (Debian's chromium) through chromedp.
func browser(t *testing.T) context.Context {
	bin := proxytest.Need(t, "chromium", "chromium-browser", "google-chrome")
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.UserDataDir(t.TempDir()), chromedp.Flag("disable-dev-shm-usage", true))
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	ctx, cancelT := context.WithTimeout(ctx, 90*time.Second)
	t.Cleanup(func() { cancelT(); cancelC(); cancelA() })
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start chromium")
	return ctx
}

// TestApprovalPageInChromium drives the approval page: unauthenticated
// access is refused; an operator approves one held action (it fires) and
// denies another (it does not).
func TestApprovalPageInChromium(t *testing.T) {
	hook := newHookServer(t)
	cfg := testConfig(webhookPolicy("pins", hook.URL, "pins"))
	cfg.Approval = configoptional.Some(approvalConfig(t))
	host := withBasicAuth(t, cfg)
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, host)
	a := incident("inc-a", attrs.StateOpened, attrs.SeverityPage)
	b := incident("inc-b", attrs.StateOpened, attrs.SeverityPage)
	b.Service = "checkout"
	e.send(t, a, b)
	ids := map[string]string{}
	for _, p := range e.r.pendingList() {
		ids[p.IncidentID] = p.ID
	}
	require.Len(t, ids, 2)
	url := "http://" + e.r.approvalAddr + "/"

	// No credentials: refused with a Basic challenge (what makes a browser
	// ask for the user and password), nothing listed.
	res, err := http.Get(url)
	require.NoError(t, err)
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assert.Equal(t, http.StatusUnauthorized, res.StatusCode)
	assert.Equal(t, `Basic realm="certpulse approvals", charset="UTF-8"`, res.Header.Get("WWW-Authenticate"))
	assert.NotContains(t, string(body), "checkout")

	// The operator logs in as a person does: the browser answers the
	// challenge with the user and password (given in the URL here, as a
	// password manager or the prompt would).
	ctx := browser(t)
	rowA, rowB := "#p-"+ids["inc-a"], "#p-"+ids["inc-b"]
	require.NoError(t, chromedp.Do(ctx,
		chromedp.Navigate("http://alice:wonderland@"+e.r.approvalAddr+"/"),
		chromedp.WaitVisible(chromedp.CSS(rowA)),
	))
	signedIn, err := chromedp.Run(ctx, innerText("#who"))
	require.NoError(t, err)
	assert.Contains(t, signedIn, "Signed in as alice")
	text, err := chromedp.Run(ctx, innerText("#pending"))
	require.NoError(t, err)
	assert.Contains(t, text, "payments")
	assert.Contains(t, text, "checkout")
	assert.Contains(t, text, "pins")
	require.NoError(t, chromedp.Do(ctx,
		chromedp.SendKeys(chromedp.CSS(rowA+" input[name=why]"), "pins rotated by hand first"),
		chromedp.Click(chromedp.CSS(rowA+" button.approve")),
		chromedp.WaitVisible(chromedp.ID("result")),
	))
	result, err := chromedp.Run(ctx, innerText("#result"))
	require.NoError(t, err)
	assert.Equal(t, "approved and sent", strings.TrimSpace(result))
	assert.Equal(t, []string{"inc-a:reload:1"}, hook.calls(), "approved: the action fired")

	require.NoError(t, chromedp.Do(ctx,
		chromedp.Click(chromedp.CSS(rowB+" button.deny")),
		chromedp.WaitVisible(chromedp.ID("none")),
	))
	result, err = chromedp.Run(ctx, innerText("#result"))
	require.NoError(t, err)
	assert.Equal(t, "denied", strings.TrimSpace(result))
	assert.Equal(t, []string{"inc-a:reload:1"}, hook.calls(), "denied: nothing more fired")
	assert.Empty(t, e.r.pendingList())

	var by []string
	for _, m := range auditMessages(audit) {
		if strings.Contains(m, "(by ") {
			by = append(by, m)
		}
	}
	require.Len(t, by, 3, "approved, sent, denied carry who")
	for _, m := range by {
		assert.Contains(t, m, "(by alice)")
	}
}

// innerText reads an element's text by script: it reads the document as it
// is now, without node ids a navigation can invalidate.
func innerText(css string) chromedp.Action[string] {
	return chromedp.Evaluate[string](`document.querySelector(` + strconv.Quote(css) + `).innerText`)
}
