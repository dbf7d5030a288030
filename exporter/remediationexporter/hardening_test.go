package remediationexporter

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/storage/storagetest"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/xextension/storage"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
)

// TestRiskIsTheMaximum: `risk: low` on an action or a policy never lowers a
// high-risk operation below the approval gate, and config validation says so.
func TestRiskIsTheMaximum(t *testing.T) {
	p := PolicyConfig{Name: "p", Risk: "low", Actions: []ActionConfig{{Name: "a", Type: "webhook", Operation: "pins", Risk: "low", URL: "http://127.0.0.1:1/"}}}
	assert.Equal(t, attrs.RiskHigh, risk(&p, &p.Actions[0]), "pins stay high-risk whatever risk says")
	p.Actions[0].Operation, p.Actions[0].Risk = "reload", "high"
	assert.Equal(t, attrs.RiskHigh, risk(&p, &p.Actions[0]), "an action may raise its risk")
	p.Actions[0].Risk, p.Risk = "", "high"
	assert.Equal(t, attrs.RiskHigh, risk(&p, &p.Actions[0]), "a policy may raise every action's risk")

	cfg := testConfig(PolicyConfig{Name: "pin-push", Actions: []ActionConfig{{Name: "push", Type: "webhook", Operation: "trust", Risk: "low", URL: "http://127.0.0.1:1/"}}})
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), `risk "low" cannot lower operation "trust", which is high-risk (trust, pins, delete need approval)`)
}

// TestBodyMustBeValidJSON: a template that interpolates certificate or
// lifecycle text into a JSON string without the json function produces a
// body that is not JSON: it is refused (audited failed), never sent; with
// {{json ...}} the same data goes out intact.
func TestBodyMustBeValidJSON(t *testing.T) {
	hook := newHookServer(t)
	bad := webhookPolicy("naive", hook.URL, "reload")
	bad.Actions[0].Body = `{"summary":"{{.Incident.Summary}}"}`
	bad.Reasons = []string{"expired_leaf"}
	good := webhookPolicy("safe", hook.URL, "reload")
	good.Actions[0].Body = `{"summary":{{json .Incident.Summary}}}`
	good.Reasons = []string{"revoked"}
	cfg := testConfig(bad, good)
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())
	inc := incident("inc-1", attrs.StateOpened, attrs.SeverityAlert)
	inc.Summary = `expired leaf CN="evil", "injected":true, x="`
	e.send(t, inc)
	assert.Empty(t, hook.calls(), "an invalid JSON body is never sent")
	assert.Equal(t, []string{"matched", "failed"}, decisions(audit))
	assert.Contains(t, auditMessages(audit)[1], "body is not valid JSON")

	inc2 := inc
	inc2.ID, inc2.Reason = "inc-2", "revoked"
	e.send(t, inc2)
	require.Len(t, hook.calls(), 1)
	assert.JSONEq(t, `{"summary":"expired leaf CN=\"evil\", \"injected\":true, x=\""}`, hook.bodies[0])
}

// TestVerifyNeedsTheSameReason re-probes real lab endpoints for an
// expired_leaf incident: a different certificate problem is not a
// reproduction, and a network failure from this collector is inconclusive
// (held unless the policy says on_inconclusive: act).
func TestVerifyNeedsTheSameReason(t *testing.T) {
	lab, err := faultlab.Start()
	require.NoError(t, err)
	t.Cleanup(lab.Close)
	files, err := lab.WriteFiles(t.TempDir())
	require.NoError(t, err)
	target := func(name string) string {
		ep, ok := lab.Endpoint(name)
		require.True(t, ok, name)
		return ep.ServerName + "@" + ep.Address
	}
	hook := newHookServer(t)
	hold := webhookPolicy("hold", hook.URL, "reload")
	hold.Verify, hold.Services = nil, []string{"payments"}
	act := webhookPolicy("act", hook.URL, "reload")
	act.Verify, act.Services, act.OnInconclusive = nil, []string{"edge"}, "act"
	cfg := testConfig(hold, act)
	cfg.Verify.TLS.CAFile = files.Roots
	cfg.Verify.AllowPrivateFetchNetworks = []string{"127.0.0.0/8"}
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())

	other := incident("inc-other", attrs.StateOpened, attrs.SeverityPage)
	other.Targets = []string{target("hostname-mismatch")}
	e.send(t, other)
	refused := incident("inc-refused", attrs.StateOpened, attrs.SeverityPage)
	refused.Targets = []string{target("refused")}
	e.send(t, refused)
	assert.Empty(t, hook.calls(), "neither a different reason nor an unreachable endpoint reproduces expired_leaf")
	assert.Equal(t, []string{"matched", "not_reproduced", "matched", "inconclusive"}, decisions(audit))

	edge := incident("inc-edge", attrs.StateOpened, attrs.SeverityPage)
	edge.Service, edge.Targets = "edge", []string{target("refused")}
	e.send(t, edge)
	assert.Equal(t, []string{"inc-edge:reload:1"}, hook.calls(), "on_inconclusive: act")
}

