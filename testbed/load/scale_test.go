package load

import (
	"bufio"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"go.opentelemetry.io/collector/pdata/plog/plogotlp"
	"gopkg.in/yaml.v3"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// scaleParams: the run's size, from the environment (make testbed-scale:
// the 100,000 targets at 5 minutes, 3 vantages on 3 agents; make
// scale: a short form).
type scaleParams struct {
	targets, agents, vantages int
	interval, duration        time.Duration
	series                    string
	// tier: "single" (single-tier.yaml: each agent correlates its own
	// results) or "gateway" (agent.yaml publishing to Kafka, kfake in this
	// process, and one gateway.yaml correlating every agent's results).
	tier string
	// gomemlimit: the agents' Go soft memory limit, as a deployment sets
	// it (none by default). A limit under the live heap makes the GC run
	// all the time: measured, 63% of an agent's CPU at 180MiB.
	gomemlimit string
}

func scaleFromEnv(t *testing.T) scaleParams {
	p := scaleParams{targets: 3000, agents: 3, vantages: 2, interval: 30 * time.Second, series: "lean", tier: "single"}
	atoi := func(k string, v *int) {
		if s := os.Getenv(k); s != "" {
			n, err := strconv.Atoi(s)
			if err != nil || n <= 0 {
				t.Fatalf("%s=%q: want a positive number", k, s)
			}
			*v = n
		}
	}
	dur := func(k string, v *time.Duration) {
		if s := os.Getenv(k); s != "" {
			d, err := time.ParseDuration(s)
			if err != nil || d <= 0 {
				t.Fatalf("%s=%q: want a duration", k, s)
			}
			*v = d
		}
	}
	atoi("CERTPULSE_SCALE_TARGETS", &p.targets)
	atoi("CERTPULSE_SCALE_AGENTS", &p.agents)
	atoi("CERTPULSE_SCALE_VANTAGES", &p.vantages)
	dur("CERTPULSE_SCALE_INTERVAL", &p.interval)
	p.duration = 2*p.interval + 10*time.Second
	dur("CERTPULSE_SCALE_DURATION", &p.duration)
	if s := os.Getenv("CERTPULSE_SCALE_SERIES"); s != "" {
		p.series = s
	}
	switch s := os.Getenv("CERTPULSE_SCALE_TIER"); s {
	case "", "single":
	case "gateway":
		p.tier = s
	default:
		t.Fatalf("CERTPULSE_SCALE_TIER=%q: want single or gateway", s)
	}
	if s := os.Getenv("CERTPULSE_SCALE_GOMEMLIMIT"); s != "" {
		p.gomemlimit = s
	}
	if p.vantages > p.agents {
		t.Fatalf("CERTPULSE_SCALE_VANTAGES=%d > %d agents", p.vantages, p.agents)
	}
	return p
}

// TestScale runs agents of the built distribution, each with the shipped
// single-tier.yaml (tlsprobe, the correlator, Mimir and Loki exporters),
// sharing one targets file of distinct names on the lab's wildcard endpoint
// and a static certpulse_vantages membership with k vantages per target;
// metrics into Prometheus 3, logs into a counting OTLP sink. It measures,
// after the first interval (start-up and the first spread of probes):
// probes per agent against targets x k / agents per interval, CPU per probe
// against the floor (Go's crypto/tls handshake with verification, measured
// in this process against the same endpoint first), RSS per agent,
// lateness p99 (tlsprobe_schedule_lateness), the correlator's records in
// against the probes out, and the series in Prometheus 3.
func TestScale(t *testing.T) {
	bin, labBin, promBin := env(t, "CERTPULSE_BIN"), env(t, "CERTPULSE_LAB_BIN"), env(t, "PROMETHEUS3_BIN")
	p := scaleFromEnv(t)
	ctx, cancel := context.WithTimeout(context.Background(), p.duration+5*time.Minute)
	defer cancel()
	dir := t.TempDir()
	lab, err := faultlab.StartProcess(labBin, filepath.Join(dir, "lab"))
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Stop()
	ep, _ := lab.Endpoint("healthy-wildcard")
	floor := handshakeFloor(t, ep.Address, lab.Files.Roots, 2000)
	// The same job done by blackbox_exporter, for comparison (not a goal).
	bb, bbOK := blackboxPerProbe(t, ctx, filepath.Join(dir, "blackbox"), ep.Address, lab.Files.Roots, 2000)

	// JSON, which the receiver decodes as a stream (a YAML file of
	// 100,000 entries costs its node tree at start: docs/performance.md).
	var tf strings.Builder
	tf.WriteString("{\"targets\": [\n")
	for i := 0; i < p.targets; i++ {
		if i > 0 {
			tf.WriteString(",\n")
		}
		fmt.Fprintf(&tf, "  {\"endpoint\": %q, \"server_name\": \"t%d.wild.%s\", \"service\": \"scale-%d\", \"ca_file\": %q}", ep.Address, i, faultlab.Domain, i%500, lab.Files.Roots)
	}
	tf.WriteString("\n]}\n")
	tfPath := filepath.Join(dir, "targets.json")
	if err := os.WriteFile(tfPath, []byte(tf.String()), 0o600); err != nil {
		t.Fatal(err)
	}
	prom := tb.Prometheus3(t, ctx, promBin)
	sink := &countingSink{byVantage: map[string]int{}}
	logSrv := httptest.NewServer(sink)
	defer logSrv.Close()

	var members []any
	for i := 0; i < p.agents; i++ {
		members = append(members, map[string]any{"name": fmt.Sprintf("agent-%d", i)})
	}
	var broker string
	var gw *scaleAgent
	if p.tier == "gateway" {
		kport := tb.FreePort(t)
		cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kport), kfake.SeedTopics(6, "certpulse-logs", "certpulse-audit"))
		if err != nil {
			t.Fatal(err)
		}
		defer cluster.Close()
		broker = fmt.Sprintf("127.0.0.1:%d", kport)
		gw = startScaleGateway(t, ctx, bin, filepath.Join(dir, "gateway"), p, lab.Files.Roots, prom, logSrv.URL, broker)
	}
	agents := make([]*scaleAgent, p.agents)
	for i := range agents {
		agents[i] = startScaleAgent(t, ctx, bin, filepath.Join(dir, fmt.Sprintf("agent-%d", i)), i, p, members, tfPath, prom, logSrv.URL, broker)
	}
	procs := agents
	if gw != nil {
		procs = append(append([]*scaleAgent(nil), agents...), gw)
	}
	t.Logf("%d targets, interval %s, k = %d of %d agents, %s tier, series %s, GOMEMLIMIT %s: %.0f probes/s expected in all; floor %.2f ms CPU per handshake",
		p.targets, p.interval, p.vantages, p.agents, p.tier, p.series, p.gomemlimit, float64(p.targets*p.vantages)/p.interval.Seconds(), floor.Seconds()*1000)
	if bbOK {
		t.Logf("blackbox_exporter (tcp prober with TLS, through /probe): %.2f ms CPU per probe, %.2fx the floor", bb.Seconds()*1000, bb.Seconds()/floor.Seconds())
	} else {
		t.Logf("blackbox_exporter: not installed, not measured")
	}

	// Measure from the end of the first interval to the end of the run.
	warm := time.Now().Add(p.interval)
	end := time.Now().Add(p.duration)
	for time.Now().Before(warm) {
		sampleRSS(t, procs)
		time.Sleep(time.Second)
	}
	for _, a := range procs {
		a.cpu0, _, _, _ = procStat(a.pid)
		a.late0 = a.lateness(t)
		a.in0 = a.correlatorIn(t)
	}
	probes0 := sink.snapshot()
	t0 := time.Now()
	if out := os.Getenv("CERTPULSE_SCALE_PROFILE"); out != "" {
		// A CPU profile of the first agent (or of the gateway, with
		// CERTPULSE_SCALE_PROFILE_OF=gateway) over most of the measurement.
		of := agents[0]
		if os.Getenv("CERTPULSE_SCALE_PROFILE_OF") == "gateway" && gw != nil {
			of = gw
		}
		secs := max(int(time.Until(end).Seconds())-5, 1)
		go func() {
			resp, err := http.Get(fmt.Sprintf("%sprofile?seconds=%d", of.pprof, secs))
			if err != nil {
				t.Logf("profile: %v", err)
				return
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			_ = os.WriteFile(out, b, 0o644)
		}()
	}
	for time.Now().Before(end) {
		sampleRSS(t, procs)
		time.Sleep(time.Second)
	}
	elapsed := time.Since(t0)
	probes1 := sink.snapshot()
	if out := os.Getenv("CERTPULSE_SCALE_HEAP"); out != "" {
		// The first agent's heap profile at the end (go tool pprof -top
		// -inuse_space: where the live heap goes).
		if resp, err := http.Get(agents[0].pprof + "heap?gc=1"); err == nil {
			b, _ := io.ReadAll(resp.Body)
			_ = resp.Body.Close()
			_ = os.WriteFile(out, b, 0o644)
		}
	}
	perAgentWant := float64(p.targets*p.vantages) / float64(p.agents) / p.interval.Seconds() * elapsed.Seconds()
	var rows []string
	total := 0
	for _, a := range agents {
		cpu1, _, hwm, err := procStat(a.pid)
		if err != nil {
			t.Fatalf("%s gone: %v", a.name, err)
		}
		n := probes1[a.name] - probes0[a.name]
		total += n
		late := a.lateness(t).minus(a.late0)
		in := a.correlatorIn(t) - a.in0
		cpuPer := (cpu1 - a.cpu0) / time.Duration(max(n, 1))
		anon, file := rssSplit(a.pid)
		rows = append(rows, fmt.Sprintf("| %s | %d | %.0f | %.2f | %.2f ms | %.2fx | %.0f MiB | %.0f + %.0f MiB | %.0f MB | %s | %.0f |",
			a.name, n, perAgentWant, (cpu1-a.cpu0).Seconds()/elapsed.Seconds(), cpuPer.Seconds()*1000, cpuPer.Seconds()/floor.Seconds(),
			float64(hwm)/(1<<20), float64(anon)/(1<<20), float64(file)/(1<<20), float64(a.liveHeap(t))/1e6, late.quantile(0.99), in))
		if float64(n) < 0.95*perAgentWant {
			t.Errorf("%s: %d probes in %s, want >= 95%% of %.0f", a.name, n, elapsed.Round(time.Second), perAgentWant)
		}
		if hwm > 256<<20 {
			t.Errorf("%s: peak RSS %.0f MiB, goal <= 256 MiB", a.name, float64(hwm)/(1<<20))
		}
		if q := late.quantileSeconds(0.99); q > 1 {
			t.Errorf("%s: lateness p99 %s, want <= 1s (probes on schedule)", a.name, late.quantile(0.99))
		}
		// The two counts are read at different instants (records queued in
		// the exporter at the first read arrive after it): within 1%.
		if p.tier == "single" && in < 0.99*float64(n) {
			t.Errorf("%s: the correlator took %.0f records, fewer than the %d probes", a.name, in, n)
		}
	}
	if gw != nil {
		// The gateway: every agent's results through Kafka into its
		// correlator; CPU per record, its memory, and whether it keeps up.
		cpu1, _, hwm, err := procStat(gw.pid)
		if err != nil {
			t.Fatalf("gateway gone: %v", err)
		}
		in := gw.correlatorIn(t) - gw.in0
		anon, file := rssSplit(gw.pid)
		rows = append(rows, fmt.Sprintf("| gateway | %.0f records in | %d probes | %.2f | %.2f ms a record | | %.0f MiB | %.0f + %.0f MiB | %.0f MB | | %.0f |",
			in, total, (cpu1-gw.cpu0).Seconds()/elapsed.Seconds(), (cpu1-gw.cpu0).Seconds()*1000/max(in, 1),
			float64(hwm)/(1<<20), float64(anon)/(1<<20), float64(file)/(1<<20), float64(gw.liveHeap(t))/1e6, in))
		if in < 0.99*float64(total) {
			t.Errorf("gateway: the correlator took %.0f records, fewer than the %d probes the agents made", in, total)
		}
	}
	// Series that had a sample within the last interval (an instant
	// query sees 5 minutes only: with a longer interval it would count the
	// targets probed in the last 5 minutes).
	window := fmt.Sprintf("%ds", int((p.interval + time.Minute).Seconds()))
	series, _ := promValue(prom, `count(count_over_time({__name__=~"tlsprobe_.+"}[`+window+`]))`)
	info, _ := promValue(prom, `count(count_over_time(target_info[`+window+`]))`)
	t.Logf("measured over %s after the first interval:\n| agent | probes | expected | CPU (cores) | CPU per probe | per probe / floor | peak RSS | RSS at end, anonymous + file | live heap at end | lateness p99 | correlator records in |\n| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |\n%s\nPrometheus 3: %.0f tlsprobe series (%.2f per target), %.0f target_info",
		elapsed.Round(time.Second), strings.Join(rows, "\n"), series, series/float64(p.targets), info)
	if p.series == "lean" && series > 3*float64(p.targets) {
		t.Errorf("lean: %.0f tlsprobe series for %d healthy targets, goal <= 3 per target", series, p.targets)
	}
}

