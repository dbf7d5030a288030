// Package edge runs the shipped edge-telemetry configs against real
// proxies: Debian's nginx writes its access and error logs with
// distributions/edge/nginx/certpulse-tls.conf while Go clients handshake
// with it (full, resumed on one connection, refused TLS 1.0, cipher
// mismatch, a client that rejects the certificate); the built distribution
// reads them with distributions/edge/nginx/collector.yaml.
package edge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

const name = "edge." + faultlab.Domain

func TestNginxEdgeLogs(t *testing.T) {
	bin := tb.Env(t, "edge", "CERTPULSE_BIN")[0]
	dir := t.TempDir()
	pki := newEdgePKI(t, dir)
	logFormat, _ := filepath.Abs("../../distributions/edge/nginx/certpulse-tls.conf")
	tlsLog := filepath.Join(dir, "tls.json")
	port, strictPort := tb.FreePort(t), tb.FreePort(t)
	addr, strict := fmt.Sprintf("127.0.0.5:%d", port), fmt.Sprintf("127.0.0.5:%d", strictPort)
	ng := proxytest.StartNginx(t, fmt.Sprintf(`  include %s;
  server { listen %s ssl; server_name %s; ssl_certificate %s; ssl_certificate_key %s;
    ssl_protocols TLSv1.2 TLSv1.3; access_log %s certpulse_tls; return 200 ok; }
  server { listen %s ssl; server_name %s; ssl_certificate %s; ssl_certificate_key %s;
    ssl_protocols TLSv1.2; ssl_ciphers ECDHE-ECDSA-AES256-GCM-SHA384; access_log %s certpulse_tls; return 200 ok; }
`, logFormat, addr, name, pki.crt, pki.key, tlsLog, strict, name, pki.crt, pki.key, tlsLog), addr, strict)

	// Loki's stand-in and the collector: the shipped overlay on a base that
	// has what it names (file_storage, memory_limiter, otlphttp/loki).
	for _, f := range []string{tlsLog, ng.ErrorLog} {
		if fh, err := os.OpenFile(f, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fh.Close()
		}
	}
	loki, stderr := startCollector(t, bin, dir, "nginx", "NGINX_TLS_LOG="+tlsLog, "NGINX_ERROR_LOG="+ng.ErrorLog)

	// A garbage line and a truncated one in the access log: kept as they
	// are (raw body), the lines after them parsed.
	if fh, err := os.OpenFile(tlsLog, os.O_APPEND|os.O_WRONLY, 0o644); err == nil {
		_, _ = fh.WriteString("garbage \x00{{{ not json\n{\"time\":\"2026-12-01T00:00:00+00:00\",\"protocol\":\"TLSv1.3\n")
		fh.Close()
	}
	roots := pki.roots
	ok := &tls.Config{ServerName: name, RootCAs: roots}
	if err := get(addr, ok, 3); err != nil { // one connection, three requests
		t.Fatal(err)
	}
	failures := map[string]*tls.Config{
		"protocol_mismatch": {ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11},
		"handshake_failure": {ServerName: name, RootCAs: x509.NewCertPool()}, // rejects the certificate (bad certificate alert)
	}
	for want, cfg := range failures {
		if err := get(addr, cfg, 1); err == nil {
			t.Fatalf("%s: the handshake succeeded", want)
		}
	}
	mismatch := &tls.Config{ServerName: name, RootCAs: roots, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256}}
	if err := get(strict, mismatch, 1); err == nil {
		t.Fatal("cipher mismatch: the handshake succeeded")
	}

	var access, hsFail []logtest.Record
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		access, hsFail = nil, nil
		for _, r := range loki.All() {
			switch {
			case r.Attr("tls.protocol.version") != "":
				access = append(access, r)
			case r.Attr("certpulse.edge.tls_failure") != "":
				hsFail = append(hsFail, r)
			}
		}
		if len(access) >= 3 && len(hsFail) >= 3 {
			break
		}
	}
	raw := 0
	for _, r := range loki.All() {
		if strings.Contains(r.Body().AsString(), "not json") || strings.Contains(r.Body().AsString(), `"protocol":"TLSv1.3`) && r.Attr("tls.protocol.version") == "" {
			raw++
		}
	}
	if raw != 2 {
		t.Errorf("the garbage and the truncated line: %d kept as raw records, want 2", raw)
	}
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && loki.Metric("tlsedge.records", map[string]string{"certpulse.edge.record": "unparsed"}) < 2; {
		time.Sleep(200 * time.Millisecond)
	}
	if n := loki.Metric("tlsedge.records", map[string]string{"certpulse.edge.record": "unparsed", "certpulse.edge.proxy": "nginx"}); n != 2 {
		t.Errorf("tlsedge.records{unparsed} = %v, want 2 (the garbage and the truncated line counted)", n)
	}
	if len(access) != 3 {
		t.Fatalf("want 3 access records with TLS fields, got %d (all: %d)\n%s", len(access), len(loki.All()), tb.Tail(stderr.String(), 2000))
	}
	conns := map[string]bool{}
	for _, r := range access {
		for k, want := range map[string]string{"tls.protocol.version": "1.3", "server.address": name, "certpulse.edge.proxy": "nginx",
			"certpulse.edge.listener": addr, "tls.resumed": "false", "http.request.method": "GET", "http.response.status_code": "200"} {
			if got := r.Attr(k); got != want {
				t.Errorf("access record %s = %q, want %q", k, got, want)
			}
		}
		if r.Attr("tls.cipher") == "" || r.Attr("certpulse.edge.node") == "" || r.Attr("tls.curve") == "" {
			t.Errorf("access record lacks cipher, node or curve: %v", r.Attributes().AsRaw())
		}
		conns[r.Attr("certpulse.edge.connection")] = true
	}
	if len(conns) != 1 {
		t.Errorf("three requests on one kept-alive connection: connection ids %v", conns)
	}
	reasons := map[string]string{}
	for _, r := range hsFail {
		reasons[r.Attr("certpulse.reason")] = r.Attr("certpulse.edge.tls_failure")
		if !strings.HasPrefix(r.Attr("certpulse.edge.listener"), "127.0.0.5:") || r.Attr("client.address") == "" {
			t.Errorf("handshake failure without listener or client: %v", r.Attributes().AsRaw())
		}
	}
	t.Logf("handshake failures from the error log: %v", reasons)
	for _, want := range []string{"protocol_mismatch", "cipher_mismatch", "handshake_failure"} {
		if _, ok := reasons[want]; !ok {
			t.Errorf("no %s from the error log (got %v)", want, reasons)
		}
	}
}

