// Package proxytest runs real proxies (Debian's nginx) and a tiny DNS
// server on 127.0.0.0/8 for tests.
package proxytest // import "github.com/certpulse/certpulse/internal/testkit/proxytest"

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// InCI reports whether the tests run in CI (CI set, as .ci/run and every
// common CI service set it, and not "false" or "0"): the one rule for
// "skip here, fail in CI" (Need).
func InCI() bool {
	v := os.Getenv("CI")
	return v != "" && v != "false" && v != "0"
}

// Need returns the path of the first of names installed (on PATH or in
// /usr/sbin, /sbin), or skips the test when none is; in CI, whose script
// installs them, a missing program fails instead.
func Need(t testing.TB, names ...string) string {
	t.Helper()
	for _, name := range names {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
		for _, dir := range []string{"/usr/sbin", "/sbin"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err == nil {
				return filepath.Join(dir, name)
			}
		}
	}
	SkipOrFail(t, strings.Join(names, " or ")+" not installed (scripts/install-test-deps.sh installs it)")
	return ""
}

// SkipOrFail skips the test for a missing prerequisite, or fails it in CI
// (InCI), whose script installs every prerequisite.
func SkipOrFail(t testing.TB, msg string) {
	t.Helper()
	if InCI() {
		t.Fatal(msg)
	}
	t.Skip(msg)
}

// Nginx is a running nginx.
type Nginx struct {
	Dir      string // prefix: config, logs, temp files
	ErrorLog string
	cmd      *exec.Cmd
	stderr   *bytes.Buffer
	done     chan struct{}
	once     sync.Once
}

// StartNginx runs nginx in the foreground (daemon off, one process) with
// the http{} block given, in a fresh prefix directory, and waits until
// every address in listen accepts connections. It is stopped at cleanup.
func StartNginx(t testing.TB, httpBlock string, listen ...string) *Nginx {
	t.Helper()
	return startNginx(t, false, httpBlock, listen...)
}

// StartNginxMaster is StartNginx with a master process and a worker, as
// nginx runs in production: Reload starts new workers with the new
// configuration while the old ones finish (a single process cannot reload
// cleanly).
func StartNginxMaster(t testing.TB, httpBlock string, listen ...string) *Nginx {
	t.Helper()
	return startNginx(t, true, httpBlock, listen...)
}

func startNginx(t testing.TB, master bool, httpBlock string, listen ...string) *Nginx {
	t.Helper()
	bin := Need(t, "nginx")
	dir := t.TempDir()
	n := &Nginx{Dir: dir, ErrorLog: filepath.Join(dir, "error.log"), stderr: &bytes.Buffer{}, done: make(chan struct{})}
	mp := "off"
	if master {
		mp = "on;\nworker_processes 1"
	}
	conf := fmt.Sprintf(`daemon off;
master_process %[3]s;
pid %[1]s/nginx.pid;
error_log %[1]s/error.log info;
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
`, dir, httpBlock, mp)
	path := filepath.Join(dir, "nginx.conf")
	if err := os.WriteFile(path, []byte(conf), 0o600); err != nil {
		t.Fatal(err)
	}
	n.cmd = exec.Command(bin, "-p", dir, "-c", path, "-e", n.ErrorLog)
	n.cmd.Stdout, n.cmd.Stderr = n.stderr, n.stderr
	// Its own process group: Stop ends the workers too, even when the
	// master dies first.
	n.cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := n.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = n.cmd.Wait(); close(n.done) }()
	t.Cleanup(n.Stop)
	deadline := time.Now().Add(10 * time.Second)
	for _, addr := range listen {
		for {
			c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
			if err == nil {
				_ = c.Close()
				break
			}
			select {
			case <-n.done:
				log, _ := os.ReadFile(n.ErrorLog)
				t.Fatalf("nginx exited: %s\n%s", n.stderr, tail(string(log), 2000))
			default:
			}
			if time.Now().After(deadline) {
				t.Fatalf("nginx does not listen on %s: %s", addr, n.stderr)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return n
}

// Reload asks nginx to read its configuration and certificates again
// (SIGHUP), as a deploy does, and waits until it has.
func (n *Nginx) Reload() error {
	var from int64
	if st, err := os.Stat(n.ErrorLog); err == nil {
		from = st.Size()
	}
	if err := n.cmd.Process.Signal(syscall.SIGHUP); err != nil {
		return err
	}
	buf := make([]byte, 64<<10)
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		f, err := os.Open(n.ErrorLog)
		if err != nil {
			continue
		}
		k, _ := f.ReadAt(buf, from)
		f.Close()
		if bytes.Contains(buf[:k], []byte("reconfiguring")) {
			return nil
		}
	}
	return fmt.Errorf("nginx did not reload within 10s")
}

// Stop stops nginx and its workers (SIGINT to the process group, then
// SIGKILL after 5 s).
func (n *Nginx) Stop() {
	n.once.Do(func() {
		pg := -n.cmd.Process.Pid
		_ = syscall.Kill(pg, syscall.SIGINT)
		select {
		case <-n.done:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(pg, syscall.SIGKILL)
			<-n.done
		}
		_ = syscall.Kill(pg, syscall.SIGKILL) // workers the master left behind
	})
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "..." + s[strings.LastIndex(s[:len(s)-n], "\n")+1:]
}
