package edge

import (
	"bytes"
	"crypto/x509"
	"net"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// edgePKI is a lab leaf for name, written as edge.crt (with the
// intermediate), edge.key and edge.pem (both in one file, HAProxy's form),
// and the roots clients trust.
type edgePKI struct {
	crt, key, combined string
	rootFile           string // the lab root, PEM
	roots              *x509.CertPool
}

func newEdgePKI(t *testing.T, dir string) edgePKI {
	t.Helper()
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	leaf, err := lab.IssueLeaf([]string{name}, time.Now().Add(-time.Hour), time.Now().Add(90*24*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	key, err := faultlab.KeyPEM(leaf.Key)
	if err != nil {
		t.Fatal(err)
	}
	chain := faultlab.PEM(leaf.Cert, lab.Inter.Cert)
	p := edgePKI{crt: filepath.Join(dir, "edge.crt"), key: filepath.Join(dir, "edge.key"), combined: filepath.Join(dir, "edge.pem"),
		rootFile: filepath.Join(dir, "root.pem"), roots: x509.NewCertPool()}
	for path, data := range map[string][]byte{p.crt: chain, p.key: key, p.combined: append(append([]byte(nil), chain...), key...), p.rootFile: faultlab.PEM(lab.Root.Cert)} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p.roots.AddCert(lab.Root.Cert)
	return p
}

// startCollector runs the built distribution with the shipped overlay
// distributions/edge/<proxy>/collector.yaml on writeBase's base, with env,
// and returns Loki's stand-in and the collector's stderr once its receivers
// watch their files (start_at: end).
func startCollector(t *testing.T, bin, dir, proxy string, env ...string) (*tb.LogSink, *bytes.Buffer) {
	t.Helper()
	loki := tb.NewLogSink()
	srv := httptest.NewServer(loki)
	t.Cleanup(srv.Close)
	overlay, _ := filepath.Abs(filepath.Join("..", "..", "distributions", "edge", proxy, "collector.yaml"))
	cmd := exec.Command(bin, "--config", writeBase(t, dir, srv.URL), "--config", overlay)
	cmd.Env = append(os.Environ(), env...)
	exited, stderr := tb.Start(t, cmd)
	time.Sleep(2 * time.Second)
	select {
	case err := <-exited:
		t.Fatalf("collector exited: %v\n%s", err, stderr)
	default:
	}
	return loki, stderr
}

// waitListen waits until a proxy started with tb.Start accepts connections
// on addr.
func waitListen(t *testing.T, what, addr string, exited <-chan error, stderr *bytes.Buffer) {
	t.Helper()
	for deadline := time.Now().Add(15 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond); err == nil {
			c.Close()
			return
		}
		select {
		case err := <-exited:
			t.Fatalf("%s exited: %v\n%s", what, err, stderr)
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s does not listen on %s\n%s", what, addr, stderr)
		}
	}
}
