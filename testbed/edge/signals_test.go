package edge

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/tls"
	"fmt"
	"io"
	"math"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"sigs.k8s.io/yaml"

	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// fixedSession is a client session cache that always offers the session
// it first stored, like `openssl s_client -sess_in`: the same ticket,
// presented to each node in turn.
type fixedSession struct {
	st *tls.ClientSessionState
}

func (f *fixedSession) Get(string) (*tls.ClientSessionState, bool) { return f.st, f.st != nil }
func (f *fixedSession) Put(_ string, st *tls.ClientSessionState) {
	if f.st == nil && st != nil {
		f.st = st
	}
}

// TestNginxEdgeSignals runs the built distribution with the shipped
// single-tier.yaml, edge/single-tier.yaml and edge/nginx/collector.yaml
// against Debian's nginx serving one name from three nodes (server blocks
// on 127.0.0.2-4, each logging its node name with certpulse-tls.conf's
// format): a and b share a session ticket key, c has its own. Clients:
// one session resumed at every node (c refuses it), TLS 1.0 clients
// refused, a legacy TLS 1.2 client with CBC suites only, three requests on
// one kept-alive connection. It asserts the tlsedge counters exactly, the
// what-if, and the correlator's two incidents.
func TestNginxEdgeSignals(t *testing.T) {
	bin := tb.Env(t, "edge", "CERTPULSE_BIN")[0]
	dir := t.TempDir()
	pki := newEdgePKI(t, dir)
	format, err := os.ReadFile("../../distributions/edge/nginx/certpulse-tls.conf")
	if err != nil {
		t.Fatal(err)
	}
	tlsLog := filepath.Join(dir, "tls.json")
	port := tb.FreePort(t)
	ticket := func(name string) string {
		b := make([]byte, 80)
		_, _ = rand.Read(b)
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	kAB, kC := ticket("ab.key"), ticket("c.key")
	nodes := map[string]string{"node-a": "127.0.0.2", "node-b": "127.0.0.3", "node-c": "127.0.0.4"}
	var conf bytes.Buffer
	var listen []string
	for _, node := range []string{"node-a", "node-b", "node-c"} {
		// The shipped format, with this node's name for $hostname (three
		// nodes on one host).
		f := strings.ReplaceAll(string(format), "$hostname", node)
		f = strings.ReplaceAll(f, "certpulse_tls ", "certpulse_tls_"+node[5:]+" ")
		conf.WriteString(f + "\n")
		key := kAB
		if node == "node-c" {
			key = kC
		}
		addr := fmt.Sprintf("%s:%d", nodes[node], port)
		listen = append(listen, addr)
		fmt.Fprintf(&conf, "  server { listen %s ssl; server_name %s; ssl_certificate %s; ssl_certificate_key %s; ssl_protocols TLSv1.2 TLSv1.3; ssl_ecdh_curve X25519:prime256v1; ssl_session_ticket_key %s; ssl_early_data on; access_log %s certpulse_tls_%s; return 200 ok; }\n",
			addr, name, pki.crt, pki.key, key, tlsLog, node[5:])
	}
	ng := proxytest.StartNginx(t, conf.String(), listen...)
	for _, f := range []string{tlsLog, ng.ErrorLog} {
		if fh, err := os.OpenFile(f, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fh.Close()
		}
	}
	sink := tb.NewLogSink()
	srv := httptest.NewServer(sink)
	t.Cleanup(srv.Close)
	prom := ""
	if p3 := os.Getenv("PROMETHEUS3_BIN"); p3 != "" {
		// Start timestamps as a zero sample (Mimir:
		// -distributor.otel-created-timestamp-zero-ingestion-enabled), so
		// that increase() counts a counter's first handshakes.
		prom = tb.Prometheus3(t, context.Background(), p3, "--enable-feature=created-timestamp-zero-ingestion")
	} else if proxytest.InCI() {
		t.Fatal("PROMETHEUS3_BIN not set (make edge sets it)")
	}
	lcPort := tb.FreePort(t)
	startShipped(t, bin, dir, srv.URL, prom, lcPort, listen, "NGINX_TLS_LOG="+tlsLog, "NGINX_ERROR_LOG="+ng.ErrorLog)

	roots := pki.roots
	a, b, c := listen[0], listen[1], listen[2]
	// 1. Three requests on one kept-alive connection at a: one handshake.
	if err := get(a, &tls.Config{ServerName: name, RootCAs: roots}, 3); err != nil {
		t.Fatal(err)
	}
	// 2. One session (TLS 1.3 ticket from a), then 10 rounds presenting it
	// to a, b and c on new connections: a and b resume, c cannot.
	cache := &fixedSession{}
	resumeCfg := &tls.Config{ServerName: name, RootCAs: roots, ClientSessionCache: cache}
	if err := getOnce(a, resumeCfg); err != nil {
		t.Fatal(err)
	}
	if cache.st == nil {
		t.Fatal("no session ticket from node a")
	}
	for i := 0; i < 10; i++ {
		for _, addr := range []string{a, b, c} {
			if err := getOnce(addr, resumeCfg); err != nil {
				t.Fatal(err)
			}
		}
	}
	// 3. A legacy TLS 1.2 client offering CBC suites only, with its own
	// user agent, twice at b.
	legacy := &tls.Config{ServerName: name, RootCAs: roots, MaxVersion: tls.VersionTLS12,
		CipherSuites: []uint16{tls.TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA, tls.TLS_ECDHE_ECDSA_WITH_AES_256_CBC_SHA}}
	for i := 0; i < 2; i++ {
		if err := getUA(b, legacy, "legacy-pos/2.0"); err != nil {
			t.Fatal(err)
		}
	}
	// 4. A deploy of shop (the shipped sender: bearer token + HMAC), then
	// five TLS 1.0 clients, refused (protocol_mismatch): the failure rate
	// incident names the deploy.
	send := exec.Command("sh", "-c", `printf '%s' '{"type":"deployed","id":"edge-deploy-1","service":"shop","job_id":"deploy-edge-7"}' | ../../distributions/otelcol-certpulse/hooks/certpulse-send`)
	send.Env = append(os.Environ(), fmt.Sprintf("CERTPULSE_URL=http://127.0.0.1:%d/v1/lifecycle", lcPort), "CERTPULSE_TOKEN=edge-token", "CERTPULSE_HMAC_SECRET=edge-hmac-0123456789")
	if out, err := send.CombinedOutput(); err != nil {
		t.Fatalf("certpulse-send: %v: %s", err, out)
	}
	old := &tls.Config{ServerName: name, RootCAs: roots, MinVersion: tls.VersionTLS10, MaxVersion: tls.VersionTLS10}
	refused := 0
	for i := 0; i < 5; i++ {
		if err := getOnce(c, old); err != nil {
			refused++
		}
	}

	// 4b. openssl s_client offering P384 then P256 (its key share for
	// P384, which these nodes do not take): a HelloRetryRequest for P256,
	// inferred from the offered groups and the chosen one. (Go orders the
	// groups itself and would send a P256 share.)
	sclient(t, b, pki.rootFile, "-groups", "secp384r1:prime256v1")
	// 5. 0-RTT with openssl s_client: a session from a (-sess_out), then a
	// POST sent as early data on a resumed connection to a (-early_data):
	// a non-idempotent method in early data.
	// nginx sets $ssl_early_data only while the handshake is incomplete:
	// early data it reads after the handshake completed is not flagged. So
	// try until one request is logged as early data (each attempt is two
	// connections to a, the second resumed).
	attempts := 0
	for attempts < 5 {
		attempts++
		earlyData(t, a, pki.rootFile, dir)
		for wait := time.Now().Add(5 * time.Second); time.Now().Before(wait) && sink.Metric("tlsedge.early_data.non_idempotent", nil) < 1; {
			time.Sleep(200 * time.Millisecond)
		}
		if sink.Metric("tlsedge.early_data.non_idempotent", nil) >= 1 {
			break
		}
	}
	t.Logf("0-RTT: %d attempt(s) until nginx flagged the request as early data", attempts)

	// Totals: 1 (kept-alive) + 1 (session from a) + 30 (rounds) + 2 (legacy)
	// + 1 (HRR) + 2 per 0-RTT attempt successful handshakes, refused failed ones.
	wantOK := 35.0 + 2*float64(attempts)
	m := func(name string, match map[string]string) float64 { return sink.Metric(name, match) }
	deadline := time.Now().Add(40 * time.Second)
	for time.Now().Before(deadline) && (m("tlsedge.handshakes", map[string]string{"certpulse.edge.outcome": "success"}) < wantOK ||
		m("tlsedge.handshakes", map[string]string{"certpulse.edge.outcome": "failure"}) < float64(refused)) {
		time.Sleep(500 * time.Millisecond)
	}
	check := func(what string, got, want float64) {
		t.Helper()
		if got != want {
			t.Errorf("%s = %v, want %v", what, got, want)
		}
	}
	check("successful handshakes (each connection once)", m("tlsedge.handshakes", map[string]string{"certpulse.edge.outcome": "success"}), wantOK)
	check("failed handshakes", m("tlsedge.handshakes", map[string]string{"certpulse.edge.outcome": "failure"}), float64(refused))
	check("resumed at node a", m("tlsedge.handshakes", map[string]string{"certpulse.edge.node": "node-a", "tls.resumed": "true"}), 10+float64(attempts))
	check("inferred HelloRetryRequests", m("tlsedge.hello_retries", map[string]string{"certpulse.edge.node": "node-b", "certpulse.tls.hello_retry.source": "inferred"}), 1)
	check("P256 chosen", m("tlsedge.handshakes", map[string]string{"tls.curve": "P256", "certpulse.edge.node": "node-b"}), 1)
	check("early data handshakes", m("tlsedge.handshakes", map[string]string{"tls.early_data": "true"}), 1)
	check("early data with POST", m("tlsedge.early_data.non_idempotent", map[string]string{"http.request.method": "POST", "certpulse.edge.node": "node-a"}), 1)
	check("resumed at node b", m("tlsedge.handshakes", map[string]string{"certpulse.edge.node": "node-b", "tls.resumed": "true"}), 10)
	check("resumed at node c", m("tlsedge.handshakes", map[string]string{"certpulse.edge.node": "node-c", "tls.resumed": "true"}), 0)
	check("full handshakes at node c", m("tlsedge.handshakes", map[string]string{"certpulse.edge.node": "node-c", "certpulse.edge.outcome": "success", "tls.resumed": "false"}), 10)
	check("TLS 1.2 handshakes", m("tlsedge.handshakes", map[string]string{"tls.protocol.version": "1.2"}), 2)
	check("the legacy client's suite by IANA name", m("tlsedge.handshakes", map[string]string{"tls.cipher": "TLS_ECDHE_ECDSA_WITH_AES_128_CBC_SHA"}), 2)
	check("later requests on a kept-alive connection", m("tlsedge.records", map[string]string{"certpulse.edge.record": "request"}), 2)
	if refused == 0 {
		t.Error("no TLS 1.0 client was refused")
	}
	failReasons := map[string]float64{}
	for _, s := range sink.Series("tlsedge.handshakes") {
		if s["certpulse.edge.outcome"] == "failure" {
			failReasons[s["certpulse.reason"]] = m("tlsedge.handshakes", map[string]string{"certpulse.edge.outcome": "failure", "certpulse.reason": s["certpulse.reason"]})
			if s["certpulse.edge.node"] != "node-c" {
				t.Errorf("a failure (error log, no node) not attributed to its listener's node: %v", s)
			}
		}
	}
	t.Logf("failures by reason: %v", failReasons)
	perNode := map[string]int{}
	total := 0
	for _, name := range []string{"tlsedge.handshakes", "tlsedge.hello_retries", "tlsedge.early_data.non_idempotent", "tlsedge.records", "tlsedge.policy.handshakes", "tlsedge.policy.would_fail"} {
		for _, s := range sink.Series(name) {
			perNode[s["certpulse.edge.node"]]++
			total++
		}
	}
	t.Logf("series: %d in all; by node (\"\" = not per node: records, what-if): %v", total, perNode)
	// The what-if on real nginx traffic: Mozilla modern would strand every
	// TLS 1.2 client (version); intermediate the CBC-only legacy client
	// (cipher) and no one else.
	check("modern would fail", m("tlsedge.policy.would_fail", map[string]string{"certpulse.policy": "mozilla-modern", "certpulse.policy.rule": "version"}), 2)
	check("intermediate would fail (cipher)", m("tlsedge.policy.would_fail", map[string]string{"certpulse.policy": "mozilla-intermediate", "certpulse.policy.rule": "cipher"}), 2)
	check("intermediate would fail, legacy-pos class", m("tlsedge.policy.would_fail", map[string]string{"certpulse.policy": "mozilla-intermediate", "certpulse.edge.client.class": "other-ua"}), 2)
	check("tls12-aead-only would fail (cipher)", m("tlsedge.policy.would_fail", map[string]string{"certpulse.policy": "tls12-aead-only", "certpulse.policy.rule": "cipher"}), 2)
	check("intermediate judged", m("tlsedge.policy.handshakes", map[string]string{"certpulse.policy": "mozilla-intermediate"}), wantOK)
	check("intermediate passes", m("tlsedge.policy.handshakes", map[string]string{"certpulse.policy": "mozilla-intermediate", "certpulse.policy.verdict": "pass"}), wantOK-2)

	// The correlator: node c's resumption is degraded while a and b
	// resume; TLS 1.0 clients failing put the success rate below 99.5%.
	var incidents []logtest.Record
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		incidents = incidents[:0]
		for _, r := range sink.All() {
			if r.EventName() == "certpulse.incident" && r.ResAttr("service.name") == "shop" {
				incidents = append(incidents, r)
			}
		}
		if hasIncident(incidents, "resumption_degraded") && hasIncident(incidents, "handshake_failure_rate") {
			break
		}
	}
	for _, r := range incidents {
		t.Logf("incident %s %s impact=%s: %s", r.Attr("certpulse.incident.state"), r.Attr("certpulse.reason"), r.Attr("certpulse.impact"), r.Body().AsString())
	}
	for _, want := range []string{"resumption_degraded", "handshake_failure_rate"} {
		if !hasIncident(incidents, want) {
			t.Errorf("no %s incident opened for shop", want)
		}
	}
	for _, r := range incidents {
		if r.Attr("certpulse.reason") == "resumption_degraded" && r.Attr("certpulse.incident.state") == "opened" {
			if nodes := r.Attr("certpulse.incident.edge.nodes"); !strings.Contains(nodes, "node-c") || strings.Contains(nodes, "node-a") {
				t.Errorf("resumption_degraded names %s, want node-c only", nodes)
			}
		}
		if r.Attr("certpulse.reason") == "handshake_failure_rate" && r.Attr("certpulse.incident.state") == "opened" {
			if job := r.Attr("certpulse.lifecycle.job_id"); job != "deploy-edge-7" {
				t.Errorf("handshake_failure_rate after a deploy names job %q, want deploy-edge-7", job)
			}
			// The share of the handshakes judged when it opened (all
			// failures are logged before most successes are read).
			hs, _ := strconv.ParseFloat(r.Attr("certpulse.incident.edge.handshakes"), 64)
			share, _ := strconv.ParseFloat(r.Attr("certpulse.incident.edge.failure_share"), 64)
			if want := math.Round(float64(refused)/hs*1000) / 1000; hs < 20 || share != want {
				t.Errorf("failure share %v of %v handshakes, want %v", share, hs, want)
			}
		}
	}
	// Normalized records reach Loki under the service.
	n := 0
	for _, r := range sink.All() {
		if r.Attr("certpulse.edge.record") == "handshake" && r.ResAttr("service.name") == "shop" && r.Attr("tls.cipher") != "" {
			n++
		}
	}
	check("handshake records in Loki", float64(n), wantOK)
	if prom != "" {
		checkEdgeDashboard(t, prom)
	}
}

