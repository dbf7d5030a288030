package edge

import (
	"crypto/tls"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// TestCaddyEdgeLogs: Debian's Caddy serves the name with the lab's
// certificate and the shipped JSON access log; the built distribution reads
// it with the shipped overlay.
func TestCaddyEdgeLogs(t *testing.T) {
	bin := tb.Env(t, "edge", "CERTPULSE_BIN")[0]
	caddy := proxytest.Need(t, "caddy")
	dir := t.TempDir()
	pki := newEdgePKI(t, dir)
	port := tb.FreePort(t)
	addr := fmt.Sprintf("127.0.0.7:%d", port)
	accessLog := filepath.Join(dir, "access.json")
	if fh, err := os.Create(accessLog); err == nil {
		fh.Close()
	}
	caddyfile := filepath.Join(dir, "Caddyfile")
	if err := os.WriteFile(caddyfile, []byte(fmt.Sprintf(`{
	admin off
	auto_https off
	storage file_system %s
}
https://:%d {
	bind 127.0.0.7
	tls %s %s
	log {
		output file %s
		format json
	}
	respond "ok" 200
}
`, filepath.Join(dir, "caddy-data"), port, pki.crt, pki.key, accessLog)), 0o600); err != nil {
		t.Fatal(err)
	}
	cd := exec.Command(caddy, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cdExited, cdErr := tb.Start(t, cd)
	waitListen(t, "caddy", addr, cdExited, cdErr)
	loki, stderr := startCollector(t, bin, dir, "caddy", "CADDY_ACCESS_LOG="+accessLog)

	roots := pki.roots
	if err := get(addr, &tls.Config{ServerName: name, RootCAs: roots}, 2); err != nil {
		t.Fatal(err)
	}
	if err := get(addr, &tls.Config{ServerName: name, RootCAs: roots, MaxVersion: tls.VersionTLS12}, 1); err != nil {
		t.Fatal(err)
	}
	var access []logtest.Record
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(access) < 3; time.Sleep(200 * time.Millisecond) {
		access = nil
		for _, r := range loki.All() {
			if r.Attr("tls.protocol.version") != "" {
				access = append(access, r)
			}
		}
	}
	if len(access) != 3 {
		raw, _ := os.ReadFile(accessLog)
		t.Fatalf("want 3 access records, got %d; caddy log:\n%s\ncollector:\n%s", len(access), tb.Tail(string(raw), 2000), tb.Tail(stderr.String(), 2000))
	}
	versions := map[string]int{}
	for _, r := range access {
		versions[r.Attr("tls.protocol.version")]++
		for k, want := range map[string]string{"server.address": name, "certpulse.edge.proxy": "caddy", "tls.resumed": "false", "http.request.method": "GET", "http.response.status_code": "200"} {
			if got := r.Attr(k); got != want {
				t.Errorf("access record %s = %q, want %q (%v)", k, got, want, r.Attributes().AsRaw())
			}
		}
		if r.Attr("tls.cipher_suite.id") == "" {
			t.Errorf("no cipher suite: %v", r.Attributes().AsRaw())
		}
	}
	if versions["1.3"] != 2 || versions["1.2"] != 1 {
		t.Errorf("versions %v, want two 1.3 and one 1.2", versions)
	}
	// Two connections (the first with two requests: counted once by the
	// client's ip:port), the cipher by its IANA name from Caddy's number.
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && loki.Metric("tlsedge.handshakes", nil) < 2; {
		time.Sleep(200 * time.Millisecond)
	}
	if n := loki.Metric("tlsedge.handshakes", nil); n != 2 {
		t.Errorf("tlsedge.handshakes = %v, want 2 (connections, not requests)", n)
	}
	if n := loki.Metric("tlsedge.handshakes", map[string]string{"tls.protocol.version": "1.3", "tls.cipher": "TLS_AES_128_GCM_SHA256"}); n != 1 {
		t.Errorf("TLS 1.3 handshakes with TLS_AES_128_GCM_SHA256 = %v, want 1 (series %v)", n, loki.Series("tlsedge.handshakes"))
	}
}
