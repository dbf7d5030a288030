package tlsprobereceiver

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/tlsinspect"
	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// labProcess starts the fault lab in its own process (CERTPULSE_LAB_BIN, or
// built here), so the CPU measured below is the prober's alone.
func labProcess(b *testing.B) *faultlab.Process {
	bin := os.Getenv("CERTPULSE_LAB_BIN")
	if bin == "" {
		bin = filepath.Join(b.TempDir(), "certpulse-lab")
		out, err := exec.Command("go", "build", "-o", bin, "github.com/certpulse/certpulse/cmd/certpulse-lab").CombinedOutput()
		if err != nil {
			b.Fatalf("build certpulse-lab: %v\n%s", err, out)
		}
	}
	p, err := faultlab.StartProcess(bin, b.TempDir())
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(p.Stop)
	return p
}

func cpuTime() time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// BenchmarkProbeVsFloor measures, in one run, the CPU per probe of the full
// tlsprobe probe (handshake, own validation, OCSP/CRL (cached), findings,
// log record and metrics) against the floor: a plain handshake with Go's
// chain verification to the same server.
func BenchmarkProbeVsFloor(b *testing.B) {
	lab := labProcess(b)
	ep, _ := lab.Endpoint("healthy")
	pem, err := os.ReadFile(lab.Files.Roots)
	if err != nil {
		b.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)

	cfg := createDefaultConfig()
	cfg.AllowPrivateFetchNetworks = []string{"127.0.0.0/8"} // the lab's responders
	in := tlsinspect.New(cfg.inspectOptions())
	defer in.Close()
	target := &probeTarget{
		meta:   newTargetMeta(TargetConfig{Endpoint: ep.Address, ServerName: ep.ServerName, Service: "bench"}),
		target: tlsinspect.Target{Endpoint: ep.Address, ServerName: ep.ServerName, Profiles: []tlsinspect.Profile{{Name: "default", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, Roots: roots}}},
	}
	em := newEmitter(metadata.NewMetricsBuilder(cfg.MetricsBuilderConfig, receivertest.NewNopSettings(metadata.Type)), "bench")
	j := &job{target: target, failures: map[[3]string]int64{}}
	ctx := context.Background()
	// Warm the OCSP/CRL/AIA caches and the connection pools.
	if r := in.Inspect(ctx, target.target); r[0].Primary() != "ok" {
		b.Fatalf("healthy endpoint: %+v", r[0].Findings)
	}

	floor := func() {
		c, err := tls.Dial("tcp", ep.Address, &tls.Config{ServerName: ep.ServerName, RootCAs: roots, MinVersion: tls.VersionTLS12})
		if err != nil {
			b.Fatal(err)
		}
		_ = c.Close()
	}
	full := func() {
		res := in.Inspect(ctx, target.target)
		_ = em.logs(target, res, nil)
		_ = em.metrics(j, j.target, res)
	}
	b.ResetTimer()
	c0 := cpuTime()
	for i := 0; i < b.N; i++ {
		floor()
	}
	c1 := cpuTime()
	for i := 0; i < b.N; i++ {
		full()
	}
	c2 := cpuTime()
	b.StopTimer()
	fl := float64(c1-c0) / float64(b.N)
	fu := float64(c2-c1) / float64(b.N)
	b.ReportMetric(fl, "floor-cpu-ns/op")
	b.ReportMetric(fu, "probe-cpu-ns/op")
	b.ReportMetric(fu/fl, "probe/floor")
}