// checkEdgeDashboard runs every PromQL query of the edge dashboard on
// Prometheus 3 (Mimir's names) and expects data from each.
func checkEdgeDashboard(t *testing.T, prom string) {
	t.Helper()
	time.Sleep(3 * time.Second) // a few more samples: rate() needs two
	// The real-user (NEL) row is testbed/nel's (make nel): browsers.
	total := tb.CheckPanels(t, prom, "certpulse-edge", name, func(expr string) bool { return !strings.Contains(expr, "certpulse_nel_reports") }, nil)
	t.Logf("edge dashboard: %d PromQL queries run on Prometheus 3", total)
}

// earlyData runs openssl s_client twice against addr: once to get a TLS 1.3
// session, once to send a POST as 0-RTT early data with it.
func earlyData(t *testing.T, addr, rootFile, dir string) {
	t.Helper()
	sess, req := filepath.Join(dir, "sess.pem"), filepath.Join(dir, "early.txt")
	if err := os.WriteFile(req, []byte("POST / HTTP/1.1\r\nHost: "+name+"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	sclient(t, addr, rootFile, "-sess_out", sess)
	out := sclient(t, addr, rootFile, "-sess_in", sess, "-early_data", req)
	if !strings.Contains(out, "Early data was accepted") {
		t.Fatalf("nginx did not accept the early data:\n%s", tb.Tail(out, 1500))
	}
}

// sclient makes one TLS 1.3 connection with openssl s_client and one GET.
func sclient(t *testing.T, addr, rootFile string, args ...string) string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "openssl", append([]string{"s_client", "-connect", addr, "-servername", name, "-CAfile", rootFile, "-tls1_3", "-ign_eof"}, args...)...)
	cmd.Stdin = strings.NewReader("GET / HTTP/1.1\r\nHost: " + name + "\r\nConnection: close\r\n\r\n")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("openssl s_client %v: %v\n%s", args, err, out)
	}
	return string(out)
}