// brokenStorage is a storage extension whose writes fail: a full disk.
type brokenStorage struct {
	component.StartFunc
	component.ShutdownFunc
}

func (brokenStorage) GetClient(context.Context, component.Kind, component.ID, string) (storage.Client, error) {
	return brokenClient{}, nil
}

type brokenClient struct{}

func (brokenClient) Get(context.Context, string) ([]byte, error) { return nil, nil }
func (brokenClient) Set(context.Context, string, []byte) error {
	return errors.New("no space left on device")
}
func (brokenClient) Delete(context.Context, string) error { return nil }
func (brokenClient) Close(context.Context) error          { return nil }
func (brokenClient) Batch(_ context.Context, ops ...*storage.Operation) error {
	for _, op := range ops {
		if op.Type == storage.Set {
			return errors.New("no space left on device")
		}
	}
	return nil
}

// TestPersistBeforeActFailsClosed: when the state write before an action
// fails, the action does not run (a restart could otherwise run it again);
// the decision is audited failed, and the attempt is not spent.
func TestPersistBeforeActFailsClosed(t *testing.T) {
	hook := newHookServer(t)
	cfg := testConfig(webhookPolicy("reload", hook.URL, "reload"))
	audit := auditSink(t, cfg)
	sid := component.MustNewID("file_storage")
	cfg.Storage = &sid
	host := hosttest.With(map[component.ID]component.Component{sid: brokenStorage{}})
	e := startExporter(t, cfg, host)
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	assert.Empty(t, hook.calls(), "nothing runs without its state persisted")
	assert.Equal(t, []string{"matched", "failed"}, decisions(audit))
	assert.Contains(t, auditMessages(audit)[1], "state not persisted")
	assert.Zero(t, e.r.st.incident("inc-1").Attempts, "the attempt is not spent")
}

// TestKillBetweenPersistAndCall: the process dies the moment a webhook
// call leaves (its storage is cut off then: what was persisted is all a
// restart finds). After the restart, neither the plain attempt nor the
// approved high-risk action runs again, and the consumed approval cannot be
// approved a second time.
func TestKillBetweenPersistAndCall(t *testing.T) {
	dir := t.TempDir()
	hook := newHookServer(t)
	low := webhookPolicy("reload", hook.URL, "reload")
	low.Reasons = []string{"expired_leaf"}
	high := webhookPolicy("pins", hook.URL, "pins")
	high.Reasons = []string{"pin_mismatch"}
	cfg := testConfig(low, high)
	cfg.Approval = configoptional.Some(approvalConfig(t))
	sid := storagetest.NewStorageID("state")
	cfg.Storage = &sid
	start := func() *remediator {
		host := storagetest.NewStorageHost().WithFileBackedStorageExtension("state", dir)
		r, err := newRemediator(cfg, exportertestSettings())
		require.NoError(t, err)
		require.NoError(t, r.start(context.Background(), host))
		t.Cleanup(func() { _ = r.shutdown(context.Background()) })
		return r
	}
	first := start()
	kill := func() { _ = first.client.Close(context.Background()) } // nothing persists after this
	hook.mu.Lock()
	hook.onRequest = kill
	hook.mu.Unlock()

	require.NoError(t, first.push(context.Background(), incidentLogs(incident("inc-low", attrs.StateOpened, attrs.SeverityAlert))))
	first.waitIdle()
	require.Equal(t, []string{"inc-low:reload:1"}, hook.calls())

	// A second process (the first "died" at the call): the high-risk
	// action is held, approved, and dies at its call too.
	second := start()
	first = second
	pin := incident("inc-pin", attrs.StateOpened, attrs.SeverityPage)
	pin.Reason = "pin_mismatch"
	require.NoError(t, second.push(context.Background(), incidentLogs(pin)))
	second.waitIdle()
	pend := second.pendingList()
	require.Len(t, pend, 1)
	_, err := second.decide(context.Background(), pend[0].ID, true, "alice", "go")
	require.Equal(t, http.StatusOK, decisionStatus(err))
	require.Equal(t, []string{"inc-low:reload:1", "inc-pin:reload:1"}, hook.calls())

	// The third process sees what was persisted before each call.
	hook.mu.Lock()
	hook.onRequest = nil
	hook.mu.Unlock()
	third := start()
	assert.Empty(t, third.pendingList(), "the consumed approval was persisted before the call")
	_, err = third.decide(context.Background(), pend[0].ID, true, "alice", "again")
	assert.Equal(t, http.StatusNotFound, decisionStatus(err))
	require.NoError(t, third.push(context.Background(), incidentLogs(incident("inc-low", attrs.StateOpened, attrs.SeverityAlert), pin)))
	third.waitIdle()
	assert.Len(t, hook.calls(), 2, "no attempt runs twice after the restart")
}

