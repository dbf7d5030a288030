package edge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// TestHAProxyEdgeLogs: Debian's HAProxy terminates TLS with the shipped
// log-format and error-log-format lines (its log on stdout, into a file);
// the built distribution reads it with the shipped overlay.
func TestHAProxyEdgeLogs(t *testing.T) {
	bin := tb.Env(t, "edge", "CERTPULSE_BIN")[0]
	haproxy := proxytest.Need(t, "haproxy")
	dir := t.TempDir()
	pki := newEdgePKI(t, dir)
	logLines, err := os.ReadFile("../../distributions/edge/haproxy/haproxy-log.cfg")
	if err != nil {
		t.Fatal(err)
	}
	var frontend []string
	for _, l := range strings.Split(string(logLines), "\n") {
		if strings.HasPrefix(l, "    ") { // the lines to put in a frontend
			frontend = append(frontend, l)
		}
	}
	addr := fmt.Sprintf("127.0.0.6:%d", tb.FreePort(t))
	conf := filepath.Join(dir, "haproxy.cfg")
	if err := os.WriteFile(conf, []byte(fmt.Sprintf(`global
    log stdout format raw local0 info
    tune.ssl.capture-buffer-size 128
defaults
    mode http
    log global
    timeout connect 5s
    timeout client 5s
    timeout server 5s
frontend fe_tls
    bind %s ssl crt %s ssl-min-ver TLSv1.2
%s
    http-request return status 200 content-type text/plain string ok
`, addr, pki.combined, strings.Join(frontend, "\n"))), 0o600); err != nil {
		t.Fatal(err)
	}
	logPath := filepath.Join(dir, "haproxy.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		t.Fatal(err)
	}
	defer logFile.Close()
	hp := exec.Command(haproxy, "-db", "-f", conf)
	hp.Stdout = logFile
	hpExited, hpErr := tb.Start(t, hp)
	waitListen(t, "haproxy", addr, hpExited, hpErr)
	loki, stderr := startCollector(t, bin, dir, "haproxy", "HAPROXY_LOG="+logPath)

	roots := pki.roots
	if err := get(addr, &tls.Config{ServerName: name, RootCAs: roots}, 3); err != nil {
		t.Fatal(err)
	}
	if err := get(addr, &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS11}, 1); err == nil {
		t.Fatal("TLS 1.1 client: the handshake succeeded")
	}
	if err := get(addr, &tls.Config{ServerName: name, RootCAs: x509.NewCertPool()}, 1); err == nil {
		t.Fatal("client without the root: the handshake succeeded")
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
		if len(access) >= 3 && len(hsFail) >= 2 {
			break
		}
	}
	if len(access) != 3 {
		raw, _ := os.ReadFile(logPath)
		t.Fatalf("want 3 access records, got %d; haproxy log:\n%s\ncollector:\n%s", len(access), tb.Tail(string(raw), 2000), tb.Tail(stderr.String(), 2000))
	}
	for _, r := range access {
		for k, want := range map[string]string{"tls.protocol.version": "1.3", "server.address": name, "certpulse.edge.proxy": "haproxy",
			"certpulse.edge.listener": addr, "tls.resumed": "false", "http.request.method": "GET", "http.response.status_code": "200"} {
			if got := r.Attr(k); got != want {
				t.Errorf("access record %s = %q, want %q", k, got, want)
			}
		}
	}
	for _, r := range access {
		if r.Attr("certpulse.edge.client.ciphers") == "" || r.Attr("certpulse.edge.client.groups") == "" {
			t.Errorf("no offered suites or groups (capture): %v", r.Attributes().AsRaw())
		}
	}
	// The what-if decides from HAProxy's capture: one connection (three
	// requests), TLS 1.3, offers that Mozilla modern accepts.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && loki.Metric("tlsedge.policy.handshakes", nil) < 1; {
		time.Sleep(200 * time.Millisecond)
	}
	if n := loki.Metric("tlsedge.policy.handshakes", map[string]string{"certpulse.policy": "modern", "certpulse.policy.verdict": "pass"}); n != 1 {
		t.Errorf("modern judged pass on %v handshakes, want 1 (series %v)", n, loki.Series("tlsedge.policy.handshakes"))
	}
	reasons := map[string]string{}
	for _, r := range hsFail {
		reasons[r.Attr("certpulse.reason")] = r.Attr("certpulse.edge.tls_failure")
	}
	t.Logf("handshake failures from HAProxy's error-log-format: %v", reasons)
	for _, want := range []string{"protocol_mismatch", "handshake_failure"} {
		if _, ok := reasons[want]; !ok {
			raw, _ := os.ReadFile(logPath)
			t.Errorf("no %s (got %v); haproxy log:\n%s", want, reasons, tb.Tail(string(raw), 2000))
		}
	}
}
