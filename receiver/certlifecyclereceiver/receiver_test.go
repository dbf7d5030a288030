package certlifecyclereceiver

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"github.com/certpulse/certpulse/internal/testkit/hosttest"
	"io"
	"math/big"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/extension/extensiontest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/signature"
	"github.com/certpulse/certpulse/internal/tlsinspect"
	"github.com/certpulse/certpulse/receiver/certlifecyclereceiver/internal/metadata"
)

const testSecret = "0123456789abcdef-test-secret"

func testConfig() *Config {
	cfg := createDefaultConfig()
	cfg.NetAddr.Endpoint = "127.0.0.1:0"
	return cfg
}

// start runs a receiver; with token != "" it sits behind a real
// bearertokenauth extension.
func start(t testing.TB, cfg *Config, next consumer.Logs, token string) *lifecycleReceiver {
	t.Helper()
	require.NoError(t, cfg.Validate())
	host := hosttest.With(map[component.ID]component.Component{})
	if token != "" {
		f := bearertokenauthextension.NewFactory()
		ecfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
		ecfg.BearerToken = configopaque.String("s3cr3t-" + token)
		id := component.MustNewID("bearertokenauth")
		ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), ecfg)
		require.NoError(t, err)
		require.NoError(t, ext.Start(context.Background(), host))
		t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
		host.Ext[id] = ext
		cfg.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: id}})
	}
	r, err := newReceiver(cfg, receivertest.NewNopSettings(metadata.Type), next)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), host))
	t.Cleanup(func() { require.NoError(t, r.Shutdown(context.Background())) })
	return r
}

type resp struct {
	status int
	header http.Header
	body   map[string]any
}

func post(t *testing.T, r *lifecycleReceiver, contentType string, body []byte, hdr map[string]string) resp {
	t.Helper()
	req, err := http.NewRequest(http.MethodPost, "http://"+r.addr+r.cfg.Path, bytes.NewReader(body))
	require.NoError(t, err)
	if contentType != "" {
		req.Header.Set("Content-Type", contentType)
	}
	for k, v := range hdr {
		req.Header.Set(k, v)
	}
	res, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	defer res.Body.Close()
	data, _ := io.ReadAll(res.Body)
	out := resp{status: res.StatusCode, header: res.Header}
	_ = json.Unmarshal(data, &out.body)
	return out
}

func signed(body []byte, ts time.Time) map[string]string {
	s := strconv.FormatInt(ts.Unix(), 10)
	return map[string]string{"X-Certpulse-Timestamp": s, "X-Certpulse-Signature": signature.Value([]byte(testSecret), s, body)}
}

func ce(id, typ string, data map[string]any) map[string]any {
	return map[string]any{"specversion": "1.0", "id": id, "source": "urn:test", "type": attrs.CloudEventsType(typ), "time": time.Now().UTC().Format(time.RFC3339), "data": data}
}

func mustJSON(v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return b
}

func records(sink *consumertest.LogsSink) []plog.LogRecord {
	var out []plog.LogRecord
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				for k := 0; k < sls.At(j).LogRecords().Len(); k++ {
					out = append(out, sls.At(j).LogRecords().At(k))
				}
			}
		}
	}
	return out
}

func attr(lr plog.LogRecord, k string) string {
	v, _ := lr.Attributes().Get(k)
	return v.AsString()
}