// TestWebhookUsesConfighttpClient: an action's client settings come from
// confighttp: an HTTPS webhook that demands a client certificate (mTLS) is
// called with the action's tls settings and headers; without the
// certificate the call fails and is audited.
func TestWebhookUsesConfighttpClient(t *testing.T) {
	nf, err := faultlab.WriteNodeFiles(t.TempDir())
	require.NoError(t, err)
	clientCAs := x509.NewCertPool()
	caPEM, err := os.ReadFile(nf.CAFile)
	require.NoError(t, err)
	require.True(t, clientCAs.AppendCertsFromPEM(caPEM))
	var mu sync.Mutex
	var seen []string
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		defer mu.Unlock()
		seen = append(seen, r.TLS.PeerCertificates[0].Subject.CommonName+" "+r.Header.Get("X-Team"))
		w.WriteHeader(http.StatusNoContent)
	}))
	srv.TLS = &tls.Config{ClientAuth: tls.RequireAndVerifyClientCert, ClientCAs: clientCAs, MinVersion: tls.VersionTLS12}
	srv.StartTLS()
	t.Cleanup(srv.Close)
	serverCA := filepath.Join(t.TempDir(), "server-ca.pem")
	require.NoError(t, os.WriteFile(serverCA, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw}), 0o600))

	withCert := webhookPolicy("mtls", srv.URL, "reload")
	withCert.Reasons = []string{"expired_leaf"}
	a := &withCert.Actions[0]
	a.TLS.CAFile = serverCA
	a.TLS.CertFile = filepath.Join(nf.Dir, "kubelet-client-current.pem")
	a.TLS.KeyFile = a.TLS.CertFile
	a.Headers.Set("X-Team", "payments")
	noCert := webhookPolicy("no-cert", srv.URL, "reload")
	noCert.Reasons = []string{"revoked"}
	noCert.Actions[0].TLS.CAFile = serverCA
	cfg := testConfig(withCert, noCert)
	cfg.ActionRetry.MaxElapsedTime = 200 * time.Millisecond
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityAlert))
	inc := incident("inc-2", attrs.StateOpened, attrs.SeverityAlert)
	inc.Reason = "revoked"
	e.send(t, inc)
	mu.Lock()
	assert.Equal(t, []string{"system:node:lab-node payments"}, seen, "called once, with the client certificate and the header")
	mu.Unlock()
	assert.Equal(t, []string{"matched", "sent", "matched", "failed"}, decisions(audit))
}

// blackhole accepts connections on 127.0.0.1 and never answers.
func blackhole(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		_ = ln.Close()
		mu.Lock()
		for _, c := range conns {
			_ = c.Close()
		}
		mu.Unlock()
	})
	return ln.Addr().String()
}

