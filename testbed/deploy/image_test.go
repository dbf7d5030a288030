package deploy

import (
	"bytes"
	"compress/gzip"
	"context"
	"crypto/rand"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"go.opentelemetry.io/collector/pdata/pmetric/pmetricotlp"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// otlpSink is a real OTLP/HTTP receiver (protobuf) standing in for Mimir's
// and Loki's OTLP endpoints: it records what arrives and the tenant header.
type otlpSink struct {
	*httptest.Server
	mu      sync.Mutex
	logs    []plog.Logs
	metrics int
	// labels are the data point attribute keys of tlsprobe.cert.time_left:
	// what Mimir turns into labels.
	labels  map[string]bool
	tenants map[string]bool
}

func newOTLPSink(t *testing.T) *otlpSink {
	s := &otlpSink{tenants: map[string]bool{}, labels: map[string]bool{}}
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var rd io.Reader = r.Body
		if r.Header.Get("Content-Encoding") == "gzip" { // otlphttp's default
			zr, err := gzip.NewReader(r.Body)
			if err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			rd = zr
		}
		body, err := io.ReadAll(io.LimitReader(rd, 64<<20))
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		s.mu.Lock()
		defer s.mu.Unlock()
		s.tenants[r.URL.Path+" "+r.Header.Get("X-Scope-OrgID")] = true
		switch r.URL.Path {
		case "/loki/otlp/v1/logs":
			req := plogotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			s.logs = append(s.logs, req.Logs())
			out, _ := plogotlp.NewExportResponse().MarshalProto()
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(out)
		case "/mimir/otlp/v1/metrics":
			req := pmetricotlp.NewExportRequest()
			if err := req.UnmarshalProto(body); err != nil {
				http.Error(w, err.Error(), http.StatusBadRequest)
				return
			}
			s.metrics += req.Metrics().DataPointCount()
			rms := req.Metrics().ResourceMetrics()
			for i := 0; i < rms.Len(); i++ {
				ms := rms.At(i).ScopeMetrics().At(0).Metrics()
				for j := 0; j < ms.Len(); j++ {
					if ms.At(j).Name() == "tlsprobe.cert.time_left" && ms.At(j).Gauge().DataPoints().Len() > 0 {
						for k := range ms.At(j).Gauge().DataPoints().At(0).Attributes().All() {
							s.labels[k] = true
						}
					}
				}
			}
			out, _ := pmetricotlp.NewExportResponse().MarshalProto()
			w.Header().Set("Content-Type", "application/x-protobuf")
			_, _ = w.Write(out)
		default:
			http.NotFound(w, r)
		}
	}))
	t.Cleanup(s.Close)
	return s
}

// records returns every log record that arrived with the event name.
func (s *otlpSink) records(event string) []plog.LogRecord {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []plog.LogRecord
	for _, ld := range s.logs {
		for _, r := range logtest.Named(logtest.Records(ld), event) {
			out = append(out, r.LogRecord)
		}
	}
	return out
}

func run(t *testing.T, name string, args ...string) []byte {
	t.Helper()
	out, err := exec.Command(name, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("%s %v: %v\n%s", name, args, err, stderr)
	}
	return out
}