// handshakeFloor: CPU per handshake of Go's crypto/tls with verification
// against the lab root, in this process (getrusage), n distinct names.
func handshakeFloor(t *testing.T, addr, rootsFile string, n int) time.Duration {
	pem, err := os.ReadFile(rootsFile)
	if err != nil {
		t.Fatal(err)
	}
	roots := x509.NewCertPool()
	roots.AppendCertsFromPEM(pem)
	cpu := func() time.Duration {
		var ru syscall.Rusage
		_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
		return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	c0 := cpu()
	for i := 0; i < n; i++ {
		conn, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: roots, ServerName: fmt.Sprintf("f%d.wild.%s", i, faultlab.Domain)})
		if err != nil {
			t.Fatalf("floor handshake: %v", err)
		}
		_ = conn.Close()
	}
	return (cpu() - c0) / time.Duration(n)
}

type scaleAgent struct {
	name, metrics string
	pprof         string // the agent's pprof extension
	pid           int
	cpu0          time.Duration
	late0         histogram
	in0           float64
	maxRSS        int64
}

func startScaleAgent(t *testing.T, ctx context.Context, bin, dir string, i int, p scaleParams, members []any, targets, prom, logs, broker string) *scaleAgent {
	t.Helper()
	name := fmt.Sprintf("agent-%d", i)
	exporters := map[string]any{"otlphttp/mimir": map[string]any{"endpoint": prom + "/api/v1/otlp"}}
	shipped, env := "single-tier.yaml", []string{"NODE_NAME=" + name, "LOKI_URL=http://unused.invalid", "LOKI_TENANT=certpulse"}
	if broker != "" {
		// The gateway tier: the agent publishes its logs to Kafka.
		shipped, env = "agent.yaml", []string{"NODE_NAME=" + name, "KAFKA_BROKERS=" + broker}
	} else {
		exporters["otlphttp/loki"] = map[string]any{"endpoint": logs}
	}
	overlay := map[string]any{
		"extensions": map[string]any{
			"certpulse_vantages": map[string]any{"self": name, "count": p.vantages, "static": members},
		},
		"receivers": map[string]any{
			"tlsprobe": map[string]any{
				"collection_interval": p.interval.String(), "timeout": "5s", "max_concurrency": 64,
				"allow_private_fetch_networks": []string{"127.0.0.0/8"}, "targets_file": targets,
				"vantages": "certpulse_vantages", "series": p.series,
			},
			"certlifecycle": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))},
		},
		"exporters": exporters,
		"service": map[string]any{
			"extensions": []string{"health_check", "file_storage", "bearertokenauth/lifecycle", "certpulse_trigger", "certpulse_vantages", "pprof"},
		},
	}
	return startScaleProc(t, ctx, bin, dir, name, shipped, overlay, p.gomemlimit, env)
}