// writeBase writes a base config with what the shipped proxy overlays name
// (file_storage, memory_limiter, the tlsedge connector) and sends the
// connector's records and metrics to the test's sink.
func writeBase(t *testing.T, dir, lokiURL string) string {
	t.Helper()
	base := filepath.Join(dir, "base.yaml")
	if err := os.WriteFile(base, []byte(fmt.Sprintf(`extensions:
  file_storage:
    directory: %s
    create_directory: true
processors:
  memory_limiter: {check_interval: 1s, limit_mib: 256}
connectors:
  tlsedge: {interval: 1s, policies: [{name: modern, preset: modern}]}
exporters:
  otlphttp/loki:
    endpoint: %s/otlp
service:
  extensions: [file_storage]
  telemetry: {metrics: {level: none}}
  pipelines:
    logs/edge_out: {receivers: [tlsedge], exporters: [otlphttp/loki]}
    metrics/edge_out: {receivers: [tlsedge], exporters: [otlphttp/loki]}
`, filepath.Join(dir, "state"), lokiURL)), 0o600); err != nil {
		t.Fatal(err)
	}
	return base
}

// get makes n HTTPS requests to target on one connection.
func get(target string, cfg *tls.Config, n int) error {
	tr := &http.Transport{TLSClientConfig: cfg}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	for i := 0; i < n; i++ {
		resp, err := c.Get("https://" + target + "/")
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	return nil
}