// TestImageRootFilesystem exports the image `make image` built, and runs its
// entrypoint under chroot as the image's user with the image's own config
// (single-tier: OTLP to Mimir and Loki, here a real OTLP receiver) against
// the fault lab.
func TestImageRootFilesystem(t *testing.T) {
	image := need(t, "CERTPULSE_IMAGE", "run `make deploy` (builds the image)")
	podman := proxytest.Need(t, "podman")
	if os.Geteuid() != 0 {
		proxytest.SkipOrFail(t, "chroot needs root")
	}
	// The image's metadata.
	var inspect []struct {
		Config struct {
			User       string
			Entrypoint []string
			Cmd        []string
			Env        []string
		}
	}
	if err := json.Unmarshal(run(t, podman, "image", "inspect", image), &inspect); err != nil || len(inspect) != 1 {
		t.Fatalf("podman image inspect %s: %v", image, err)
	}
	ic := inspect[0].Config
	if ic.User != "10001:10001" {
		t.Errorf("image user %q, want 10001:10001 (non-root)", ic.User)
	}
	if strings.Join(ic.Entrypoint, " ") != "/otelcol-certpulse" || strings.Join(ic.Cmd, " ") != "--config /etc/otelcol-certpulse/config.yaml" {
		t.Errorf("entrypoint %v cmd %v", ic.Entrypoint, ic.Cmd)
	}

	// Its root filesystem, through a created (never started) container.
	name := fmt.Sprintf("certpulse-rootfs-%d", time.Now().UnixNano())
	run(t, podman, "create", "--name", name, image)
	defer exec.Command(podman, "rm", "-f", name).Run()
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	if err := os.Mkdir(rootfs, 0o755); err != nil {
		t.Fatal(err)
	}
	tarball := filepath.Join(dir, "rootfs.tar")
	run(t, podman, "export", "-o", tarball, name)
	run(t, "tar", "-xpf", tarball, "--numeric-owner", "-C", rootfs)

	shipped, _ := os.ReadFile(filepath.Join(repo(t), "distributions/otelcol-certpulse/single-tier.yaml"))
	inImage, err := os.ReadFile(filepath.Join(rootfs, "etc/otelcol-certpulse/config.yaml"))
	if err != nil || !bytes.Equal(shipped, inImage) {
		t.Errorf("the image's config is not distributions/otelcol-certpulse/single-tier.yaml (%v)", err)
	}
	passwd, _ := os.ReadFile(filepath.Join(rootfs, "etc/passwd"))
	if !strings.Contains(string(passwd), "otelcol:x:10001:10001:") {
		t.Errorf("/etc/passwd has no entry for uid 10001:\n%s", passwd)
	}
	bundle, err := os.ReadFile(filepath.Join(rootfs, "etc/ssl/certs/ca-certificates.crt"))
	if err != nil {
		t.Fatalf("the image has no CA bundle: %v", err)
	}
	pool := x509.NewCertPool()
	ok := pool.AppendCertsFromPEM(bundle)
	//lint:ignore SA1019 counting the certificates of a pool built here, not a system pool
	if n := len(pool.Subjects()); !ok || n < 50 {
		t.Fatalf("the image's CA bundle holds %d certificates", n)
	}

	// The lab, its root copied into the root filesystem, and a targets file
	// in the image's documented place.
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	if _, err := lab.WriteFiles(filepath.Join(rootfs, "lab")); err != nil {
		t.Fatal(err)
	}
	healthy, _ := lab.Endpoint("healthy")
	expired, _ := lab.Endpoint("expired-leaf")
	targets := fmt.Sprintf(`targets:
  - endpoint: %s
    server_name: %s
    service: lab-healthy
    ca_file: /lab/roots.pem
    collection_interval: 2s
  - endpoint: %s
    server_name: %s
    service: lab-expired-leaf
    ca_file: /lab/roots.pem
    collection_interval: 2s
`, healthy.Address, healthy.ServerName, expired.Address, expired.ServerName)
	if err := os.WriteFile(filepath.Join(rootfs, "etc/certpulse/targets.yaml"), []byte(targets), 0o644); err != nil {
		t.Fatal(err)
	}
	// What every container runtime (and the kubelet) provides: /proc (the
	// memory_limiter reads the cgroup limit through it).
	procDir := filepath.Join(rootfs, "proc")
	if err := os.MkdirAll(procDir, 0o555); err != nil {
		t.Fatal(err)
	}
	run(t, "mount", "-t", "proc", "proc", procDir)
	defer exec.Command("umount", "-l", procDir).Run()
	for _, p := range []string{"lab", "lab/roots.pem"} {
		if err := os.Chmod(filepath.Join(rootfs, p), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	sink := newOTLPSink(t)
	var b [1]byte
	_, _ = rand.Read(b[:])
	podIP := fmt.Sprintf("127.0.0.%d", 2+int(b[0])%250) // the shipped ports, on an address of their own
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	args := append([]string{"--userspec=10001:10001", rootfs}, ic.Entrypoint...)
	args = append(args, ic.Cmd...)
	// Two additions to the shipped config: the image's own trust store as a
	// file target, read by the image's user, and the lab's loopback OCSP,
	// CRL and AIA server allowed.
	args = append(args, "--config", "yaml:receivers::tlsprobe::files: [{path: /etc/ssl/certs/ca-certificates.crt, service: image-trust-store}]",
		"--config", "yaml:receivers::tlsprobe::allow_private_fetch_networks: [127.0.0.0/8]")
	cmd := exec.CommandContext(ctx, "chroot", args...)
	cmd.Env = []string{"POD_IP=" + podIP, "NODE_NAME=chroot-node",
		"MIMIR_URL=" + sink.URL + "/mimir", "MIMIR_TENANT=tenant-m", "LOKI_URL=" + sink.URL + "/loki", "LOKI_TENANT=tenant-l",
		"CERTPULSE_WEBHOOK_TOKEN=chroot-token", "CERTPULSE_WEBHOOK_HMAC=chroot-hmac-0123456789abcdef"}
	for _, e := range ic.Env {
		if strings.HasPrefix(e, "CERTPULSE_STATE_DIR=") {
			cmd.Env = append(cmd.Env, e)
		}
	}
	exited, stderr := tb.Start(t, cmd)

	var probes map[string]string
	deadline := time.Now().Add(45 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			t.Fatalf("the image's collector exited: %v\n%s", err, stderr.String())
		case <-time.After(300 * time.Millisecond):
		}
		probes = map[string]string{}
		for _, lr := range sink.records(attrs.EventProbeResult) {
			s, _ := lr.Attributes().Get(attrs.ServerAddress)
			r, _ := lr.Attributes().Get(attrs.ReasonKey)
			probes[s.Str()] = r.Str()
		}
		if len(probes) == 2 && len(sink.records(attrs.EventFileResult)) > 0 {
			break
		}
	}
	if probes[healthy.ServerName] != "ok" || probes[expired.ServerName] != "expired_leaf" {
		t.Fatalf("probe results from the image: %v\n%s", probes, stderr.String())
	}
	// The image's own trust store, read as uid 10001: one record per root.
	if n := len(sink.records(attrs.EventFileResult)); n < 50 {
		t.Errorf("only %d records for the image's CA bundle", n)
	}
	// It runs as the image's user.
	status, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", cmd.Process.Pid))
	if !strings.Contains(string(status), "Uid:\t10001\t") {
		t.Errorf("the collector does not run as uid 10001:\n%s", status)
	}
	// The health check answers on the shipped port.
	if resp, err := http.Get("http://" + podIP + ":13133/"); err != nil || resp.StatusCode != http.StatusOK {
		t.Errorf("health_check on %s:13133: %v", podIP, err)
	} else {
		resp.Body.Close()
	}
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		sink.mu.Lock()
		n := sink.metrics
		sink.mu.Unlock()
		if n > 0 {
			break
		}
	}
	sink.mu.Lock()
	if sink.metrics == 0 {
		t.Errorf("no metrics reached the Mimir OTLP endpoint")
	}
	// The routing keys and the endpoint are data point attributes (Mimir
	// labels without Mimir-side config).
	for _, k := range []string{"service.name", "certpulse.vantage", "certpulse.criticality", "server.address", "server.port", "certpulse.client_profile", "certpulse.cert.role"} {
		if !sink.labels[k] {
			t.Errorf("data points lack %s (labels: %v)", k, sink.labels)
		}
	}
	for _, want := range []string{"/loki/otlp/v1/logs tenant-l", "/mimir/otlp/v1/metrics tenant-m"} {
		if !sink.tenants[want] {
			t.Errorf("no request %q (tenant header); got %v", want, sink.tenants)
		}
	}
	sink.mu.Unlock()
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("the collector did not stop cleanly: %v\n%s", err, stderr.String())
		}
	case <-time.After(20 * time.Second):
		t.Errorf("the collector did not stop within 20s of SIGTERM")
	}
}
