// Package remediate proves the closed loop end to end with real parts:
// Pebble (a real ACME CA), Debian's certbot, nginx serving the endpoints,
// adnanh/webhook running the shipped runbooks (distributions/runbooks), and
// the built distribution with the shipped single-tier config plus the
// runbooks overlay, live. Faults are injected at recorded instants; each
// must end fixed, verified by probes, and resolved by healthy results, with
// a complete audit trail, no key run twice, and nothing done to healthy
// endpoints. `make remediate` runs the short form (part of `make test`);
// `make testbed-remediate` the full one (30 s probe interval, several
// endpoints per fault, the same run in dry-run), which writes the table of
// docs/performance.md.
package remediate

import (
	"bytes"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// Fault kinds.
type faultKind string

const (
	kExpired faultKind = "expired leaf: reissue"
	kNoInter faultKind = "deploy without intermediate: rollback"
	kWrong   faultKind = "deploy of the wrong certificate: rollback"
	kPin     faultKind = "key change against pins: approval, pins"
	kRefused faultKind = "reissue refused by the CA: freeze"
	kCalm    faultKind = "healthy (control)"
)

var faultKinds = []faultKind{kExpired, kNoInter, kWrong, kPin, kRefused}

// prefixes name each kind's services.
var prefixes = map[faultKind]string{kExpired: "exp", kNoInter: "noint", kWrong: "wrong", kPin: "pin", kRefused: "refused", kCalm: "calm"}

const (
	token      = "remediate-token-0123456789"
	lcHMAC     = "remediate-lifecycle-0123456789"
	runbookKey = "remediate-runbook-0123456789"
)

type endpoint struct {
	svc, domain string
	kind        faultKind
	port        int
	httpPort    int // certbot's standalone port (never contacted: challenges always valid)
	ca          *pebble
	fault       time.Time
}

func (e *endpoint) addr() string { return fmt.Sprintf("127.0.0.1:%d", e.port) }

// result is what one endpoint's fault came to.
type result struct {
	kind             faultKind
	svc              string
	detect, act, fix time.Duration // from the fault; -1: never
	resolved         bool
	brokenAtEnd      bool
	decisions        []string
	lastReason       string
}

type scenario struct {
	t          *testing.T
	full, dry  bool
	interval   time.Duration
	dir, repo  string
	eps        []*endpoint
	cb         *certbot
	ngx        *nginx
	lab        *miniCA
	sink       *tb.LogSink
	lcURL      string
	approveURL string
	prom       string // Prometheus 3 (Mimir's stand-in for the dashboards), if PROMETHEUS3_BIN is set
	// kinds and perKind override the faults (default: every kind, 1 each,
	// 3 in the full form); budget, when set, the guardrails' budget.
	kinds   []faultKind
	perKind int
	budget  int
}

// needParts returns the built distribution and Pebble (make remediate sets
// them) after checking the programs the runbooks and the lab run, or skips.
func needParts(t *testing.T) (bin, pebbleBin string) {
	t.Helper()
	env := tb.Env(t, "remediate", "CERTPULSE_BIN", "PEBBLE_BIN")
	for _, p := range []string{"certbot", "webhook", "jq", "openssl", "curl", "flock", "nginx"} {
		proxytest.Need(t, p)
	}
	return env[0], env[1]
}

func TestRemediateEndToEnd(t *testing.T) {
	bin, pebbleBin := needParts(t)
	full := os.Getenv("CERTPULSE_REMEDIATE_FULL") != ""
	var live, dry []result
	t.Run("live", func(t *testing.T) { live = run(t, bin, pebbleBin, full, false) })
	if full {
		t.Run("dry-run", func(t *testing.T) { dry = run(t, bin, pebbleBin, full, true) })
	}
	table := report(live, dry, full)
	t.Log("\n" + table)
	if out := os.Getenv("CERTPULSE_REMEDIATE_OUT"); out != "" {
		if err := os.WriteFile(out, []byte(table), 0o644); err != nil {
			t.Fatal(err)
		}
	}
}

func run(t *testing.T, bin, pebbleBin string, full, dry bool) []result {
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	s := &scenario{t: t, full: full, dry: dry, interval: 5 * time.Second, dir: t.TempDir(), repo: repo}
	if full {
		s.interval = 30 * time.Second
	}
	s.setup(bin, pebbleBin)
	s.warmUp()
	s.injectAll()
	s.waitDone()
	if s.prom != "" && !dry {
		s.checkDashboard()
	}
	return s.results()
}

// checkDashboard runs the incidents dashboard's time to detect, act and fix
// panels on Prometheus 3, fed by the shipped signaltometrics/incidents
// pipeline from the incidents this run resolved.
func (s *scenario) checkDashboard() {
	t := s.t
	ttf := `count(certpulse_incident_time_to_fix_count{certpulse_incident_automated="true"})`
	for end := time.Now().Add(time.Minute); ; time.Sleep(2 * time.Second) {
		if n, err := tb.PromQuery(s.prom, ttf); err == nil && n > 0 {
			break
		} else if time.Now().After(end) {
			t.Fatalf("no time-to-fix histogram in Prometheus within a minute (%d, %v)", n, err)
		}
	}
	// The panels run on Prometheus 3 and must show data: each histogram
	// series gets a sample per resolved incident only (rangeIncrease, not
	// increase(), which wants two).
	n := tb.CheckPanels(t, s.prom, "certpulse-incidents", "", func(expr string) bool { return strings.Contains(expr, "certpulse_incident_time_to_") }, nil)
	t.Logf("incidents dashboard: %d time-to panel queries run on Prometheus 3", n)
}

func (s *scenario) path(p ...string) string { return filepath.Join(append([]string{s.dir}, p...)...) }

func (s *scenario) write(path string, b []byte) {
	s.t.Helper()
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		s.t.Fatal(err)
	}
	if err := os.WriteFile(path+".tmp", b, 0o600); err != nil {
		s.t.Fatal(err)
	}
	if err := os.Rename(path+".tmp", path); err != nil {
		s.t.Fatal(err)
	}
}