// startScaleGateway starts one gateway of the built distribution with the
// shipped gateway.yaml: the agents' logs from Kafka into the correlator,
// then to the counting sink (every healthy result passed, so each probe is
// accounted for) and the remediation exporter.
func startScaleGateway(t *testing.T, ctx context.Context, bin, dir string, p scaleParams, roots, prom, logs, broker string) *scaleAgent {
	t.Helper()
	overlay := map[string]any{
		"extensions": map[string]any{},
		"processors": map[string]any{"tlscorrelator": map[string]any{"healthy_results": "all"}},
		"exporters": map[string]any{
			"remediation": map[string]any{"approval": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))}},
		},
		"service": map[string]any{"extensions": []string{"health_check", "file_storage", "basicauth/approval", "pprof"}},
	}
	env := []string{"KAFKA_BROKERS=" + broker, "LOKI_URL=" + logs, "LOKI_TENANT=certpulse", "CERTPULSE_APPROVERS_HTPASSWD=/dev/null",
		"CERTPULSE_VERIFY_CA_FILE=" + roots, "CERTPULSE_RELOAD_WEBHOOK=http://127.0.0.1:1/reload", "CERTPULSE_ACTION_HMAC=scale-action-hmac-0123456789",
		"CERTPULSE_TRAIL_SECRET=scale-trail-secret-0123456789", "ALERTMANAGER_URL=http://127.0.0.1:1", "CERTPULSE_LIFECYCLE_URL=http://127.0.0.1:1/v1/lifecycle",
		"MIMIR_URL=" + prom + "/api/v1"}
	return startScaleProc(t, ctx, bin, dir, "gateway", "gateway.yaml", overlay, p.gomemlimit, env)
}