// TestNoIOUnderTheLock: with the audit endpoint blackholed and one webhook
// hanging, another incident's webhook still fires within a second and
// the approval page answers within a second.
func TestNoIOUnderTheLock(t *testing.T) {
	// The slow webhook never answers.
	slowURL := "http://" + blackhole(t) + "/hooks/reload"
	fast := newHookServer(t)
	ps := webhookPolicy("slow", slowURL, "reload")
	ps.Services = []string{"slow-svc"}
	ps.Actions[0].Timeout = 3 * time.Second // hangs far past the assertions below
	pf := webhookPolicy("fast", fast.URL, "reload")
	pf.Services = []string{"fast-svc"}
	cfg := testConfig(ps, pf)
	cfg.Approval = configoptional.Some(approvalConfig(t))
	token := withBearer(t, cfg)
	cc := confighttp.NewDefaultClientConfig()
	cc.Endpoint = "http://" + blackhole(t) + "/v1/lifecycle"
	cfg.Audit = configoptional.Some(AuditConfig{ClientConfig: cc})
	e := startExporter(t, cfg, token.host)

	a := incident("inc-slow", attrs.StateOpened, attrs.SeverityAlert)
	a.Service = "slow-svc"
	b := incident("inc-fast", attrs.StateOpened, attrs.SeverityAlert)
	b.Service = "fast-svc"
	done := make(chan struct{})
	go func() {
		defer close(done)
		_ = e.r.push(context.Background(), incidentLogs(a, b)) // one batch: slow first
	}()
	start := time.Now()
	require.Eventually(t, func() bool { return len(fast.calls()) == 1 }, time.Second, 10*time.Millisecond, "the other incident's webhook waits for the slow one")
	t.Logf("second webhook after %s", time.Since(start).Round(time.Millisecond))
	start = time.Now()
	req, _ := http.NewRequest(http.MethodGet, "http://"+e.r.approvalAddr+"/api/v1/pending", nil)
	req.Header.Set("Authorization", "Bearer "+token.value)
	c := &http.Client{Timeout: 5 * time.Second}
	res, err := c.Do(req)
	require.NoError(t, err)
	res.Body.Close()
	assert.Equal(t, http.StatusOK, res.StatusCode)
	assert.Less(t, time.Since(start), time.Second, "the approval API answers while a webhook and the audit endpoint hang")
}

// TestAuthRequiredOffLoopback: the approval server without auth validates
// only on a loopback address; approvals are attributed to who
// authenticated, a typed `by` is only a comment.
func TestAuthRequiredOffLoopback(t *testing.T) {
	cfg := testConfig(webhookPolicy("p", "http://127.0.0.1:1/", "reload"))
	ac := approvalConfig(t)
	ac.Auth = configoptional.None[confighttp.AuthConfig]()
	ac.NetAddr.Endpoint = "0.0.0.0:4381"
	cfg.Approval = configoptional.Some(ac)
	err := cfg.Validate()
	require.Error(t, err)
	assert.Contains(t, err.Error(), "approval.auth is required when listening on 0.0.0.0:4381")
	ac.NetAddr.Endpoint = "127.0.0.1:0"
	cfg.Approval = configoptional.Some(ac)
	assert.NoError(t, cfg.Validate())

	hook := newHookServer(t)
	cfg = testConfig(webhookPolicy("pins", hook.URL, "pins"))
	cfg.Approval = configoptional.Some(approvalConfig(t))
	token := withBearer(t, cfg)
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, token.host)
	e.send(t, incident("inc-1", attrs.StateOpened, attrs.SeverityPage))
	id := e.r.pendingList()[0].ID
	res := apiPost(t, e.r, "/api/v1/pending/"+id+"/approve", `{"by":"the CEO","why":"go"}`, token.value)
	require.Equal(t, http.StatusOK, res.StatusCode)
	var approved string
	for _, m := range auditMessages(audit) {
		if strings.HasPrefix(strings.SplitN(m, ": ", 2)[0], "payments remediation") && strings.Contains(m, "approved") {
			approved = m
		}
	}
	assert.Contains(t, approved, "(by authenticated client)", "the approver is who authenticated")
	assert.Contains(t, approved, "comment: by the CEO", "a typed name is kept as a comment")
}

// TestThroughTheFactory runs the exporter as the collector builds it:
// exporterhelper with its default sending_queue. Incidents handed to it are
// decided and acted on from the queue, and shutdown drains the queue and
// waits for actions in flight, so nothing accepted is lost.
func TestThroughTheFactory(t *testing.T) {
	hook := newHookServer(t)
	hook.delay = 50 * time.Millisecond
	cfg := createDefaultConfig()
	cfg.Policies = []PolicyConfig{webhookPolicy("reload", hook.URL, "reload")}
	require.True(t, cfg.QueueSettings.HasValue(), "the default config queues")
	f := NewFactory()
	exp, err := f.CreateLogs(context.Background(), exportertestSettings(), cfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	for i := 0; i < 5; i++ {
		require.NoError(t, exp.ConsumeLogs(context.Background(), incidentLogs(incident(fmt.Sprintf("inc-%d", i), attrs.StateOpened, attrs.SeverityAlert))))
	}
	require.NoError(t, exp.Shutdown(context.Background()))
	assert.ElementsMatch(t, []string{"inc-0:reload:1", "inc-1:reload:1", "inc-2:reload:1", "inc-3:reload:1", "inc-4:reload:1"}, hook.calls(),
		"every queued incident acted on before shutdown returned")
}
