// Package tb holds helpers the testbed packages share.
package tb

import (
	"bytes"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// FreePort returns a TCP port free on 127.0.0.1 at the time of the call.
func FreePort(t testing.TB) int {
	t.Helper()
	p, err := PickPort()
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// PickPort is FreePort for code without a test at hand (a server shared
// by a package's tests, started once). The port is below the kernel's
// ephemeral range where it can: a port from bind(":0") is an ephemeral
// one, and between its close and the server's listen any outgoing
// connection (a browser, an exporter, another test's client) may take it
// as its source port (seen: "bind: address already in use" in testbed/nel).
func PickPort() (int, error) {
	if lo := ephemeralLow(); lo > 10000 {
		for range 64 {
			p := 10000 + rand.IntN(lo-10000)
			if _, taken := picked.LoadOrStore(p, true); taken {
				continue // handed out already in this process
			}
			if l, err := net.Listen("tcp", "127.0.0.1:"+strconv.Itoa(p)); err == nil {
				_ = l.Close()
				return p, nil
			}
		}
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// picked holds the ports PickPort handed out in this process.
var picked sync.Map

// ephemeralLow is the first port of the kernel's ephemeral range (0 when
// unknown).
func ephemeralLow() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range")
	if err != nil {
		return 0
	}
	f := strings.Fields(string(b))
	if len(f) != 2 {
		return 0
	}
	lo, _ := strconv.Atoi(f[0])
	return lo
}

// Start starts cmd with its stderr captured, in a process group of its own
// (unless the caller set SysProcAttr). At cleanup it kills the process if
// it still runs, and whatever else of its group is left (nginx's workers
// outlive a killed master), and, when the test failed, logs the stderr
// tail. exited yields cmd.Wait's result once.
func Start(t testing.TB, cmd *exec.Cmd) (exited <-chan error, stderr *bytes.Buffer) {
	t.Helper()
	stderr = new(bytes.Buffer)
	cmd.Stderr = stderr
	group := cmd.SysProcAttr == nil
	if group {
		cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("%s: %v", filepath.Base(cmd.Path), err)
	}
	ch := make(chan error, 1)
	done := make(chan struct{})
	go func() {
		ch <- cmd.Wait()
		close(done)
	}()
	t.Cleanup(func() {
		select {
		case <-done:
		default:
			_ = cmd.Process.Kill()
			<-done
		}
		if group {
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
		}
		if t.Failed() {
			t.Logf("%s stderr (tail):\n%s", filepath.Base(cmd.Path), Tail(stderr.String(), 3000))
		}
	})
	return ch, stderr
}

// Tail returns the last n bytes of s.
func Tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

// Env returns the values of the environment variables names, in order, or
// skips the test when one is unset: the testbed's programs (the built
// distribution, Pebble, Prometheus 3) come from the make target named,
// which sets them; `go test ./...` alone skips.
func Env(t testing.TB, target string, names ...string) []string {
	t.Helper()
	out := make([]string, len(names))
	for i, n := range names {
		if out[i] = os.Getenv(n); out[i] == "" {
			t.Skipf("%s not set (make %s sets it)", n, target)
		}
	}
	return out
}