func TestEveryForm(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := start(t, testConfig(), sink, "")
	data := map[string]any{"service": "payments-api", "environment": "prod", "region": "eu-west-1", "endpoints": []string{"api.example.com:443"}, "job_id": "deploy-42", "artifact_version": "v1.2.3", "certificate": map[string]any{"sha256": strings.Repeat("ab", 32)}}

	res := post(t, r, "application/cloudevents+json", mustJSON(ce("e1", "deployed", data)), nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	res = post(t, r, "application/cloudevents-batch+json", mustJSON([]any{ce("e2", "issued", data), ce("e3", "renewed", data)}), nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	assert.EqualValues(t, 2, res.body["accepted"])
	res = post(t, r, "application/json", mustJSON(data), map[string]string{"ce-specversion": "1.0", "ce-id": "e4", "ce-source": "urn:test", "ce-type": "dev.certpulse.certificate.deploy_failed"})
	require.Equal(t, http.StatusOK, res.status, res.body)
	plain := map[string]any{"type": "maintenance_started", "service": "payments-api", "window": map[string]any{"end": time.Now().Add(time.Hour).UTC().Format(time.RFC3339)}}
	res = post(t, r, "application/json", mustJSON(plain), nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	res = post(t, r, "application/json; charset=utf-8", mustJSON([]any{map[string]any{"type": "renewal_failed", "service": "x", "message": "ACME order failed"}}), nil)
	require.Equal(t, http.StatusOK, res.status, res.body)

	recs := records(sink)
	require.Len(t, recs, 6)
	names := []string{}
	for _, lr := range recs {
		names = append(names, lr.EventName())
	}
	assert.Equal(t, []string{"certpulse.lifecycle.deployed", "certpulse.lifecycle.issued", "certpulse.lifecycle.renewed", "certpulse.lifecycle.deploy_failed", "certpulse.lifecycle.maintenance_started", "certpulse.lifecycle.renewal_failed"}, names)
	lr := recs[0]
	assert.Equal(t, "e1", attr(lr, attrs.LifecycleEventID))
	assert.Equal(t, "deploy-42", attr(lr, attrs.LifecycleJobID))
	assert.Equal(t, "v1.2.3", attr(lr, attrs.LifecycleArtifactVersion))
	assert.Equal(t, strings.Repeat("AB", 32), attr(lr, attrs.TLSServerHash))
	assert.Equal(t, formatStructured, attr(lr, attrs.LifecycleFormat))
	assert.Equal(t, formatBinary, attr(recs[3], attrs.LifecycleFormat))
	assert.Equal(t, plog.SeverityNumberError, recs[3].SeverityNumber())
	assert.NotEmpty(t, attr(recs[4], attrs.LifecycleWindowEnd))
	rattrs := sink.AllLogs()[0].ResourceLogs().At(0).Resource().Attributes()
	svc, _ := rattrs.Get(attrs.ServiceName)
	reg, _ := rattrs.Get(attrs.CloudRegion)
	assert.Equal(t, "payments-api", svc.Str())
	assert.Equal(t, "eu-west-1", reg.Str())
	assert.Contains(t, lr.Body().Str(), "payments-api deployed")
}

func testCertPEM(t *testing.T) (string, *x509.Certificate) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(42), Subject: pkix.Name{CommonName: "api.example.com"}, DNSNames: []string{"api.example.com"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	require.NoError(t, err)
	c, _ := x509.ParseCertificate(der)
	return string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})), c
}

func TestPEMDerivesFingerprints(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := start(t, testConfig(), sink, "")
	p, c := testCertPEM(t)
	res := post(t, r, "application/json", mustJSON(map[string]any{"type": "issued", "service": "api", "certificate": map[string]any{"pem": p}}), nil)
	require.Equal(t, http.StatusOK, res.status, res.body)
	lr := records(sink)[0]
	assert.Equal(t, tlsinspect.CertSHA256(c), attr(lr, attrs.TLSServerHash))
	assert.Equal(t, tlsinspect.SPKIPin(c), attr(lr, attrs.SPKISHA256))
	assert.Equal(t, c.NotAfter.UTC().Format(time.RFC3339), attr(lr, attrs.TLSServerNotAfter))
	assert.Equal(t, "CN=api.example.com", attr(lr, attrs.TLSServerSubject))
	assert.Equal(t, `["dns:api.example.com"]`, attr(lr, attrs.SANs))

	// A fingerprint that contradicts the PEM is rejected, naming the field.
	res = post(t, r, "application/json", mustJSON(map[string]any{"type": "issued", "service": "api", "certificate": map[string]any{"pem": p, "sha256": strings.Repeat("00", 32)}}), nil)
	require.Equal(t, http.StatusBadRequest, res.status)
	assert.Contains(t, fmt.Sprint(res.body["errors"]), "data.certificate.sha256")
}

