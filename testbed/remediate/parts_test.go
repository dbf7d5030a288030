package remediate

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// pebble is a real ACME CA (letsencrypt/pebble) on 127.0.0.1, with
// challenges always valid. Each start makes a new root and intermediate.
type pebble struct {
	bin, dir, name string
	listen, mgmt   int
	tlsCert        string
	tlsKey         string
	stop           func()
}

func (p *pebble) dirURL() string { return fmt.Sprintf("https://127.0.0.1:%d/dir", p.listen) }

// start runs Pebble refusing the names in blocklist, and waits for it.
func (p *pebble) start(t *testing.T, blocklist ...string) {
	t.Helper()
	if blocklist == nil {
		blocklist = []string{}
	}
	cfg := map[string]any{"pebble": map[string]any{
		"listenAddress": fmt.Sprintf("127.0.0.1:%d", p.listen), "managementListenAddress": fmt.Sprintf("127.0.0.1:%d", p.mgmt),
		"certificate": p.tlsCert, "privateKey": p.tlsKey, "httpPort": 5002, "tlsPort": 5001,
		"retryAfter": map[string]int{"authz": 1, "order": 1}, "keyAlgorithm": "ecdsa", "domainBlocklist": blocklist,
		// One profile: Pebble picks a random one otherwise (6 days would
		// be expiring_soon everywhere).
		"profiles": map[string]any{"default": map[string]any{"description": "90 days", "validityPeriod": 7776000}},
	}}
	b, _ := json.Marshal(cfg)
	path := filepath.Join(p.dir, p.name+".json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, p.bin, "-config", path)
	cmd.Env = append(os.Environ(), "PEBBLE_VA_ALWAYS_VALID=1", "PEBBLE_VA_NOSLEEP=1", "PEBBLE_WFE_NONCEREJECT=0", "PEBBLE_AUTHZREUSE=100")
	exited, _ := tb.Start(t, cmd)
	p.stop = func() { cancel(); <-exited }
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(100 * time.Millisecond) {
		if _, err := p.root(); err == nil {
			return
		}
	}
	t.Fatalf("pebble %s not ready", p.name)
}

// root returns the PEM of Pebble's current root.
func (p *pebble) root() ([]byte, error) {
	c := &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}} //nolint:gosec // Pebble's management API on loopback
	resp, err := c.Get(fmt.Sprintf("https://127.0.0.1:%d/roots/0", p.mgmt))
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("roots: HTTP %d %v", resp.StatusCode, err)
	}
	return b, nil
}

// certbot runs Debian's certbot with the testbed's directories.
type certbot struct {
	dir, caBundle string
	mu            sync.Mutex // certbot refuses to run beside itself
}

func (c *certbot) args() []string {
	return []string{"--config-dir", filepath.Join(c.dir, "config"), "--work-dir", filepath.Join(c.dir, "work"), "--logs-dir", filepath.Join(c.dir, "logs")}
}

func (c *certbot) run(t *testing.T, args ...string) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	if err := os.MkdirAll(c.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// The runbooks take the same lock (flock) around their certbot.
	cmd := exec.Command("flock", filepath.Join(c.dir, "certbot.lock"), "certbot")
	cmd.Args = append(cmd.Args, append(args, c.args()...)...)
	cmd.Env = append(os.Environ(), "REQUESTS_CA_BUNDLE="+c.caBundle)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("certbot %s: %v\n%s", strings.Join(args, " "), err, tb.Tail(string(out), 2000))
	}
}

// nginx runs Debian's nginx with a master process (so that `nginx -s
// reload` works, as the runbooks reload it).
type nginx struct {
	bin, prefix, conf string
}

func startNginx(t *testing.T, dir, servers string, ports []int) *nginx {
	t.Helper()
	n := &nginx{bin: proxytest.Need(t, "nginx"), prefix: dir, conf: filepath.Join(dir, "nginx.conf")}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	conf := fmt.Sprintf(`daemon off;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
worker_processes 1;
events { worker_connections 256; }
http {
  access_log off;
  client_body_temp_path %[1]s/client_body;
  proxy_temp_path %[1]s/proxy;
  fastcgi_temp_path %[1]s/fastcgi;
  uwsgi_temp_path %[1]s/uwsgi;
  scgi_temp_path %[1]s/scgi;
%[2]s
}
`, dir, servers)
	if err := os.WriteFile(n.conf, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(n.bin, "-p", dir, "-c", n.conf, "-e", filepath.Join(dir, "error.log"))
	exited, _ := tb.Start(t, cmd)
	for _, p := range ports {
		addr := fmt.Sprintf("127.0.0.1:%d", p)
		for end := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
			select {
			case err := <-exited:
				b, _ := os.ReadFile(filepath.Join(dir, "error.log"))
				t.Fatalf("nginx exited: %v\n%s", err, b)
			default:
			}
			if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
				c.Close()
				break
			}
			if time.Now().After(end) {
				t.Fatalf("nginx does not listen on %s", addr)
			}
		}
	}
	return n
}

// reloadCmd is how the runbooks (and the testbed's deploys) reload it.
func (n *nginx) reloadCmd() string {
	return fmt.Sprintf("%s -p %s -c %s -e %s/error.log -s reload", n.bin, n.prefix, n.conf, n.prefix)
}

func (n *nginx) reload(t *testing.T) {
	t.Helper()
	if out, err := exec.Command("sh", "-c", n.reloadCmd()).CombinedOutput(); err != nil {
		t.Fatalf("nginx reload: %v\n%s", err, out)
	}
}