func (s *scenario) copyFile(from, to string) {
	s.t.Helper()
	b, err := os.ReadFile(from)
	if err != nil {
		s.t.Fatal(err)
	}
	s.write(to, b)
}

func (s *scenario) setup(bin, pebbleBin string) {
	t := s.t
	// Pebble's own TLS certificate, from a throwaway CA certbot trusts.
	tlsCA := newMiniCA(t, "testbed Pebble TLS CA")
	c, k := tlsCA.leaf(t, []string{"127.0.0.1", "localhost"}, time.Now().Add(-time.Hour), time.Now().Add(24*time.Hour))
	s.write(s.path("pebble", "cert.pem"), c)
	s.write(s.path("pebble", "key.pem"), k)
	s.write(s.path("pebble", "ca.pem"), tlsCA.pem())
	// Two CAs: b issues the endpoints whose reissue it will refuse.
	pa := &pebble{bin: pebbleBin, dir: s.path("pebble"), name: "a", listen: tb.FreePort(t), mgmt: tb.FreePort(t), tlsCert: s.path("pebble", "cert.pem"), tlsKey: s.path("pebble", "key.pem")}
	pb := *pa
	pb.name, pb.listen, pb.mgmt = "b", tb.FreePort(t), tb.FreePort(t)
	pa.start(t)
	pb.start(t)
	t.Cleanup(pa.stop)
	t.Cleanup(func() { pb.stop() })
	ra, err := pa.root()
	if err != nil {
		t.Fatal(err)
	}
	rb, err := pb.root()
	if err != nil {
		t.Fatal(err)
	}
	// Expired copies come from a CA the clients trust too: the probe says
	// expired_leaf, not unknown_ca.
	s.lab = newMiniCA(t, "testbed old CA")
	s.write(s.path("roots.pem"), bytes.Join([][]byte{ra, rb, s.lab.pem()}, nil))

	n := 1
	if s.full {
		n = 3
	}
	if s.perKind > 0 {
		n = s.perKind
	}
	kinds := faultKinds
	if s.kinds != nil {
		kinds = s.kinds
	}
	for _, k := range append(append([]faultKind{}, kinds...), kCalm) {
		for i := 1; i <= n; i++ {
			if k == kCalm && i > 1 {
				break
			}
			svc := fmt.Sprintf("%s-%d", prefixes[k], i)
			e := &endpoint{svc: svc, domain: svc + ".certpulse.test", kind: k, port: tb.FreePort(t), httpPort: tb.FreePort(t), ca: pa}
			if k == kRefused {
				e.ca = &pb
			}
			s.eps = append(s.eps, e)
		}
	}
	s.cb = &certbot{dir: s.path("certbot"), caBundle: s.path("pebble", "ca.pem")}
	for _, e := range s.eps {
		s.cb.run(t, "certonly", "--standalone", "--http-01-port", fmt.Sprint(e.httpPort), "--http-01-address", "127.0.0.1",
			"--server", e.ca.dirURL(), "--non-interactive", "--agree-tos", "--register-unsafely-without-email", "--cert-name", e.svc, "-d", e.domain)
		s.deployLive(e)
		// The source of truth a bundle refresh reinstalls.
		s.copyFile(s.live(e, "fullchain.pem"), s.path("source", e.svc+".pem"))
		if e.kind == kPin {
			s.write(s.path("pins", e.svc+".txt"), []byte(spkiPin(certs(t, s.live(e, "cert.pem"))[0])+"\n"))
		}
	}
	var servers strings.Builder
	var ports []int
	for _, e := range s.eps {
		fmt.Fprintf(&servers, "  server {\n    listen %s ssl;\n    server_name %s;\n    ssl_certificate %s;\n    ssl_certificate_key %s;\n    return 200 ok;\n  }\n",
			e.addr(), e.domain, s.path("certs", e.svc, "fullchain.pem"), s.path("certs", e.svc, "privkey.pem"))
		ports = append(ports, e.port)
	}
	s.ngx = startNginx(t, s.path("nginx"), servers.String(), ports)
	s.writeTargets()
	// The clients' pin sets are "published" by rewriting the probe's
	// targets file (tlsprobe reads it again within a second).
	s.write(s.path("publish-pins.sh"), []byte(fmt.Sprintf(`#!/bin/sh
set -eu
for f in %[1]s/*.txt; do
  svc=$(basename "$f" .txt)
  pins=$(sed 's|.*|"sha256/&"|' "$f" | paste -sd, -)
  sed "s|^    pins: .* # $svc\$|    pins: [$pins] # $svc|" %[2]s >%[2]s.new && mv %[2]s.new %[2]s
done
`, s.path("pins"), s.path("targets.yaml"))))

	// The sink stands in for Loki and Mimir.
	s.sink = tb.NewLogSink()
	srv := httptest.NewServer(s.sink)
	t.Cleanup(srv.Close)

	lcPort, apPort, whPort, hcPort := tb.FreePort(t), tb.FreePort(t), tb.FreePort(t), tb.FreePort(t)
	s.lcURL = fmt.Sprintf("http://127.0.0.1:%d/v1/lifecycle", lcPort)
	s.approveURL = fmt.Sprintf("http://127.0.0.1:%d", apPort)

	// adnanh/webhook with the shipped hooks.json and runbooks.
	runbooks := filepath.Join(s.repo, "distributions", "runbooks")
	wh := exec.Command(proxytest.Need(t, "webhook"), "-hooks", filepath.Join(runbooks, "hooks.json"), "-template", "-ip", "127.0.0.1", "-port", fmt.Sprint(whPort), "-verbose")
	wh.Env = append(os.Environ(), "CERTPULSE_RUNBOOKS="+runbooks, "CERTPULSE_RUNBOOK_HMAC="+runbookKey, "CERTPULSE_RUNBOOK_STATE="+s.path("runbooks"),
		"CERTPULSE_URL="+s.lcURL, "CERTPULSE_TOKEN="+token, "CERTPULSE_HMAC_SECRET="+lcHMAC, "CERTPULSE_RETRIES=3", "CERTPULSE_RETRY_SLEEP=1",
		"CERTBOT_ARGS="+strings.Join(s.cb.args(), " "), "REQUESTS_CA_BUNDLE="+s.cb.caBundle, "CERTPULSE_CERTBOT_LOCK="+filepath.Join(s.cb.dir, "certbot.lock"),
		"CERTPULSE_BUNDLE="+s.path("certs", "{service}", "fullchain.pem"), "CERTPULSE_KEY="+s.path("certs", "{service}", "privkey.pem"),
		"CERTPULSE_ARCHIVE="+s.path("archive", "{service}"), "CERTPULSE_BUNDLE_SOURCE="+s.path("source", "{service}.pem"),
		"CERTPULSE_PINS_FILE="+s.path("pins", "{service}.txt"), "CERTPULSE_PINS_PUBLISH_CMD=sh "+s.path("publish-pins.sh"),
		"CERTPULSE_FREEZE_FILE="+s.path("runbooks", "frozen-{service}"), "CERTPULSE_RELOAD_CMD="+s.ngx.reloadCmd())
	if err := os.MkdirAll(s.path("runbooks"), 0o755); err != nil {
		t.Fatal(err)
	}
	tb.Start(t, wh) // its log (stderr) is shown when the test fails
	waitListen(t, fmt.Sprintf("127.0.0.1:%d", whPort))
	s.write(s.path("approvers"), []byte("operator:test-operator\n"))

	// The built distribution: shipped single-tier.yaml + the runbooks
	// overlay, and a testbed overlay that only points it at 127.0.0.1.
	overlay := map[string]any{
		"extensions": map[string]any{"health_check": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", hcPort)}},
		"receivers": map[string]any{
			"tlsprobe": map[string]any{
				"collection_interval": s.interval.String(), "timeout": "3s", "ocsp": map[string]any{"timeout": "1s"}, "allow_private_fetch_networks": []string{"127.0.0.0/8"},
				"targets_file": s.path("targets.yaml"), "targets_file_check_interval": "1s",
			},
			"certlifecycle": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", lcPort)},
		},
		"exporters": map[string]any{
			"otlphttp/mimir": map[string]any{"endpoint": srv.URL + "/mimir"},
			"otlphttp/loki":  map[string]any{"endpoint": srv.URL + "/loki"},
			"remediation": map[string]any{
				"dry_run":  s.dry,
				"verify":   map[string]any{"allow_private_fetch_networks": []string{"127.0.0.0/8"}},
				"approval": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", apPort)},
				"audit":    map[string]any{"endpoint": s.lcURL},
			},
		},
		"service": map[string]any{"telemetry": map[string]any{"metrics": map[string]any{"level": "none", "readers": []any{}}}},
	}
	if s.budget > 0 {
		overlay["exporters"].(map[string]any)["remediation"].(map[string]any)["guardrails"] = map[string]any{"budget": s.budget}
	}
	if p3 := os.Getenv("PROMETHEUS3_BIN"); p3 != "" && s.budget == 0 {
		// Start timestamps as a zero sample (Mimir:
		// -distributor.otel-created-timestamp-zero-ingestion-enabled), so that
		// increase() counts a histogram's first observations.
		s.prom = tb.Prometheus3(t, t.Context(), p3, "--enable-feature=created-timestamp-zero-ingestion")
		overlay["exporters"].(map[string]any)["otlphttp/prom3"] = map[string]any{"endpoint": s.prom + "/api/v1/otlp"}
		overlay["service"].(map[string]any)["pipelines"] = map[string]any{"metrics/incidents": map[string]any{"exporters": []string{"otlphttp/mimir", "otlphttp/prom3"}}}
	} else if proxytest.InCI() && s.budget == 0 {
		t.Fatal("PROMETHEUS3_BIN not set (make remediate sets it)")
	}
	ov, err := yaml.Marshal(overlay)
	if err != nil {
		t.Fatal(err)
	}
	s.write(s.path("overlay.yaml"), ov)
	tb.StartReady(t, t.Context(), "otelcol-certpulse", fmt.Sprintf("http://127.0.0.1:%d/", hcPort), []string{
		"NODE_NAME=remediate-testbed", "POD_IP=127.0.0.1", "CERTPULSE_STATE_DIR=" + s.path("state"),
		"CERTPULSE_WEBHOOK_TOKEN=" + token, "CERTPULSE_WEBHOOK_HMAC=" + lcHMAC, "MIMIR_URL=http://unused.invalid", "MIMIR_TENANT=t",
		"LOKI_URL=http://unused.invalid", "LOKI_TENANT=t", fmt.Sprintf("CERTPULSE_RUNBOOK_URL=http://127.0.0.1:%d/hooks", whPort),
		"CERTPULSE_RUNBOOK_HMAC=" + runbookKey, "CERTPULSE_VERIFY_CA_FILE=" + s.path("roots.pem"), "CERTPULSE_APPROVERS_HTPASSWD=" + s.path("approvers"),
	}, bin, "--config", filepath.Join(s.repo, "distributions", "otelcol-certpulse", "single-tier.yaml"),
		"--config", filepath.Join(runbooks, "remediation.yaml"), "--config", s.path("overlay.yaml"))
}

func waitListen(t *testing.T, addr string) {
	t.Helper()
	for end := time.Now().Add(10 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("nothing listens on %s", addr)
}

func (s *scenario) live(e *endpoint, f string) string {
	return filepath.Join(s.cb.dir, "config", "live", e.svc, f)
}

// deployLive installs certbot's current certificate for e, as a deploy
// pipeline would, keeping it in the archive a rollback restores from.
func (s *scenario) deployLive(e *endpoint) {
	s.copyFile(s.live(e, "privkey.pem"), s.path("certs", e.svc, "privkey.pem"))
	s.copyFile(s.live(e, "fullchain.pem"), s.path("certs", e.svc, "fullchain.pem"))
	stamp := fmt.Sprint(time.Now().UnixNano())
	s.copyFile(s.live(e, "fullchain.pem"), s.path("archive", e.svc, e.svc+"-"+stamp+".pem"))
	s.copyFile(s.live(e, "privkey.pem"), s.path("archive", e.svc, e.svc+"-"+stamp+".key"))
}

func (s *scenario) writeTargets() {
	var b strings.Builder
	b.WriteString("targets:\n")
	for _, e := range s.eps {
		fmt.Fprintf(&b, "  - endpoint: %s\n    server_name: %s\n    service: %s\n    owner: team-testbed\n    environment: testbed\n    criticality: high\n    ca_file: %q\n",
			e.addr(), e.domain, e.svc, s.path("roots.pem"))
		if e.kind == kPin {
			pins, err := os.ReadFile(s.path("pins", e.svc+".txt"))
			if err != nil {
				s.t.Fatal(err)
			}
			fmt.Fprintf(&b, "    pins: [\"sha256/%s\"] # %s\n", strings.TrimSpace(string(pins)), e.svc)
		}
	}
	s.write(s.path("targets.yaml"), []byte(b.String()))
}

// records of the sink, by kind.
func (s *scenario) byEvent(event string) []logtest.Record {
	var out []logtest.Record
	for _, r := range s.sink.ByName()["loki"] {
		if r.EventName() == event {
			out = append(out, r)
		}
	}
	return out
}

func svcOf(r logtest.Record) string {
	v, _ := r.Resource.Attributes().Get(attrs.ServiceName)
	return v.AsString()
}

func attr(r logtest.Record, k string) string {
	v, ok := r.Attributes().Get(k)
	if !ok {
		return ""
	}
	return v.AsString()
}

// warmUp waits until every endpoint probed healthy twice (the correlator
// knows what good was).
func (s *scenario) warmUp() {
	deadline := time.Now().Add(4*s.interval + 30*time.Second)
	for ; time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		ok := map[string]int{}
		for _, r := range s.byEvent(attrs.EventProbeResult) {
			if attr(r, attrs.ReasonKey) == string(attrs.ReasonOK) {
				ok[svcOf(r)]++
			}
		}
		all := true
		for _, e := range s.eps {
			all = all && ok[e.svc] >= 2
		}
		if all {
			return
		}
	}
	var bad []string
	for _, r := range s.byEvent(attrs.EventProbeResult) {
		if attr(r, attrs.ReasonKey) != string(attrs.ReasonOK) {
			bad = append(bad, svcOf(r)+": "+attr(r, attrs.ReasonKey))
		}
	}
	s.t.Fatalf("not every endpoint healthy twice within the warm-up; failing results: %v", bad)
}

// injectAll injects every fault at its instant: one after the other in the
// short form, at random instants over two probe intervals in the full one.
func (s *scenario) injectAll() {
	var todo []*endpoint
	for _, e := range s.eps {
		if e.kind != kCalm {
			todo = append(todo, e)
		}
	}
	offsets := map[*endpoint]time.Duration{}
	rng := rand.New(rand.NewSource(time.Now().UnixNano()))
	for i, e := range todo {
		offsets[e] = time.Duration(i) * time.Second
		if s.full {
			offsets[e] = time.Duration(rng.Int63n(int64(2 * s.interval)))
		}
	}
	sort.Slice(todo, func(i, j int) bool { return offsets[todo[i]] < offsets[todo[j]] })
	start := time.Now()
	for _, e := range todo {
		time.Sleep(time.Until(start.Add(offsets[e])))
		s.inject(e)
		s.t.Logf("%s: %s at %s", e.svc, e.kind, e.fault.Format("15:04:05.000"))
	}
}

func (s *scenario) inject(e *endpoint) {
	t := s.t
	cert, key := s.path("certs", e.svc, "fullchain.pem"), s.path("certs", e.svc, "privkey.pem")
	switch e.kind {
	case kRefused, kExpired:
		if e.kind == kRefused {
			// The CA that issued it now refuses the name.
			e.ca.stop()
			e.ca.start(t, e.domain)
		}
		c, k := s.lab.leaf(t, []string{e.domain}, time.Now().Add(-48*time.Hour), time.Now().Add(-time.Hour))
		s.write(key, k)
		s.write(cert, c)
		s.ngx.reload(t)
		e.fault = time.Now()
	case kNoInter:
		leaf := certs(t, s.live(e, "cert.pem"))
		s.write(cert, pemOf(leaf[0].Raw))
		s.ngx.reload(t)
		e.fault = time.Now()
		s.sendDeployed(e)
	case kWrong:
		var calm *endpoint
		for _, x := range s.eps {
			if x.kind == kCalm {
				calm = x
			}
		}
		s.copyFile(s.path("certs", calm.svc, "privkey.pem"), key)
		s.copyFile(s.path("certs", calm.svc, "fullchain.pem"), cert)
		s.ngx.reload(t)
		e.fault = time.Now()
		s.sendDeployed(e)
	case kPin:
		// A renewal with a new key, deployed without telling anyone: the
		// clients' pins reject it.
		s.cb.run(t, "renew", "--cert-name", e.svc, "--force-renewal", "--no-random-sleep-on-renew", "--non-interactive")
		s.deployLive(e)
		s.ngx.reload(t)
		e.fault = time.Now()
	}
}

func pemOf(der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
}

// sendDeployed reports the deploy with the shipped sender.
func (s *scenario) sendDeployed(e *endpoint) {
	ev := fmt.Sprintf(`{"type":"deployed","id":"deploy-%s-%d","source":"testbed-pipeline","service":%q,"endpoints":[%q],"job_id":"deploy-%s"}`,
		e.svc, time.Now().UnixNano(), e.svc, e.domain+":443", e.svc)
	cmd := exec.Command("sh", filepath.Join(s.repo, "distributions", "otelcol-certpulse", "hooks", "certpulse-send"))
	cmd.Stdin = strings.NewReader(ev)
	cmd.Env = append(os.Environ(), "CERTPULSE_URL="+s.lcURL, "CERTPULSE_TOKEN="+token, "CERTPULSE_HMAC_SECRET="+lcHMAC)
	if out, err := cmd.CombinedOutput(); err != nil {
		s.t.Fatalf("certpulse-send: %v: %s", err, out)
	}
}

// audits returns the audited decisions of svc (pipeline stage, action).
func (s *scenario) audits(svc string) []logtest.Record {
	var out []logtest.Record
	for _, r := range s.byEvent(attrs.EventLifecyclePrefix + attrs.LifecycleRemediation) {
		if svcOf(r) == svc {
			out = append(out, r)
		}
	}
	return out
}

func (s *scenario) has(svc, stage string) bool {
	for _, r := range s.audits(svc) {
		if attr(r, attrs.LifecyclePipelineStage) == stage {
			return true
		}
	}
	return false
}

// resolvedHealthy: svc's incident (not the unexplained-change one the
// correlator also opens for a swapped certificate) resolved by healthy
// results after the fault.
func (s *scenario) resolvedHealthy(e *endpoint) bool {
	for _, r := range s.byEvent(attrs.EventIncident) {
		if svcOf(r) == e.svc && attrs.State(attr(r, attrs.IncidentState)) == attrs.StateResolved && attr(r, attrs.IncidentResolution) == "healthy" &&
			attr(r, attrs.ReasonKey) != string(attrs.ReasonUnexpectedCertChange) && r.Timestamp().AsTime().After(e.fault) {
			return true
		}
	}
	return false
}

// apiGet reads one JSON answer of the approval API, as the operator.
func (s *scenario) apiGet(path string, v any) error {
	req, _ := http.NewRequest(http.MethodGet, s.approveURL+path, nil)
	req.SetBasicAuth("operator", "test-operator")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	return json.NewDecoder(resp.Body).Decode(v)
}

// approve approves every held action (a person would, through the API).
func (s *scenario) approve() {
	var body struct{ Pending []struct{ ID string } }
	if s.apiGet("/api/v1/pending", &body) != nil {
		return
	}
	for _, p := range body.Pending {
		req, _ := http.NewRequest(http.MethodPost, s.approveURL+"/api/v1/pending/"+p.ID+"/approve", strings.NewReader(`{"by":"testbed-operator","why":"the new key is ours"}`))
		req.SetBasicAuth("operator", "test-operator")
		req.Header.Set("Content-Type", "application/json")
		if resp, err := http.DefaultClient.Do(req); err == nil {
			resp.Body.Close()
		}
	}
}

// done says whether e's fault came to its end: fixed and resolved, or for
// the refused reissue, the rollout frozen (and, in the full form, that
// step found ineffective).
func (s *scenario) done(e *endpoint) bool {
	switch e.kind {
	case kCalm:
		return true
	case kRefused:
		_, err := os.Stat(s.path("runbooks", "frozen-"+e.svc))
		return err == nil && containsInOrder(stages(s.audits(e.svc)), []string{"sent(freeze)"}) && (!s.full || s.has(e.svc, string(attrs.OutcomeIneffective)))
	}
	return s.has(e.svc, string(attrs.OutcomeFixed)) && s.resolvedHealthy(e)
}

func (s *scenario) waitDone() {
	limit := 2*time.Minute + 6*s.interval
	if s.dry {
		// Nothing will fix them: long enough to show what stays broken.
		limit = 4 * s.interval
	}
	deadline := time.Now().Add(limit)
	for ; time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		if !s.dry {
			s.approve()
		}
		all := true
		for _, e := range s.eps {
			all = all && (s.dry || s.done(e))
		}
		if all && !s.dry {
			return
		}
	}
	if s.dry {
		return
	}
	for _, e := range s.eps {
		if !s.done(e) {
			var msgs []string
			for _, r := range s.audits(e.svc) {
				msgs = append(msgs, attr(r, attrs.LifecycleMessage))
			}
			s.t.Errorf("%s (%s) did not end within %s: audit %v\n%s", e.svc, e.kind, limit, stages(s.audits(e.svc)), strings.Join(msgs, "\n"))
		}
	}
}

