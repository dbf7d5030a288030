// Package detect measures time to detect and to act, side by side: the
// built certpulse distribution and a blackbox_exporter + Prometheus +
// Alertmanager pipeline (typical and aggressive settings) watch the same
// switchable TLS endpoints while faults are injected at recorded instants.
// It takes about 8 minutes: run it with `make testbed-detect`.
package detect

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// Fault kinds: what the endpoint starts doing at its injection instant.
const (
	healthy = iota
	expiredLeaf
	noIntermediate // a deploy ships the chain without its intermediate
	ocspStall      // the leaf's OCSP responder stalls
	reset          // the server resets connections
)

var kindNames = map[int]string{expiredLeaf: "expired leaf", noIntermediate: "deploy without intermediate", ocspStall: "OCSP responder stalls", reset: "connection reset"}

// switchServer is a TLS endpoint whose behaviour switches at an instant.
type switchServer struct {
	ln    net.Listener
	mode  atomic.Int32
	certs map[int]*tls.Certificate
}

func (s *switchServer) serve() {
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		go func() {
			defer c.Close()
			m := int(s.mode.Load())
			if m == reset {
				_ = c.(*net.TCPConn).SetLinger(0)
				return
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			tc := tls.Server(c, &tls.Config{Certificates: []tls.Certificate{*s.certs[m]}})
			if tc.Handshake() == nil {
				_, _ = io.Copy(io.Discard, tc)
			}
		}()
	}
}

// firsts records the first time each key was seen.
type firsts struct {
	mu sync.Mutex
	at map[string]time.Time
}

func (f *firsts) see(k string, t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if _, ok := f.at[k]; !ok {
		f.at[k] = t
	}
}

func (f *firsts) get(k string) (time.Time, bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	t, ok := f.at[k]
	return t, ok
}

func newFirsts() *firsts { return &firsts{at: map[string]time.Time{}} }

// notifyExporter is the remediation exporter block both pipelines use:
// every incident of severity ticket and above posts to url.
func notifyExporter(url string) string {
	return fmt.Sprintf(`  remediation:
    guardrails: {budget: 10000}
    policies:
      - name: notify-owner
        reasons: []
        min_severity: ticket
        verify: false
        actions:
          - name: notify
            type: webhook
            operation: notify
            url: %s
            body: '{"service":{{json .Incident.Service}},"reason":{{json .Incident.Reason}}}'
`, url)
}

// postDeployed posts a deployed lifecycle event for service, as a
// pipeline would.
func postDeployed(lcPort int, service string) {
	body := fmt.Sprintf(`{"type":"deployed","service":%q,"job_id":"deploy-%s"}`, service, service)
	req, _ := http.NewRequest(http.MethodPost, fmt.Sprintf("http://127.0.0.1:%d/v1/lifecycle", lcPort), strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer detect-token")
	if res, err := http.DefaultClient.Do(req); err == nil {
		res.Body.Close()
	}
}

func need(t *testing.T, name string) string {
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatalf("%s is required (Debian package: see scripts/install-test-deps.sh): %v", name, err)
	}
	return p
}

func run(t *testing.T, ctx context.Context, name string, args ...string) {
	tb.Start(t, exec.CommandContext(ctx, name, args...))
}

