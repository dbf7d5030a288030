package certlifecyclereceiver

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// The ready-made senders in distributions/otelcol-certpulse/hooks, run with
// sh, curl and openssl against the real receiver (bearer token + HMAC).
const hooksDir = "../../distributions/otelcol-certpulse/hooks"

func runHook(t *testing.T, r *lifecycleReceiver, env []string, name string, args ...string) (string, error) {
	t.Helper()
	// Skipped where the tools are missing, a failure in CI, which
	// installs them.
	for _, tool := range []string{"sh", "curl", "openssl", "jq"} {
		proxytest.Need(t, tool)
	}
	cmd := exec.Command(filepath.Join(hooksDir, name), args...)
	cmd.Env = append(os.Environ(),
		"CERTPULSE_URL=http://"+r.addr+r.cfg.Path,
		"CERTPULSE_TOKEN=s3cr3t-hooks",
		"CERTPULSE_HMAC_SECRET="+testSecret,
		"CERTPULSE_RETRY_SLEEP=0",
	)
	cmd.Env = append(cmd.Env, env...)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

func TestHookCertbotAndLego(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.HMAC.Secret = testSecret
	r := start(t, cfg, sink, "hooks")
	pemText, cert := testCertPEM(t)
	dir := t.TempDir()
	require.NoError(t, os.WriteFile(filepath.Join(dir, "cert.pem"), []byte(pemText), 0o600))

	env := []string{"RENEWED_LINEAGE=" + dir, "RENEWED_DOMAINS=api.example.com www.example.com", "CERTPULSE_SERVICE=payments-api", "CERTPULSE_ENVIRONMENT=prod"}
	out, err := runHook(t, r, env, "certbot-deploy-hook.sh")
	require.NoError(t, err, out)
	out, err = runHook(t, r, env, "certbot-deploy-hook.sh")
	require.NoError(t, err, out)
	assert.Contains(t, out, `"duplicates":1`)

	out, err = runHook(t, r, []string{"LEGO_CERT_PATH=" + filepath.Join(dir, "cert.pem"), "LEGO_CERT_DOMAIN=api.example.com"}, "certbot-deploy-hook.sh")
	require.NoError(t, err, out)

	recs := records(sink)
	require.Len(t, recs, 3)
	lr := recs[0]
	assert.Equal(t, "certpulse.lifecycle.renewed", lr.EventName())
	assert.Equal(t, tlsinspect.CertSHA256(cert), attr(lr, attrs.TLSServerHash))
	assert.Equal(t, `["api.example.com:443","www.example.com:443"]`, attr(lr, attrs.LifecycleEndpoints))
	assert.Equal(t, "certbot", attr(lr, attrs.LifecycleSource))
	assert.Equal(t, "false", attr(lr, attrs.LifecycleDuplicate))
	assert.Equal(t, "true", attr(recs[1], attrs.LifecycleDuplicate))
	assert.Equal(t, "lego", attr(recs[2], attrs.LifecycleSource))
}

func TestHookCertManager(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.HMAC.Secret = testSecret
	r := start(t, cfg, sink, "hooks")
	pemText, cert := testCertPEM(t)
	dir := t.TempDir()
	crt := filepath.Join(dir, "tls.crt")
	require.NoError(t, os.WriteFile(crt, []byte(pemText), 0o600))
	ready := `{"metadata":{"name":"payments-api-tls","namespace":"payments"},"spec":{"dnsNames":["api.example.com"]},
	  "status":{"revision":3,"conditions":[{"type":"Ready","status":"True","message":"Certificate is up to date and has not expired"}]}}`
	failed := `{"metadata":{"name":"payments-api-tls","namespace":"payments"},"spec":{"dnsNames":["api.example.com"]},
	  "status":{"revision":3,"conditions":[{"type":"Ready","status":"False","message":"Issuing certificate as Secret was previously issued by Issuer.cert-manager.io/old"}]}}`
	for i, j := range []string{ready, failed} {
		p := filepath.Join(dir, "cert.json")
		require.NoError(t, os.WriteFile(p, []byte(j), 0o600))
		out, err := runHook(t, r, []string{"CERTPULSE_SERVICE=payments-api", "CERTPULSE_CLUSTER=prod-eu-1"}, "cert-manager-status.sh", p, crt)
		require.NoError(t, err, "case %d: %s", i, out)
	}
	recs := records(sink)
	require.Len(t, recs, 2)
	assert.Equal(t, "certpulse.lifecycle.issued", recs[0].EventName())
	assert.Equal(t, tlsinspect.SPKIPin(cert), attr(recs[0], attrs.SPKISHA256))
	assert.Equal(t, "prod-eu-1", attr(recs[0], attrs.K8sClusterName))
	assert.Equal(t, "certificate/payments/payments-api-tls@3", attr(recs[0], attrs.LifecycleJobID))
	assert.Equal(t, "certpulse.lifecycle.renewal_failed", recs[1].EventName())
	assert.True(t, strings.HasPrefix(attr(recs[1], attrs.LifecycleMessage), "Issuing certificate"))
}

func TestHookSendRetriesAndRejects(t *testing.T) {
	c := &refusing{}
	c.left.Store(2)
	cfg := testConfig()
	cfg.HMAC.Secret = testSecret
	cfg.RetryAfter = 1
	r := start(t, cfg, c, "hooks")
	send := func(env []string, body string) (string, error) {
		cmd := exec.Command("sh", "-c", "printf '%s' \"$BODY\" | "+filepath.Join(hooksDir, "certpulse-send"))
		cmd.Env = append(os.Environ(), "CERTPULSE_URL=http://"+r.addr+r.cfg.Path, "CERTPULSE_TOKEN=s3cr3t-hooks", "CERTPULSE_RETRY_SLEEP=0", "BODY="+body)
		cmd.Env = append(cmd.Env, env...)
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	out, err := send([]string{"CERTPULSE_HMAC_SECRET=" + testSecret}, `{"type":"deployed","id":"d-1","service":"s"}`)
	require.NoError(t, err, out)
	require.Len(t, records(&c.LogsSink), 1, "delivered after two 503s, once")

	out, err = send([]string{"CERTPULSE_HMAC_SECRET=wrong-secret-wrong-secret"}, `{"type":"deployed","id":"d-2","service":"s"}`)
	require.Error(t, err)
	assert.Contains(t, out, "HTTP 401")
	assert.Contains(t, out, "does not match")
}