func stages(rs []logtest.Record) []string {
	var out []string
	for _, r := range rs {
		st := attr(r, attrs.LifecyclePipelineStage)
		if a := attr(r, attrs.LifecycleJobID); a != "" {
			// <incident id>[:<opened>]:<action>:<attempt>
			if parts := strings.Split(a, ":"); len(parts) >= 3 {
				st += "(" + parts[len(parts)-2] + ")"
			}
		}
		out = append(out, st)
	}
	return out
}

// results measures each fault and checks what the loop must guarantee.
func (s *scenario) results() []result {
	t := s.t
	var out []result
	for _, e := range s.eps {
		r := result{kind: e.kind, svc: e.svc, detect: -1, act: -1, fix: -1}
		for _, rec := range s.byEvent(attrs.EventIncident) {
			if svcOf(rec) != e.svc || attr(rec, attrs.ReasonKey) == string(attrs.ReasonUnexpectedCertChange) {
				continue
			}
			at := rec.Timestamp().AsTime()
			if attrs.State(attr(rec, attrs.IncidentState)) == attrs.StateOpened && r.detect < 0 && !e.fault.IsZero() {
				r.detect = at.Sub(e.fault)
			}
			if f := attr(rec, attrs.IncidentFixedAt); f != "" && r.fix < 0 && !e.fault.IsZero() {
				if ft, err := time.Parse(time.RFC3339Nano, f); err == nil && ft.After(e.fault) {
					r.fix = ft.Sub(e.fault)
				}
			}
		}
		for _, a := range s.audits(e.svc) {
			if attr(a, attrs.LifecyclePipelineStage) == string(attrs.OutcomeSent) && attr(a, attrs.LifecycleJobID) != "" && r.act < 0 {
				r.act = a.Timestamp().AsTime().Sub(e.fault)
			}
		}
		r.decisions = stages(s.audits(e.svc))
		r.resolved = s.resolvedHealthy(e)
		// What the endpoint serves at the end, as a client sees it.
		r.lastReason = s.lastReason(e)
		r.brokenAtEnd = r.lastReason != string(attrs.ReasonOK)
		out = append(out, r)

		switch {
		case e.kind == kCalm:
			if len(s.audits(e.svc)) > 0 || r.detect >= 0 {
				t.Errorf("the healthy endpoint %s was touched: audit %v", e.svc, r.decisions)
			}
		case s.dry:
			if !r.brokenAtEnd {
				t.Errorf("dry-run: %s was fixed without an action (%s)", e.svc, r.lastReason)
			}
		case e.kind == kRefused:
			want := []string{"failed(reissue)", "sent(freeze)"}
			if !containsInOrder(r.decisions, want) {
				t.Errorf("%s: audit %v lacks %v", e.svc, r.decisions, want)
			}
		default:
			step := map[faultKind]string{kExpired: "reissue", kNoInter: "rollback", kWrong: "rollback"}[e.kind]
			want := []string{"matched", "verified", "sent(" + step + ")", "fixed(" + step + ")", "resolved"}
			if e.kind == kPin {
				want = []string{"matched", "awaiting_approval(pins)", "approved", "sent(pins)", "fixed(pins)", "resolved"}
			}
			if !containsInOrder(r.decisions, want) {
				t.Errorf("%s: audit %v lacks %v in order", e.svc, r.decisions, want)
			}
			if !r.resolved || r.fix < 0 || r.brokenAtEnd {
				t.Errorf("%s: resolved %v, fixed after %v, serving %s at the end", e.svc, r.resolved, r.fix, r.lastReason)
			}
		}
	}
	if !s.dry {
		s.checkRunsOnce()
		s.checkResolvedByHealthy()
	}
	return out
}