func write(t *testing.T, path, content string) {
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// TestDetect runs both pipelines against the same injected faults and
// reports fault -> first incident record and fault -> webhook, per
// pipeline, setting and fault kind.
func TestDetect(t *testing.T) {
	if os.Getenv("CERTPULSE_DETECT") == "" {
		t.Skip("takes about 8 minutes: run `make testbed-detect`")
	}
	bin := os.Getenv("CERTPULSE_BIN")
	if bin == "" {
		t.Fatal("CERTPULSE_BIN is required")
	}
	perKind := 20
	spread := 3 * time.Minute
	const trafficPerKind = 8
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	dir := t.TempDir()
	files, err := lab.WriteFiles(filepath.Join(dir, "lab"))
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	names := []string{"*.detect.test"}
	good, err := lab.IssueLeaf(names, now.Add(-time.Hour), now.Add(60*24*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	old, err := lab.IssueLeaf(names, now.Add(-90*24*time.Hour), now.Add(-time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	stall, err := lab.IssueLeaf(names, now.Add(-time.Hour), now.Add(60*24*time.Hour), true)
	if err != nil {
		t.Fatal(err)
	}
	chain := func(leaf *faultlab.CA, inter bool) *tls.Certificate {
		c := &tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw}, PrivateKey: leaf.Key}
		if inter {
			c.Certificate = append(c.Certificate, lab.Inter.Cert.Raw)
		}
		return c
	}
	certs := map[int]*tls.Certificate{healthy: chain(good, true), expiredLeaf: chain(old, true), noIntermediate: chain(good, false), ocspStall: chain(stall, true)}

	type target struct {
		kind    int
		service string
		srv     *switchServer
		addr    string
		at      time.Time // injection instant
	}
	var targets []*target
	for _, k := range []int{expiredLeaf, noIntermediate, ocspStall, reset} {
		for i := 0; i < perKind; i++ {
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				t.Fatal(err)
			}
			s := &switchServer{ln: ln, certs: certs}
			go s.serve()
			t.Cleanup(func() { _ = ln.Close() })
			targets = append(targets, &target{kind: k, service: fmt.Sprintf("svc-%d-%02d", k, i), srv: s, addr: ln.Addr().String()})
		}
	}
	byAddr := map[string]*target{}
	var tf strings.Builder
	tf.WriteString("targets:\n")
	for _, tg := range targets {
		byAddr[tg.addr] = tg
		fmt.Fprintf(&tf, "  - {endpoint: %q, server_name: probe.detect.test, service: %s, environment: detect, criticality: high, ca_file: %q}\n", tg.addr, tg.service, files.Roots)
	}
	write(t, filepath.Join(dir, "targets.yaml"), tf.String())

	// Receivers of the actions: certpulse's webhook, each Alertmanager's.
	cpHook, cpIncident := newFirsts(), newFirsts()
	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Service string }
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b)
		cpHook.see(b.Service, time.Now())
		w.WriteHeader(http.StatusNoContent)
	}))
	defer hook.Close()
	amHooks := map[string]*firsts{"typical": newFirsts(), "aggressive": newFirsts()}
	// Prometheus's "incident record": the alert firing in Prometheus (before
	// Alertmanager groups and sends it), polled from its API.
	promFiring := map[string]*firsts{"typical": newFirsts(), "aggressive": newFirsts()}
	promPorts := map[string]int{}
	amServer := func(f *firsts) *httptest.Server {
		return httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			var b struct {
				Alerts []struct {
					Status string
					Labels map[string]string
				}
			}
			_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b)
			for _, a := range b.Alerts {
				if a.Status == "firing" {
					f.see(a.Labels["instance"], time.Now())
				}
			}
		}))
	}

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// certpulse: probe interval 30 s, corroboration from one vantage.
	lcPort := tb.FreePort(t)
	logs := filepath.Join(dir, "logs.jsonl")
	cfg := fmt.Sprintf(`
extensions:
  health_check: {endpoint: "127.0.0.1:%d"}
  certpulse_trigger:
  bearertokenauth: {token: detect-token}
receivers:
  tlsprobe:
    collection_interval: 30s
    timeout: 5s
    max_concurrency: 32
    vantage: detect
    ocsp: {timeout: 1s}
    allow_private_fetch_networks: [127.0.0.0/8]
    trigger: certpulse_trigger
    targets_file: %s
  certlifecycle:
    endpoint: 127.0.0.1:%d
    auth: {authenticator: bearertokenauth}
    trigger: certpulse_trigger
processors:
  tlscorrelator:
    corroboration: {vantages: 1}
exporters:
  file/logs: {path: %s}
%sservice:
  extensions: [health_check, certpulse_trigger, bearertokenauth]
  telemetry: {metrics: {level: none}}
  pipelines:
    logs:
      receivers: [tlsprobe, certlifecycle]
      processors: [tlscorrelator]
      exporters: [file/logs, remediation]
`, tb.FreePort(t), filepath.Join(dir, "targets.yaml"), lcPort, logs, notifyExporter(hook.URL))
	write(t, filepath.Join(dir, "certpulse.yaml"), cfg)
	run(t, ctx, bin, "--config", filepath.Join(dir, "certpulse.yaml"))

	// Real traffic: nginx endpoints with clients and noise, read by a
	// second distribution through the shipped nginx overlay (traffic_test.go).
	tl := startTraffic(t, ctx, bin, lab, files.Roots, trafficPerKind, 4)
	go tl.run(ctx)

	// The Prometheus pipeline: one blackbox_exporter, and per setting a
	// Prometheus and an Alertmanager.
	bbPort := tb.FreePort(t)
	write(t, filepath.Join(dir, "blackbox.yml"), fmt.Sprintf(`modules:
  tls:
    prober: tcp
    timeout: 5s
    tcp:
      tls: true
      tls_config: {ca_file: %q, server_name: probe.detect.test}
`, files.Roots))
	run(t, ctx, need(t, "prometheus-blackbox-exporter"), "--config.file="+filepath.Join(dir, "blackbox.yml"), fmt.Sprintf("--web.listen-address=127.0.0.1:%d", bbPort), "--log.level=warn")
	var staticTargets []string
	for _, tg := range targets {
		staticTargets = append(staticTargets, `"`+tg.addr+`"`)
	}
	for _, ep := range tl.eps {
		staticTargets = append(staticTargets, `"`+ep.addr+`"`)
	}
	for name, s := range map[string]struct {
		scrape, eval, forDur, groupWait string
	}{"typical": {"30s", "30s", "1m", "30s"}, "aggressive": {"5s", "5s", "0s", "0s"}} {
		d := filepath.Join(dir, name)
		_ = os.MkdirAll(d, 0o755)
		am := amServer(amHooks[name])
		defer am.Close()
		amPort, promPort := tb.FreePort(t), tb.FreePort(t)
		promPorts[name] = promPort
		write(t, filepath.Join(d, "alertmanager.yml"), fmt.Sprintf(`route:
  receiver: hook
  group_by: [instance]
  group_wait: %s
  group_interval: 5s
  repeat_interval: 1h
receivers:
  - name: hook
    webhook_configs: [{url: %q, send_resolved: false}]
`, s.groupWait, am.URL))
		run(t, ctx, need(t, "prometheus-alertmanager"), "--config.file="+filepath.Join(d, "alertmanager.yml"), "--storage.path="+filepath.Join(d, "am"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", amPort), "--cluster.listen-address=", "--log.level=warn")
		write(t, filepath.Join(d, "rules.yml"), fmt.Sprintf(`groups:
  - name: tls
    rules:
      - alert: TLSProbeFailing
        expr: probe_success == 0
        for: %s
`, s.forDur))
		write(t, filepath.Join(d, "prometheus.yml"), fmt.Sprintf(`global: {scrape_interval: %s, evaluation_interval: %s}
rule_files: [%q]
alerting:
  alertmanagers: [{static_configs: [{targets: ["127.0.0.1:%d"]}]}]
scrape_configs:
  - job_name: blackbox
    metrics_path: /probe
    params: {module: [tls]}
    static_configs: [{targets: [%s]}]
    relabel_configs:
      - {source_labels: [__address__], target_label: __param_target}
      - {source_labels: [__param_target], target_label: instance}
      - {target_label: __address__, replacement: "127.0.0.1:%d"}
`, s.scrape, s.eval, filepath.Join(d, "rules.yml"), amPort, strings.Join(staticTargets, ", "), bbPort))
		run(t, ctx, need(t, "prometheus"), "--config.file="+filepath.Join(d, "prometheus.yml"), "--storage.tsdb.path="+filepath.Join(d, "tsdb"),
			fmt.Sprintf("--web.listen-address=127.0.0.1:%d", promPort), "--log.level=warn")
	}

	// Everything healthy for a minute, then faults at random instants.
	time.Sleep(60 * time.Second)
	rng := rand.New(rand.NewSource(42))
	start := time.Now()
	for _, tg := range targets {
		tg.at = start.Add(time.Duration(rng.Int63n(int64(spread))))
	}
	sort.Slice(targets, func(i, j int) bool { return targets[i].at.Before(targets[j].at) })
	var faulted []*trafficEP
	planned := map[*trafficEP]time.Time{}
	for _, ep := range tl.eps {
		if ep.kind != trafficQuiet {
			faulted = append(faulted, ep)
			planned[ep] = start.Add(time.Duration(rng.Int63n(int64(spread))))
		}
	}
	sort.Slice(faulted, func(i, j int) bool { return planned[faulted[i]].Before(planned[faulted[j]]) })
	var trafficDone atomic.Bool
	go func() {
		for _, ep := range faulted {
			time.Sleep(time.Until(planned[ep]))
			tl.inject(ep)
		}
		trafficDone.Store(true)
	}()
	trafficRes := make(chan trafficResult, 1)
	go func() { trafficRes <- tl.watch(start.Add(spread+4*time.Minute), trafficDone.Load) }()
	go func() {
		for _, tg := range targets {
			time.Sleep(time.Until(tg.at))
			tg.srv.mode.Store(int32(tg.kind))
			tg.at = time.Now() // the recorded instant
			if tg.kind == noIntermediate {
				postDeployed(lcPort, tg.service)
			}
		}
	}()

	// Wait for detection: certpulse incidents from the log file; until the
	// typical pipeline has caught up or four minutes after the last fault.
	deadline := start.Add(spread + 4*time.Minute)
	pollProm := func() {
		for name, port := range promPorts {
			res, err := http.Get(fmt.Sprintf("http://127.0.0.1:%d/api/v1/alerts", port))
			if err != nil {
				continue
			}
			var b struct {
				Data struct {
					Alerts []struct {
						State  string
						Labels map[string]string
					}
				}
			}
			_ = json.NewDecoder(io.LimitReader(res.Body, 16<<20)).Decode(&b)
			res.Body.Close()
			for _, a := range b.Data.Alerts {
				if a.State == "firing" {
					promFiring[name].see(a.Labels["instance"], time.Now())
				}
			}
		}
	}
	for time.Now().Before(deadline) {
		pollProm()
		for _, r := range logtest.Named(logtest.ReadFile(logs), attrs.EventIncident) {
			if v, _ := r.Resource.Attributes().Get(attrs.ServiceName); v.Str() != "" && attrs.State(r.Attr(attrs.IncidentState)) != attrs.StateResolved {
				cpIncident.see(v.Str(), time.Now())
			}
		}
		done := time.Now().After(start.Add(spread))
		for _, tg := range targets {
			if _, ok := amHooks["typical"].get(tg.addr); !ok && tg.kind != ocspStall {
				done = false
			}
			if _, ok := cpHook.get(tg.service); !ok {
				done = false
			}
		}
		for _, ep := range faulted {
			if _, ok := amHooks["typical"].get(ep.addr); !ok {
				done = false
			}
		}
		if done {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}

	// The table.
	type row struct{ pipeline, kind string }
	delays := map[row][]time.Duration{}
	missed := map[row]int{}
	for _, tg := range targets {
		kind := kindNames[tg.kind]
		add := func(p string, f *firsts, key string) {
			if at, ok := f.get(key); ok && !at.Before(tg.at) {
				delays[row{p, kind}] = append(delays[row{p, kind}], at.Sub(tg.at))
			} else {
				missed[row{p, kind}]++
			}
		}
		add("certpulse: fault -> incident record", cpIncident, tg.service)
		add("certpulse: fault -> webhook", cpHook, tg.service)
		add("Prometheus typical: fault -> alert firing", promFiring["typical"], tg.addr)
		add("Prometheus typical: fault -> webhook", amHooks["typical"], tg.addr)
		add("Prometheus aggressive: fault -> alert firing", promFiring["aggressive"], tg.addr)
		add("Prometheus aggressive: fault -> webhook", amHooks["aggressive"], tg.addr)
	}
	res := <-trafficRes
	tl.mu.Lock()
	addAt := func(p, kind string, at, got time.Time, ok bool) {
		if ok && !got.Before(at) {
			delays[row{p, kind}] = append(delays[row{p, kind}], got.Sub(at))
		} else {
			missed[row{p, kind}]++
		}
	}
	tl.rows(res, addAt)
	for _, ep := range faulted {
		kind := trafficNames[ep.kind]
		for _, p := range []string{"typical", "aggressive"} {
			at, ok := promFiring[p].get(ep.addr)
			addAt("Prometheus "+p+": fault -> alert firing", kind, ep.at, at, ok)
			at, ok = amHooks[p].get(ep.addr)
			addAt("Prometheus "+p+": fault -> webhook", kind, ep.at, at, ok)
		}
	}
	tl.mu.Unlock()
	var out strings.Builder
	out.WriteString("| pipeline | fault | n | p50 | p95 | max | missed |\n| --- | --- | --- | --- | --- | --- | --- |\n")
	var rows []row
	for r := range delays {
		rows = append(rows, r)
	}
	for r := range missed {
		if _, ok := delays[r]; !ok {
			rows = append(rows, r)
		}
	}
	sort.Slice(rows, func(i, j int) bool {
		if rows[i].kind != rows[j].kind {
			return rows[i].kind < rows[j].kind
		}
		return rows[i].pipeline < rows[j].pipeline
	})
	for _, r := range rows {
		d := delays[r]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		q := func(p float64) string {
			if len(d) == 0 {
				return "-"
			}
			return d[min(len(d)-1, int(p*float64(len(d))))].Round(100 * time.Millisecond).String()
		}
		fmt.Fprintf(&out, "| %s | %s | %d | %s | %s | %s | %d |\n", r.pipeline, r.kind, len(d), q(0.5), q(0.95), q(1), missed[r])
	}
	fmt.Fprintf(&out, "\nTraffic: %d nginx endpoints (%d per fault, 4 quiet), %d handshakes, %d of them noise (junk, plain HTTP, RSA-only offers, TLS 1.0 clients); incidents opened that no fault explains: %d.\n",
		len(tl.eps), trafficPerKind, tl.hs.Load(), tl.noise.Load(), len(res.noise))
	for _, n := range res.noise {
		t.Errorf("an incident no fault explains: %s", n)
	}
	t.Logf("time to detect and act (%d endpoints per fault, faults over %s):\n%s", perKind, spread, out.String())
	if p := os.Getenv("CERTPULSE_DETECT_OUT"); p != "" {
		write(t, p, out.String())
	}
}