// startScaleProc runs the built distribution with a shipped config and an
// overlay, to which it adds the health check, pprof and the collector's own
// metrics on free ports (the overlay's service.extensions must list
// health_check and pprof), and waits for the health check.
func startScaleProc(t *testing.T, ctx context.Context, bin, dir, name, shipped string, overlay map[string]any, gomemlimit string, env []string) *scaleAgent {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	health, pprof, telemetry := tb.FreePort(t), tb.FreePort(t), tb.FreePort(t)
	exts, _ := overlay["extensions"].(map[string]any)
	exts["health_check"] = map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", health)}
	exts["pprof"] = map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", pprof)}
	svc, _ := overlay["service"].(map[string]any)
	svc["telemetry"] = map[string]any{"metrics": map[string]any{"level": "normal", "readers": []any{
		map[string]any{"pull": map[string]any{"exporter": map[string]any{"prometheus": map[string]any{"host": "127.0.0.1", "port": telemetry}}}},
	}}}
	ov, err := yaml.Marshal(overlay)
	if err != nil {
		t.Fatal(err)
	}
	ovPath := filepath.Join(dir, "overlay.yaml")
	if err := os.WriteFile(ovPath, ov, 0o600); err != nil {
		t.Fatal(err)
	}
	config, _ := filepath.Abs(filepath.Join("..", "..", "distributions", "otelcol-certpulse", shipped))
	procEnv := append([]string{"POD_IP=127.0.0.1", "CERTPULSE_STATE_DIR=" + filepath.Join(dir, "state"),
		"CERTPULSE_WEBHOOK_TOKEN=scale-token", "CERTPULSE_WEBHOOK_HMAC=scale-hmac-0123456789", "MIMIR_URL=http://unused.invalid",
		"MIMIR_TENANT=certpulse"}, env...)
	if gomemlimit != "" {
		procEnv = append(procEnv, "GOMEMLIMIT="+gomemlimit)
	}
	pid := tb.StartReady(t, ctx, name, fmt.Sprintf("http://127.0.0.1:%d/", health), procEnv, bin, "--config", config, "--config", ovPath)
	return &scaleAgent{name: name, pid: pid, metrics: fmt.Sprintf("http://127.0.0.1:%d/metrics", telemetry),
		pprof: fmt.Sprintf("http://127.0.0.1:%d/debug/pprof/", pprof)}
}