func containsInOrder(have, want []string) bool {
	i := 0
	for _, h := range have {
		if i < len(want) && h == want[i] {
			i++
		}
	}
	return i == len(want)
}

// lastReason is the reason of e's latest probe result.
func (s *scenario) lastReason(e *endpoint) string {
	last := ""
	var at time.Time
	for _, r := range s.byEvent(attrs.EventProbeResult) {
		if svcOf(r) == e.svc && !r.Timestamp().AsTime().Before(at) {
			at, last = r.Timestamp().AsTime(), attr(r, attrs.ReasonKey)
		}
	}
	return last
}

// checkRunsOnce: no runbook ran one key to completion twice.
func (s *scenario) checkRunsOnce() {
	b, err := os.ReadFile(s.path("runbooks", "runs.log"))
	if err != nil {
		s.t.Errorf("runbooks ran nothing: %v", err)
		return
	}
	done := map[string]int{}
	for _, l := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(l)
		if len(f) == 4 && f[1] == "done" {
			done[f[3]]++
		}
	}
	for k, n := range done {
		if n > 1 {
			s.t.Errorf("key %s was run %d times", k, n)
		}
	}
}

// checkResolvedByHealthy: every resolution came after a healthy probe of
// the service.
func (s *scenario) checkResolvedByHealthy() {
	for _, r := range s.byEvent(attrs.EventIncident) {
		if attrs.State(attr(r, attrs.IncidentState)) != attrs.StateResolved {
			continue
		}
		if attr(r, attrs.IncidentResolution) != "healthy" {
			s.t.Errorf("%s resolved without healthy probes (%s)", svcOf(r), attr(r, attrs.IncidentResolution))
		}
	}
}

