// Package k8s runs certpulse's Kubernetes deployment against a real API
// server: etcd (Debian's etcd-server) and kube-apiserver and
// kube-controller-manager built from the module proxy (scripts/build-kube.sh)
// on 127.0.0.1. No kubelet and no containers: pods are admitted and stored,
// never run. `make k8s` sets the paths; without them every test skips.
package k8s

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

// cluster is one etcd + kube-apiserver (+ kube-controller-manager) for the
// whole package: the API server takes seconds to start, and the tests use
// their own namespaces.
type cluster struct {
	dir        string
	kubectl    string
	kubeconfig string // cluster-admin (a static token in system:masters)
	server     string // https://127.0.0.1:PORT
	ca         string // the API server's serving certificate
	procs      []proc
	logs       []string
}

var (
	shared     *cluster
	sharedErr  error
	sharedOnce sync.Once
)

func TestMain(m *testing.M) {
	code := m.Run()
	if shared != nil {
		shared.stop()
	}
	os.Exit(code)
}

func repo() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// need returns the environment variable `make k8s` sets, or skips.
func need(t *testing.T, name, why string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Skip(name + " not set (`make k8s` sets it): " + why)
	}
	return v
}

// getCluster starts the package's cluster on first use.
func getCluster(t *testing.T) *cluster {
	t.Helper()
	kube := need(t, "CERTPULSE_KUBE_DIR", "the directory holding kube-apiserver and kube-controller-manager")
	etcd := proxytest.Need(t, "etcd")
	kubectl := proxytest.Need(t, "kubectl")
	sharedOnce.Do(func() {
		dir, err := os.MkdirTemp("", "certpulse-k8s-")
		if err != nil {
			sharedErr = err
			return
		}
		shared = &cluster{dir: dir, kubectl: kubectl}
		sharedErr = shared.start(etcd, kube)
	})
	if sharedErr != nil {
		if shared != nil {
			t.Log(shared.tail())
		}
		t.Fatalf("cluster: %v", sharedErr)
	}
	return shared
}

func (c *cluster) spawn(name string, bin string, args ...string) error {
	logf := filepath.Join(c.dir, name+".log")
	f, err := os.Create(logf)
	if err != nil {
		return err
	}
	cmd := exec.Command(bin, args...)
	cmd.Stdout, cmd.Stderr = f, f
	if err := cmd.Start(); err != nil {
		f.Close()
		return fmt.Errorf("%s: %w", name, err)
	}
	p := proc{cmd, make(chan struct{})}
	c.procs = append(c.procs, p)
	c.logs = append(c.logs, logf)
	go func() { _ = cmd.Wait(); f.Close(); close(p.done) }()
	return nil
}