// rssSplit is the process's resident memory now: anonymous (the heap,
// stacks) and file-backed (the binary's pages, mapped bbolt files).
func rssSplit(pid int) (anon, file int64) {
	status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(status), "\n") {
		var kb int64
		if v, ok := strings.CutPrefix(line, "RssAnon:"); ok {
			_, _ = fmt.Sscanf(v, "%d", &kb)
			anon = kb << 10
		}
		if v, ok := strings.CutPrefix(line, "RssFile:"); ok {
			_, _ = fmt.Sscanf(v, "%d", &kb)
			file = kb << 10
		}
	}
	return anon, file
}

// liveHeap is the agent's heap after a forced GC (its pprof extension's
// heap?gc=1 MemStats: HeapAlloc).
func (a *scaleAgent) liveHeap(t *testing.T) int64 {
	resp, err := http.Get(a.pprof + "heap?gc=1&debug=1")
	if err != nil {
		t.Logf("%s heap: %v", a.name, err)
		return 0
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "# HeapAlloc = "); ok {
			n, _ := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			return n
		}
	}
	return 0
}

func sampleRSS(t *testing.T, agents []*scaleAgent) {
	for _, a := range agents {
		_, rss, _, err := procStat(a.pid)
		if err != nil {
			t.Fatalf("%s gone: %v", a.name, err)
		}
		a.maxRSS = max(a.maxRSS, rss)
	}
}