// report renders the table of docs/performance.md.
func report(live, dry []result, full bool) string {
	var b strings.Builder
	mode := "short form (5 s probe interval, one endpoint per fault)"
	if full {
		mode = "full form (30 s probe interval, 3 endpoints per fault, faults at random instants)"
	}
	fmt.Fprintf(&b, "make testbed-remediate, %s:\n\n", mode)
	b.WriteString("| fault | n | detect p50 / p95 / max | act p50 / p95 / max | fixed p50 / p95 / max | resolved | still broken in dry-run |\n|---|---|---|---|---|---|---|\n")
	for _, k := range faultKinds {
		var d, a, f []time.Duration
		n, res := 0, 0
		for _, r := range live {
			if r.kind != k {
				continue
			}
			n++
			if r.resolved {
				res++
			}
			d, a, f = appendIf(d, r.detect), appendIf(a, r.act), appendIf(f, r.fix)
		}
		broken, dn := 0, 0
		for _, r := range dry {
			if r.kind == k {
				dn++
				if r.brokenAtEnd {
					broken++
				}
			}
		}
		dryCol := "not run"
		if dn > 0 {
			dryCol = fmt.Sprintf("%d of %d", broken, dn)
		}
		fmt.Fprintf(&b, "| %s | %d | %s | %s | %s | %d of %d | %s |\n", k, n, pcts(d), pcts(a), pcts(f), res, n, dryCol)
	}
	return b.String()
}

func appendIf(s []time.Duration, d time.Duration) []time.Duration {
	if d >= 0 {
		return append(s, d)
	}
	return s
}

func pcts(ds []time.Duration) string {
	if len(ds) == 0 {
		return "-"
	}
	sort.Slice(ds, func(i, j int) bool { return ds[i] < ds[j] })
	q := func(p float64) time.Duration { return ds[min(len(ds)-1, int(p*float64(len(ds))))] }
	r := func(d time.Duration) string { return fmt.Sprintf("%.1f s", d.Seconds()) }
	return r(q(0.5)) + " / " + r(q(0.95)) + " / " + r(ds[len(ds)-1])
}