func hasIncident(recs []logtest.Record, reason string) bool {
	for _, r := range recs {
		if r.Attr("certpulse.reason") == reason && r.Attr("certpulse.incident.state") == "opened" {
			return true
		}
	}
	return false
}

// startShipped runs the distribution with the shipped single-tier.yaml,
// edge/single-tier.yaml and edge/nginx/collector.yaml, plus an overlay with
// the test's URLs and short intervals.
func startShipped(t *testing.T, bin, dir, sinkURL, prom string, lcPort int, listeners []string, env ...string) {
	t.Helper()
	targets := filepath.Join(dir, "targets.yaml")
	if err := os.WriteFile(targets, []byte("targets:\n  - {endpoint: \"127.0.0.1:1\", service: unrelated}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	overlay := map[string]any{
		"extensions": map[string]any{"health_check": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t))}},
		"receivers": map[string]any{
			"tlsprobe":      map[string]any{"targets_file": targets, "collection_interval": "30s"},
			"certlifecycle": map[string]any{"endpoint": fmt.Sprintf("127.0.0.1:%d", lcPort)},
		},
		"connectors": map[string]any{"tlsedge": map[string]any{
			"interval": "1s",
			"services": []any{map[string]any{"name": "shop", "server_names": []string{name}, "listeners": listeners}},
		}},
		"processors": map[string]any{"tlscorrelator": map[string]any{
			// Refused offers judged too (by default they are the
			// server's policy, not a failure): the TLS 1.0 clients.
			"edge": map[string]any{"window": "1m", "min_handshakes": 20, "min_node_handshakes": 5, "exclude_reasons": []string{"not_tls"}},
		}},
		"exporters": map[string]any{
			"otlphttp/mimir": map[string]any{"endpoint": sinkURL + "/mimir"},
			"otlphttp/loki":  map[string]any{"endpoint": sinkURL + "/loki"},
		},
		"service": map[string]any{"telemetry": map[string]any{"metrics": map[string]any{"level": "none", "readers": []any{}}}},
	}
	if prom != "" { // Mimir's stand-in too, for the dashboard's queries
		overlay["exporters"].(map[string]any)["otlphttp/prom3"] = map[string]any{"endpoint": prom + "/api/v1/otlp"}
		overlay["service"].(map[string]any)["pipelines"] = map[string]any{"metrics/edge": map[string]any{"exporters": []string{"otlphttp/mimir", "otlphttp/prom3"}}}
	}
	ov, err := yaml.Marshal(overlay)
	if err != nil {
		t.Fatal(err)
	}
	ovPath := filepath.Join(dir, "test-overlay.yaml")
	if err := os.WriteFile(ovPath, ov, 0o600); err != nil {
		t.Fatal(err)
	}
	abs := func(p string) string { s, _ := filepath.Abs(filepath.Join("..", "..", p)); return s }
	cmd := exec.Command(bin, "--config", abs("distributions/otelcol-certpulse/single-tier.yaml"), "--config", abs("distributions/edge/single-tier.yaml"),
		"--config", abs("distributions/edge/nginx/collector.yaml"), "--config", ovPath)
	cmd.Env = append(os.Environ(), append(env, "NODE_NAME=edge-test", "POD_IP=127.0.0.1", "CERTPULSE_STATE_DIR="+filepath.Join(dir, "state"),
		"CERTPULSE_WEBHOOK_TOKEN=edge-token", "CERTPULSE_WEBHOOK_HMAC=edge-hmac-0123456789", "MIMIR_URL=http://unused.invalid", "MIMIR_TENANT=certpulse",
		"LOKI_URL=http://unused.invalid", "LOKI_TENANT=certpulse")...)
	exited, stderr := tb.Start(t, cmd)
	time.Sleep(3 * time.Second)
	select {
	case err := <-exited:
		t.Fatalf("collector exited: %v\n%s", err, tb.Tail(stderr.String(), 3000))
	default:
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("collector stderr:\n%s", tb.Tail(stderr.String(), 3000))
		}
	})
}

// getOnce makes one request on a new connection.
func getOnce(target string, cfg *tls.Config) error { return getUA(target, cfg, "") }

func getUA(target string, cfg *tls.Config, ua string) error {
	tr := &http.Transport{TLSClientConfig: cfg, DisableKeepAlives: true,
		DialContext: (&net.Dialer{Timeout: 3 * time.Second}).DialContext}
	defer tr.CloseIdleConnections()
	req, err := http.NewRequestWithContext(context.Background(), http.MethodGet, "https://"+target+"/", nil)
	if err != nil {
		return err
	}
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	resp, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	return resp.Body.Close()
}