// scrape returns the agent's own metrics lines whose name starts with prefix.
func (a *scaleAgent) scrape(t *testing.T, prefix string) []string {
	resp, err := http.Get(a.metrics)
	if err != nil {
		t.Fatalf("%s metrics: %v", a.name, err)
	}
	defer resp.Body.Close()
	var out []string
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 1<<16), 1<<20)
	for sc.Scan() {
		if strings.HasPrefix(sc.Text(), prefix) {
			out = append(out, sc.Text())
		}
	}
	return out
}

// histogram: cumulative bucket counts by upper bound.
type histogram map[float64]float64

func (a *scaleAgent) lateness(t *testing.T) histogram {
	h := histogram{}
	for _, l := range a.scrape(t, "otelcol_tlsprobe_schedule_lateness") {
		i := strings.Index(l, `le="`)
		if !strings.Contains(l, "_bucket") || i < 0 {
			continue
		}
		le := l[i+4:]
		le = le[:strings.IndexByte(le, '"')]
		b, err1 := strconv.ParseFloat(le, 64)
		v, err2 := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
		if err1 == nil && err2 == nil {
			h[b] += v
		}
	}
	return h
}

func (h histogram) minus(o histogram) histogram {
	out := histogram{}
	for b, v := range h {
		out[b] = v - o[b]
	}
	return out
}

// quantileSeconds: the upper bound of the bucket holding the q-quantile.
func (h histogram) quantileSeconds(q float64) float64 {
	var bounds []float64
	for b := range h {
		bounds = append(bounds, b)
	}
	sort.Float64s(bounds)
	if len(bounds) == 0 || h[math.Inf(1)] == 0 {
		return 0
	}
	total := h[math.Inf(1)]
	for _, b := range bounds {
		if h[b] >= q*total {
			return b
		}
	}
	return math.Inf(1)
}

func (h histogram) quantile(q float64) string {
	if h[math.Inf(1)] == 0 {
		return "none"
	}
	return fmt.Sprintf("<= %gs (%.0f runs)", h.quantileSeconds(q), h[math.Inf(1)])
}

// correlatorIn: probe records the correlator processed (its own
// otelcol_tlscorrelator_records counter).
func (a *scaleAgent) correlatorIn(t *testing.T) float64 {
	var n float64
	for _, l := range a.scrape(t, "otelcol_tlscorrelator_records") {
		if strings.Contains(l, `kind="probe"`) {
			v, _ := strconv.ParseFloat(l[strings.LastIndexByte(l, ' ')+1:], 64)
			n += v
		}
	}
	return n
}

// countingSink counts the probe results it receives by vantage (an OTLP
// logs endpoint: records are decoded and dropped).
type countingSink struct {
	mu        sync.Mutex
	byVantage map[string]int
}

func (s *countingSink) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var in io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		in = zr
	}
	body, err := io.ReadAll(in)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	req := plogotlp.NewExportRequest()
	if strings.Contains(r.Header.Get("Content-Type"), "json") {
		err = req.UnmarshalJSON(body)
	} else {
		err = req.UnmarshalProto(body)
	}
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	counts := map[string]int{}
	rls := req.Logs().ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		v, _ := rls.At(i).Resource().Attributes().Get(attrs.Vantage)
		sls := rls.At(i).ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			lrs := sls.At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				if lr := lrs.At(k); lr.EventName() == attrs.EventProbeResult {
					if rv, ok := lr.Attributes().Get(attrs.Vantage); ok {
						// The gateway tier: agent.yaml moves the vantage
						// to the record (Kafka partitions by resource).
						counts[rv.AsString()]++
					} else {
						counts[v.AsString()]++
					}
				}
			}
		}
	}
	s.mu.Lock()
	for k, n := range counts {
		s.byVantage[k] += n
	}
	s.mu.Unlock()
	w.Header().Set("Content-Type", "application/x-protobuf")
	_, _ = w.Write(nil)
}

func (s *countingSink) snapshot() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.byVantage {
		out[k] = v
	}
	return out
}

// promValue runs an instant query and returns its first sample's value.
func promValue(base, expr string) (float64, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r struct {
		Data struct {
			Result []struct {
				Value [2]any `json:"value"`
			} `json:"result"`
		} `json:"data"`
	}
	raw, _ := io.ReadAll(resp.Body)
	if err := json.NewDecoder(bytes.NewReader(raw)).Decode(&r); err != nil {
		return 0, err
	}
	if len(r.Data.Result) == 0 {
		return 0, nil
	}
	s, _ := r.Data.Result[0].Value[1].(string)
	return strconv.ParseFloat(s, 64)
}