func TestRejections(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.MaxRequestBodySize = 4096
	cfg.MaxEventsPerRequest = 3
	r := start(t, cfg, sink, "")
	good := map[string]any{"service": "s"}
	cases := []struct {
		name   string
		ct     string
		body   []byte
		hdr    map[string]string
		status int
		field  string
	}{
		{"malformed JSON", "application/cloudevents+json", []byte(`{"specversion":`), nil, 400, ""},
		{"wrong content type", "text/plain", []byte("hello"), nil, 415, ""},
		{"no content type", "", []byte("{}"), nil, 415, ""},
		{"oversized body", "application/json", bytes.Repeat([]byte(" "), 5000), nil, 413, ""},
		{"too many events", "application/cloudevents-batch+json", mustJSON([]any{ce("a", "issued", good), ce("b", "issued", good), ce("c", "issued", good), ce("d", "issued", good)}), nil, 413, ""},
		{"unknown type", "application/cloudevents+json", mustJSON(map[string]any{"specversion": "1.0", "id": "x", "source": "s", "type": "dev.certpulse.certificate.exploded", "data": good}), nil, 400, "type"},
		{"missing service", "application/json", mustJSON(map[string]any{"type": "issued"}), nil, 400, "data.service"},
		{"unknown field", "application/json", mustJSON(map[string]any{"type": "issued", "service": "s", "sevice": "t"}), nil, 400, "sevice"},
		{"wrong type of field", "application/json", mustJSON(map[string]any{"type": "issued", "service": 7}), nil, 400, "service"},
		{"missing ce id", "application/cloudevents+json", mustJSON(map[string]any{"specversion": "1.0", "source": "s", "type": "issued", "data": good}), nil, 400, "id"},
		{"long field", "application/json", mustJSON(map[string]any{"type": "issued", "service": strings.Repeat("s", 600)}), nil, 400, "data.service"},
		{"bad time", "application/json", mustJSON(map[string]any{"type": "issued", "service": "s", "time": "yesterday"}), nil, 400, "time"},
		{"binary without id", "application/json", mustJSON(good), map[string]string{"ce-specversion": "1.0", "ce-source": "s", "ce-type": "issued"}, 400, "ce-id"},
		{"maintenance without end", "application/json", mustJSON(map[string]any{"type": "maintenance_started", "service": "s"}), nil, 400, "data.window.end"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			res := post(t, r, c.ct, c.body, c.hdr)
			assert.Equal(t, c.status, res.status, res.body)
			assert.NotEmpty(t, res.body["error"], "JSON error body")
			if c.field != "" {
				assert.Contains(t, fmt.Sprint(res.body["errors"]), "field:"+c.field, res.body)
			}
		})
	}
	// A batch with one bad entry accepts nothing and names the entry.
	res := post(t, r, "application/cloudevents-batch+json", mustJSON([]any{ce("ok1", "issued", good), ce("bad", "issued", map[string]any{})}), nil)
	require.Equal(t, http.StatusBadRequest, res.status)
	assert.Contains(t, fmt.Sprint(res.body["errors"]), "index:1")
	req, _ := http.NewRequest(http.MethodGet, "http://"+r.addr+r.cfg.Path, nil)
	gr, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	gr.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, gr.StatusCode)
	assert.Empty(t, records(sink), "nothing accepted from rejected requests")
}

func TestBearerAuth(t *testing.T) {
	sink := new(consumertest.LogsSink)
	r := start(t, testConfig(), sink, "tok")
	body := mustJSON(map[string]any{"type": "issued", "service": "s", "certificate": map[string]any{"spki_sha256": "sha256/" + strings.Repeat("A", 43) + "="}})
	res := post(t, r, "application/json", body, nil)
	assert.Equal(t, http.StatusUnauthorized, res.status)
	assert.NotEmpty(t, res.body["error"])
	res = post(t, r, "application/json", body, map[string]string{"Authorization": "Bearer wrong"})
	assert.Equal(t, http.StatusUnauthorized, res.status)
	res = post(t, r, "application/json", body, map[string]string{"Authorization": "Bearer s3cr3t-tok"})
	assert.Equal(t, http.StatusOK, res.status, res.body)
	assert.Len(t, records(sink), 1)
}