func (c *cluster) start(etcdBin, kubeDir string) error {
	cp, err := tb.PickPort()
	if err != nil {
		return err
	}
	pp, err := tb.PickPort()
	if err != nil {
		return err
	}
	etcdURL := fmt.Sprintf("http://127.0.0.1:%d", cp)
	peer := fmt.Sprintf("http://127.0.0.1:%d", pp)
	if err := c.spawn("etcd", etcdBin, "--name=default", "--data-dir="+filepath.Join(c.dir, "etcd"),
		"--listen-client-urls="+etcdURL, "--advertise-client-urls="+etcdURL,
		"--listen-peer-urls="+peer, "--initial-advertise-peer-urls="+peer,
		"--initial-cluster=default="+peer, "--log-level=warn"); err != nil {
		return err
	}

	// The service-account signing key and the admin's static token.
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return err
	}
	saKey := filepath.Join(c.dir, "sa.key")
	if err := os.WriteFile(saKey, pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)}), 0o600); err != nil {
		return err
	}
	token := fmt.Sprintf("admin-%d", time.Now().UnixNano())
	tokens := filepath.Join(c.dir, "tokens.csv")
	if err := os.WriteFile(tokens, []byte(token+",admin,admin-uid,system:masters\n"), 0o600); err != nil {
		return err
	}
	port, err := tb.PickPort()
	if err != nil {
		return err
	}
	certDir := filepath.Join(c.dir, "pki")
	if err := c.spawn("kube-apiserver", filepath.Join(kubeDir, "kube-apiserver"),
		"--etcd-servers="+etcdURL, "--bind-address=127.0.0.1", "--advertise-address=127.0.0.1",
		"--secure-port="+strconv.Itoa(port), "--cert-dir="+certDir, "--token-auth-file="+tokens,
		"--authorization-mode=RBAC", "--service-account-issuer=https://kubernetes.default.svc",
		"--service-account-key-file="+saKey, "--service-account-signing-key-file="+saKey,
		"--api-audiences=https://kubernetes.default.svc", "--service-cluster-ip-range=10.96.0.0/12",
		"--endpoint-reconciler-type=none", "--audit-log-path="+filepath.Join(c.dir, "audit.log"),
		"--audit-policy-file="+c.auditPolicy()); err != nil {
		return err
	}
	c.server = fmt.Sprintf("https://127.0.0.1:%d", port)
	c.ca = filepath.Join(certDir, "apiserver.crt")
	c.kubeconfig = filepath.Join(c.dir, "admin.kubeconfig")

	// /readyz answers about 4 s after start; the serving certificate is
	// written before it.
	deadline := time.Now().Add(90 * time.Second)
	for {
		if _, err := os.Stat(c.ca); err == nil {
			if err := c.writeKubeconfig(c.kubeconfig, token); err != nil {
				return err
			}
			out, err := c.run(context.Background(), "get", "--raw", "/readyz")
			if err == nil && strings.TrimSpace(string(out)) == "ok" {
				break
			}
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("kube-apiserver not ready at %s within 90s", c.server)
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The controllers a cluster without nodes' kubelets needs: workloads
	// get their pods (admitted by the real admission chain), namespaces
	// their default ServiceAccount, objects their garbage collection. No
	// node lifecycle controller: the test's nodes have no kubelet to
	// heartbeat, and it would taint them.
	return c.spawn("kube-controller-manager", filepath.Join(kubeDir, "kube-controller-manager"),
		"--kubeconfig="+c.kubeconfig, "--bind-address=127.0.0.1", "--secure-port=0",
		"--service-account-private-key-file="+saKey, "--root-ca-file="+c.ca, "--use-service-account-credentials=false",
		"--controllers=daemonset-controller,statefulset-controller,deployment-controller,replicaset-controller,serviceaccount-controller,garbage-collector-controller,namespace-controller,endpointslice-controller",
		"--leader-elect=false")
}

// auditPolicy records Pod Security's audit annotations (the restricted
// level the namespace audits against) for every pod write.
func (c *cluster) auditPolicy() string {
	p := filepath.Join(c.dir, "audit-policy.yaml")
	_ = os.WriteFile(p, []byte(`apiVersion: audit.k8s.io/v1
kind: Policy
rules:
  - level: Metadata
    resources: [{group: "", resources: [pods]}]
    verbs: [create]
  - level: None
`), 0o600)
	return p
}

func (c *cluster) writeKubeconfig(path, token string) error {
	return os.WriteFile(path, []byte(fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: test
    cluster: {server: %q, certificate-authority: %q}
users:
  - name: user
    user: {token: %q}
contexts:
  - name: test
    context: {cluster: test, user: user}
current-context: test
`, c.server, c.ca, token)), 0o600)
}

// run runs kubectl as the cluster admin.
func (c *cluster) run(ctx context.Context, args ...string) ([]byte, error) {
	return c.runAs(ctx, c.kubeconfig, args...)
}

func (c *cluster) runAs(ctx context.Context, kubeconfig string, args ...string) ([]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, c.kubectl, append([]string{"--kubeconfig=" + kubeconfig}, args...)...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if err != nil {
		return out.Bytes(), fmt.Errorf("kubectl %s: %w: %s", strings.Join(args, " "), err, strings.TrimSpace(errb.String()))
	}
	if w := strings.TrimSpace(errb.String()); w != "" {
		// Warnings (deprecated APIs, Pod Security warn level) go with the
		// output: callers that must see none check for "Warning:".
		out.WriteString("\n" + w)
	}
	return out.Bytes(), nil
}

// kubectl runs kubectl as the cluster admin and fails the test on error.
func (c *cluster) kubectlT(t *testing.T, args ...string) string {
	t.Helper()
	out, err := c.run(context.Background(), args...)
	if err != nil {
		t.Fatal(err)
	}
	return string(out)
}

func (c *cluster) stop() {
	for i := len(c.procs) - 1; i >= 0; i-- {
		p := c.procs[i]
		_ = p.cmd.Process.Signal(os.Interrupt)
		select {
		case <-p.done:
		case <-time.After(5 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	_ = os.RemoveAll(c.dir)
}

// tail is the last lines of every process log, for a failure.
func (c *cluster) tail() string {
	var b strings.Builder
	for _, l := range c.logs {
		data, _ := os.ReadFile(l)
		lines := strings.Split(strings.TrimSpace(string(data)), "\n")
		if len(lines) > 15 {
			lines = lines[len(lines)-15:]
		}
		fmt.Fprintf(&b, "== %s\n%s\n", filepath.Base(l), strings.Join(lines, "\n"))
	}
	return b.String()
}

// eventually polls f until it returns "" or the timeout passes, and fails
// with f's last answer.
func eventually(t *testing.T, timeout time.Duration, f func() string) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		why := f()
		if why == "" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal(why)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func lookupEnv(name string) (string, bool) {
	v := os.Getenv(name)
	return v, v != ""
}

// watches is how many WATCH requests on group/resource the API server
// holds open now (apiserver_longrunning_requests).
func (c *cluster) watches(t *testing.T, group, resource string) int {
	t.Helper()
	out := c.kubectlT(t, "get", "--raw", "/metrics")
	n := 0
	for _, line := range strings.Split(out, "\n") {
		if !strings.HasPrefix(line, "apiserver_longrunning_requests{") ||
			!strings.Contains(line, `verb="WATCH"`) ||
			!strings.Contains(line, `group="`+group+`"`) ||
			!strings.Contains(line, `resource="`+resource+`"`) {
			continue
		}
		f := strings.Fields(line)
		if v, err := strconv.ParseFloat(f[len(f)-1], 64); err == nil {
			n += int(v)
		}
	}
	return n
}
