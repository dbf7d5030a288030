package edge

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/logtest"
	"github.com/certpulse/certpulse/internal/proxytest"
	"github.com/certpulse/certpulse/testbed/internal/tb"
)

// TestCaddyEdgeLogs: Debian's Caddy serves the name with the lab's
// certificate and the shipped JSON access log; the built distribution reads
// it with the shipped overlay.
func TestCaddyEdgeLogs(t *testing.T) {
	bin := os.Getenv("CERTPULSE_BIN")
	if bin == "" {
		t.Skip("CERTPULSE_BIN not set (make edge builds it)")
	}
	caddy := proxytest.Need(t, "caddy")
	dir := t.TempDir()
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	leaf, err := lab.IssueLeaf([]string{name}, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	key, err := faultlab.KeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	crt, keyPath := filepath.Join(dir, "edge.crt"), filepath.Join(dir, "edge.key")
	if err := os.WriteFile(crt, faultlab.PEM(leaf.Cert, lab.Inter.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(keyPath, key, 0o600); err != nil {
		t.Fatal(err)
	}
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
`, filepath.Join(dir, "caddy-data"), port, crt, keyPath, accessLog)), 0o600); err != nil {
		t.Fatal(err)
	}
	cd := exec.Command(caddy, "run", "--config", caddyfile, "--adapter", "caddyfile")
	cd.Env = append(os.Environ(), "HOME="+dir, "XDG_DATA_HOME="+dir, "XDG_CONFIG_HOME="+dir)
	cdExited, cdErr := tb.Start(t, cd)
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			break
		}
		select {
		case err := <-cdExited:
			t.Fatalf("caddy exited: %v\n%s", err, cdErr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("caddy does not listen on %s\n%s", addr, cdErr)
		}
	}

	loki := &sink{}
	srv := httptest.NewServer(loki)
	defer srv.Close()
	base := writeBase(t, dir, srv.URL)
	overlay, _ := filepath.Abs("../../distributions/edge/caddy/collector.yaml")
	cmd := exec.Command(bin, "--config", base, "--config", overlay)
	cmd.Env = append(os.Environ(), "CADDY_ACCESS_LOG="+accessLog)
	exited, stderr := tb.Start(t, cmd)
	time.Sleep(2 * time.Second)
	select {
	case err := <-exited:
		t.Fatalf("collector exited: %v\n%s", err, stderr)
	default:
	}

	roots := x509.NewCertPool()
	roots.AddCert(lab.Root.Cert)
	if err := get(addr, &tls.Config{ServerName: name, RootCAs: roots}, 2); err != nil {
		t.Fatal(err)
	}
	if err := get(addr, &tls.Config{ServerName: name, RootCAs: roots, MaxVersion: tls.VersionTLS12}, 1); err != nil {
		t.Fatal(err)
	}
	var access []logtest.Record
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline) && len(access) < 3; time.Sleep(200 * time.Millisecond) {
		access = nil
		for _, r := range loki.all() {
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
}