func TestHMAC(t *testing.T) {
	sink := new(consumertest.LogsSink)
	cfg := testConfig()
	cfg.HMAC.Secret = testSecret
	r := start(t, cfg, sink, "tok")
	auth := map[string]string{"Authorization": "Bearer s3cr3t-tok"}
	with := func(m map[string]string) map[string]string {
		out := map[string]string{}
		for k, v := range auth {
			out[k] = v
		}
		for k, v := range m {
			out[k] = v
		}
		return out
	}
	body := mustJSON(map[string]any{"type": "deployed", "service": "s", "id": "d1"})
	now := time.Now()

	res := post(t, r, "application/json", body, auth)
	assert.Equal(t, http.StatusUnauthorized, res.status, "unsigned")
	bad := signed(body, now)
	bad["X-Certpulse-Signature"] = "sha256=" + strings.Repeat("00", 32)
	res = post(t, r, "application/json", body, with(bad))
	assert.Equal(t, http.StatusUnauthorized, res.status, "bad signature")
	assert.Contains(t, res.body["error"], "does not match")
	tampered := signed(body, now)
	res = post(t, r, "application/json", append(bytes.Clone(body[:len(body)-1]), []byte(`,"message":"x"}`)...), with(tampered))
	assert.Equal(t, http.StatusUnauthorized, res.status, "body changed after signing")
	res = post(t, r, "application/json", body, with(signed(body, now.Add(-10*time.Minute))))
	assert.Equal(t, http.StatusUnauthorized, res.status, "replayed old request")
	assert.Contains(t, res.body["error"], "replay")
	res = post(t, r, "application/json", body, with(signed(body, now)))
	assert.Equal(t, http.StatusOK, res.status, res.body)
	assert.Len(t, records(sink), 1)
}

// refusing refuses the first n batches, then accepts into sink.
type refusing struct {
	consumertest.LogsSink
	left atomic.Int32
}

func (c *refusing) ConsumeLogs(ctx context.Context, ld plog.Logs) error {
	if c.left.Add(-1) >= 0 {
		return errors.New("memory_limiter: data refused")
	}
	return c.LogsSink.ConsumeLogs(ctx, ld)
}

func TestBackPressureThenRetry(t *testing.T) {
	c := &refusing{}
	c.left.Store(2)
	r := start(t, testConfig(), c, "")
	body := mustJSON(ce("retry-1", "deployed", map[string]any{"service": "s"}))
	for i := 0; i < 2; i++ {
		res := post(t, r, "application/cloudevents+json", body, nil)
		require.Equal(t, http.StatusServiceUnavailable, res.status)
		assert.Equal(t, "5", res.header.Get("Retry-After"))
	}
	res := post(t, r, "application/cloudevents+json", body, nil)
	require.Equal(t, http.StatusOK, res.status)
	recs := records(&c.LogsSink)
	require.Len(t, recs, 1, "no loss, no duplicate")
	assert.Equal(t, "false", attr(recs[0], attrs.LifecycleDuplicate), "a retry after 503 is not a duplicate")

	// A true redelivery is marked.
	res = post(t, r, "application/cloudevents+json", body, nil)
	require.Equal(t, http.StatusOK, res.status)
	assert.EqualValues(t, 1, res.body["duplicates"])
	recs = records(&c.LogsSink)
	require.Len(t, recs, 2)
	assert.Equal(t, "true", attr(recs[1], attrs.LifecycleDuplicate))
}

func TestSeenIDsBounded(t *testing.T) {
	s := newSeenIDs(time.Minute, 3)
	now := time.Now()
	s.add([]string{"a", "b", "c", "d"}, now)
	assert.Equal(t, 3, s.len())
	assert.False(t, s.seen("a", now))
	assert.True(t, s.seen("d", now))
	assert.False(t, s.seen("d", now.Add(2*time.Minute)), "expired")
	assert.Equal(t, 0, s.len())
}
