package detect

import (
	"bufio"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	mrand "math/rand"
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
	"syscall"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// Faults that real clients see, served by nginx and swapped in with a
// reload (as a deploy does).
const (
	trafficQuiet   = iota // healthy throughout, background noise only
	trafficExpired        // the expired leaf deployed (no event)
	trafficNoInter        // a deploy ships the chain without its intermediate (deployed event)
	trafficSwapped        // a certificate of another issuer swapped in place (no event)
	trafficKinds
)

var trafficNames = map[int]string{trafficExpired: "expired leaf (nginx, traffic)", trafficNoInter: "deploy without intermediate (nginx, traffic)", trafficSwapped: "certificate swapped in place (nginx, traffic)"}

// trafficEP is one nginx endpoint with its own service, name and files.
type trafficEP struct {
	kind      int
	service   string
	sni, addr string
	crt, key  string // the files nginx serves
	rate      float64
	at        time.Time // the fault's instant (zero: none yet)
}

// trafficLab: nginx serving endpoints with steady client traffic (Go
// clients, OpenSSL s_client), background noise (scanners sending junk and
// odd offers, a small share of TLS 1.0 clients), and the built
// distribution reading nginx's logs with the shipped overlay
// (distributions/edge/nginx/collector.yaml), probing the same endpoints.
type trafficLab struct {
	t       *testing.T
	dir     string
	eps     []*trafficEP
	ng      *proxytest.Nginx
	roots   string
	pems    map[int][2][]byte // kind -> chain, key
	lcPort  int
	logs    string // the distribution's incident records (file exporter)
	hook    *firsts
	mu      sync.Mutex
	reloads sync.Mutex
	hs      atomic.Int64
	noise   atomic.Int64
}

func pemOf(typ string, der []byte) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der})
}

func keyPEM(t *testing.T, k any) []byte {
	der, err := x509.MarshalPKCS8PrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("PRIVATE KEY", der)
}

// selfSigned is a certificate for names from no one the clients trust.
func selfSigned(t *testing.T, names []string) ([]byte, []byte) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: names[0]}, DNSNames: names,
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(30 * 24 * time.Hour), KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	return pemOf("CERTIFICATE", der), keyPEM(t, k)
}

// startTraffic builds the endpoints (perKind of each fault kind and
// quiet ones), nginx, the distribution and the webhook receiver.
func startTraffic(t *testing.T, ctx context.Context, bin string, lab *faultlab.Lab, roots string, perKind, quiet int) *trafficLab {
	proxytest.Need(t, "nginx")
	need(t, "openssl")
	dir := t.TempDir()
	tl := &trafficLab{t: t, dir: dir, roots: roots, pems: map[int][2][]byte{}, hook: newFirsts()}
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
	inter := pemOf("CERTIFICATE", lab.Inter.Cert.Raw)
	tl.pems[trafficQuiet] = [2][]byte{append(pemOf("CERTIFICATE", good.Cert.Raw), inter...), keyPEM(t, good.Key)}
	tl.pems[trafficExpired] = [2][]byte{append(pemOf("CERTIFICATE", old.Cert.Raw), inter...), keyPEM(t, old.Key)}
	tl.pems[trafficNoInter] = [2][]byte{pemOf("CERTIFICATE", good.Cert.Raw), keyPEM(t, good.Key)}
	c, k := selfSigned(t, names)
	tl.pems[trafficSwapped] = [2][]byte{c, k}

	format, err := os.ReadFile("../../distributions/edge/nginx/certpulse-tls.conf")
	if err != nil {
		t.Fatal(err)
	}
	tlsLog := filepath.Join(dir, "tls.json")
	var conf strings.Builder
	conf.WriteString(strings.ReplaceAll(string(format), "$hostname", "edge-1") + "\n")
	rng := mrand.New(mrand.NewSource(11))
	var listen []string
	add := func(kind, i int) {
		ep := &trafficEP{kind: kind, service: fmt.Sprintf("web-%d-%02d", kind, i), sni: fmt.Sprintf("web-%d-%02d.detect.test", kind, i),
			addr: fmt.Sprintf("127.0.0.1:%d", tb.FreePort(t)), rate: 2 + 6*rng.Float64()}
		ep.crt, ep.key = filepath.Join(dir, ep.service+".crt"), filepath.Join(dir, ep.service+".key")
		tl.install(ep, trafficQuiet)
		fmt.Fprintf(&conf, "  server { listen %s ssl; server_name %s; ssl_certificate %s; ssl_certificate_key %s; ssl_protocols TLSv1.2 TLSv1.3; access_log %s certpulse_tls; return 200 ok; }\n",
			ep.addr, ep.sni, ep.crt, ep.key, tlsLog)
		listen = append(listen, ep.addr)
		tl.eps = append(tl.eps, ep)
	}
	for kind := trafficExpired; kind < trafficKinds; kind++ {
		for i := 0; i < perKind; i++ {
			add(kind, i)
		}
	}
	for i := 0; i < quiet; i++ {
		add(trafficQuiet, i)
	}
	tl.ng = proxytest.StartNginxMaster(t, conf.String(), listen...)
	for _, f := range []string{tlsLog, tl.ng.ErrorLog} {
		if fh, err := os.OpenFile(f, os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
			fh.Close()
		}
	}

	hook := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var b struct{ Service string }
		_ = json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&b)
		tl.hook.see(b.Service, time.Now())
		w.WriteHeader(http.StatusNoContent)
	}))
	t.Cleanup(hook.Close)

	// The distribution: probes of the same endpoints (30 s), lifecycle
	// events, the shipped nginx overlay into tlsedge (windows every 2 s,
	// the shipped default), the correlator with its step detector
	// triggering the probes.
	var tf, svcs strings.Builder
	tf.WriteString("targets:\n")
	for _, ep := range tl.eps {
		fmt.Fprintf(&tf, "  - {endpoint: %q, server_name: %s, service: %s, environment: detect, criticality: high, ca_file: %q}\n", ep.addr, ep.sni, ep.service, roots)
		fmt.Fprintf(&svcs, "      - {name: %s, server_names: [%s], listeners: [%q]}\n", ep.service, ep.sni, ep.addr)
	}
	write(t, filepath.Join(dir, "targets.yaml"), tf.String())
	tl.lcPort = tb.FreePort(t)
	tl.logs = filepath.Join(dir, "incidents.jsonl")
	cfg := fmt.Sprintf(`
extensions:
  health_check: {endpoint: "127.0.0.1:%d"}
  certpulse_trigger:
  bearertokenauth: {token: detect-token}
  file_storage: {directory: %s}
receivers:
  tlsprobe:
    collection_interval: 30s
    timeout: 5s
    max_concurrency: 16
    vantage: detect-traffic
    allow_private_fetch_networks: [127.0.0.0/8]
    trigger: certpulse_trigger
    targets_file: %s
  certlifecycle:
    endpoint: 127.0.0.1:%d
    auth: {authenticator: bearertokenauth}
    trigger: certpulse_trigger
connectors:
  tlsedge:
    services:
%sprocessors:
  memory_limiter: {check_interval: 1s, limit_mib: 1024}
  tlscorrelator:
    corroboration: {vantages: 1}
    trigger: certpulse_trigger
  filter/incidents:
    logs:
      log_record: ['event_name != "certpulse.incident"']
exporters:
  file/logs: {path: %s}
%sservice:
  extensions: [health_check, certpulse_trigger, bearertokenauth, file_storage]
  telemetry: {metrics: {level: none}}
  pipelines:
    logs:
      receivers: [tlsprobe, certlifecycle, tlsedge]
      # Only incident records go on (the exporters read nothing else).
      processors: [tlscorrelator, filter/incidents]
      exporters: [file/logs, remediation]
`, tb.FreePort(t), filepath.Join(dir, "state"), filepath.Join(dir, "targets.yaml"), tl.lcPort, svcs.String(), tl.logs, notifyExporter(hook.URL))
	_ = os.MkdirAll(filepath.Join(dir, "state"), 0o700)
	write(t, filepath.Join(dir, "certpulse-traffic.yaml"), cfg)
	abs, _ := filepath.Abs("../../distributions/edge/nginx/collector.yaml")
	cmd := exec.CommandContext(ctx, bin, "--config", filepath.Join(dir, "certpulse-traffic.yaml"), "--config", abs)
	cmd.Env = append(os.Environ(), "NGINX_TLS_LOG="+tlsLog, "NGINX_ERROR_LOG="+tl.ng.ErrorLog)
	exited, stderr := tb.Start(t, cmd)
	time.Sleep(3 * time.Second)
	select {
	case err := <-exited:
		t.Fatalf("traffic collector exited: %v\n%s", err, tb.Tail(stderr.String(), 3000))
	default:
	}
	return tl
}

// install writes kind's chain and key as ep's files.
func (tl *trafficLab) install(ep *trafficEP, kind int) {
	p := tl.pems[kind]
	if err := os.WriteFile(ep.crt+".tmp", p[0], 0o600); err != nil {
		tl.t.Fatal(err)
	}
	if err := os.WriteFile(ep.key+".tmp", p[1], 0o600); err != nil {
		tl.t.Fatal(err)
	}
	_ = os.Rename(ep.crt+".tmp", ep.crt)
	_ = os.Rename(ep.key+".tmp", ep.key)
}

// inject swaps ep's certificate for its fault and reloads nginx (SIGHUP);
// the instant is the reload's.
func (tl *trafficLab) inject(ep *trafficEP) {
	tl.reloads.Lock()
	defer tl.reloads.Unlock()
	tl.install(ep, ep.kind)
	if err := tl.ng.Reload(); err != nil {
		tl.t.Errorf("nginx reload: %v", err)
	}
	tl.mu.Lock()
	ep.at = time.Now()
	tl.mu.Unlock()
	if ep.kind == trafficNoInter {
		postDeployed(tl.lcPort, ep.service)
	}
}

// run drives the clients and the noise until ctx ends.
func (tl *trafficLab) run(ctx context.Context) {
	roots := x509.NewCertPool()
	if b, err := os.ReadFile(tl.roots); err == nil {
		roots.AppendCertsFromPEM(b)
	}
	var wg sync.WaitGroup
	for i, ep := range tl.eps {
		wg.Add(2)
		go func() { // Go clients: a Poisson stream at ep.rate
			defer wg.Done()
			rng := mrand.New(mrand.NewSource(int64(100 + i)))
			for ctx.Err() == nil {
				sleep(ctx, time.Duration(rng.ExpFloat64()/ep.rate*float64(time.Second)))
				cfg := &tls.Config{ServerName: ep.sni, RootCAs: roots}
				if rng.Float64() < 0.004 { // a legacy client: TLS 1.0 only
					cfg.MinVersion, cfg.MaxVersion = tls.VersionTLS10, tls.VersionTLS10
					tl.noise.Add(1)
				}
				go tl.request(ep, cfg)
			}
		}()
		go func() { // OpenSSL s_client, about one every 4 s
			defer wg.Done()
			rng := mrand.New(mrand.NewSource(int64(200 + i)))
			for ctx.Err() == nil {
				sleep(ctx, time.Duration((2+4*rng.Float64())*float64(time.Second)))
				tl.openssl(ctx, ep)
			}
		}()
	}
	wg.Add(1)
	go func() { // scanners: junk, plain HTTP, offers no one serves
		defer wg.Done()
		rng := mrand.New(mrand.NewSource(300))
		for ctx.Err() == nil {
			sleep(ctx, time.Duration((2+4*rng.Float64())*float64(time.Second)))
			ep := tl.eps[rng.Intn(len(tl.eps))]
			for n := 1 + rng.Intn(6); n > 0; n-- {
				tl.noise.Add(1)
				switch rng.Intn(3) {
				case 0:
					junk := make([]byte, 64)
					_, _ = rand.Read(junk)
					tl.raw(ep, junk)
				case 1:
					tl.raw(ep, []byte("GET / HTTP/1.0\r\n\r\n"))
				case 2: // RSA key exchange only: nginx serves ECDSA
					tl.request(ep, &tls.Config{ServerName: ep.sni, RootCAs: roots, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_RSA_WITH_AES_128_CBC_SHA}})
				}
			}
		}
	}()
	wg.Wait()
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// request: one handshake and one request on a new connection.
func (tl *trafficLab) request(ep *trafficEP, cfg *tls.Config) {
	d := &net.Dialer{Timeout: 3 * time.Second}
	c, err := tls.DialWithDialer(d, "tcp", ep.addr, cfg)
	tl.hs.Add(1)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(3 * time.Second))
	fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\nConnection: close\r\n\r\n", ep.sni)
	_, _ = io.Copy(io.Discard, bufio.NewReader(c))
}

func (tl *trafficLab) raw(ep *trafficEP, b []byte) {
	c, err := net.DialTimeout("tcp", ep.addr, 3*time.Second)
	if err != nil {
		return
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(2 * time.Second))
	_, _ = c.Write(b)
	_, _ = io.Copy(io.Discard, c)
}

func (tl *trafficLab) openssl(ctx context.Context, ep *trafficEP) {
	cctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	cmd := exec.CommandContext(cctx, "openssl", "s_client", "-connect", ep.addr, "-servername", ep.sni, "-CAfile", tl.roots, "-verify_return_error", "-quiet")
	cmd.Stdin = strings.NewReader("GET / HTTP/1.1\r\nHost: " + ep.sni + "\r\nConnection: close\r\n\r\n")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	_ = cmd.Run()
	tl.hs.Add(1)
}

// trafficResult: per endpoint, when the first incident record and the
// first webhook came, and the first incident record carrying a probe's
// reason code.
type trafficResult struct {
	incident, withProbe map[string]time.Time
	// edge: the first record saying real clients fail (the edge incident,
	// or a probe incident the edge signal joined); first: the first
	// record's summary.
	edge        map[string]time.Time
	first       map[string]string
	probeReason map[string]string
	noise       []string // incidents no fault explains
}

// watch reads the incident records until every faulted endpoint has an
// incident and a webhook, or the deadline.
func (tl *trafficLab) watch(deadline time.Time, allInjected func() bool) trafficResult {
	res := trafficResult{incident: map[string]time.Time{}, withProbe: map[string]time.Time{}, probeReason: map[string]string{},
		edge: map[string]time.Time{}, first: map[string]string{}}
	byService := map[string]*trafficEP{}
	for _, ep := range tl.eps {
		byService[ep.service] = ep
	}
	seen := map[string]bool{}
	for {
		now := time.Now()
		for _, r := range logtest.Named(logtest.ReadFile(tl.logs), attrs.EventIncident) {
			svc := r.ResAttr(attrs.ServiceName)
			state := attrs.State(r.Attr(attrs.IncidentState))
			key := r.Attr(attrs.IncidentID) + "/" + string(state) + "/" + r.Attr(attrs.IncidentProbeReason)
			if seen[key] || state == attrs.StateResolved {
				continue
			}
			seen[key] = true
			ep := byService[svc]
			tl.mu.Lock()
			at := time.Time{}
			if ep != nil {
				at = ep.at
			}
			tl.mu.Unlock()
			if ep == nil || ep.kind == trafficQuiet || at.IsZero() {
				if state == attrs.StateOpened {
					res.noise = append(res.noise, r.Body().AsString())
				}
				continue
			}
			if _, ok := res.incident[svc]; !ok {
				res.incident[svc], res.first[svc] = now, r.Body().AsString()
			}
			if _, ok := res.edge[svc]; !ok && (r.Attr(attrs.ReasonKey) == string(attrs.ReasonHandshakeFailureRate) || r.Attr(attrs.IncidentEdgeFailureShare) != "") {
				res.edge[svc] = now
			}
			// A probe's reason code: on the edge incident, or the probe's
			// own incident.
			if p := r.Attr(attrs.IncidentProbeReason); p != "" || r.Attr(attrs.ReasonKey) != string(attrs.ReasonHandshakeFailureRate) {
				if _, ok := res.withProbe[svc]; !ok {
					res.withProbe[svc], res.probeReason[svc] = now, cmp(p, r.Attr(attrs.ReasonKey))
				}
			}
		}
		done := allInjected()
		for _, ep := range tl.eps {
			if ep.kind == trafficQuiet {
				continue
			}
			if _, ok := tl.hook.get(ep.service); !ok {
				done = false
			}
			if _, ok := res.withProbe[ep.service]; !ok {
				done = false
			}
		}
		if done || now.After(deadline) {
			return res
		}
		time.Sleep(200 * time.Millisecond)
	}
}

func cmp(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// rows adds the traffic pipeline's delays to the table.
func (tl *trafficLab) rows(res trafficResult, add func(pipeline, kind string, at time.Time, got time.Time, ok bool)) {
	for _, ep := range tl.eps {
		if ep.kind == trafficQuiet {
			continue
		}
		kind := trafficNames[ep.kind]
		at, ok := res.incident[ep.service]
		add("certpulse traffic: fault -> incident record", kind, ep.at, at, ok)
		at, ok = tl.hook.get(ep.service)
		add("certpulse traffic: fault -> webhook", kind, ep.at, at, ok)
		at, ok = res.edge[ep.service]
		add("certpulse traffic: fault -> incident says real clients fail", kind, ep.at, at, ok)
		at, ok = res.withProbe[ep.service]
		add("certpulse traffic: fault -> incident with the probe's reason", kind, ep.at, at, ok)
	}
}

// TestDetectTraffic is the short form of the traffic rows (make detect,
// part of make test): one endpoint per traffic-visible fault and two
// quiet ones behind nginx with client traffic and noise; every fault opens
// an incident that soon carries the probe's reason code, and the noise
// opens none. Times are logged, not asserted (make testbed-detect
// measures them).
func TestDetectTraffic(t *testing.T) {
	bin := tb.Env(t, "detect", "CERTPULSE_BIN")[0]
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	files, err := lab.WriteFiles(filepath.Join(t.TempDir(), "lab"))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	tl := startTraffic(t, ctx, bin, lab, files.Roots, 1, 2)
	go tl.run(ctx)
	time.Sleep(40 * time.Second) // a baseline for every service
	var injected atomic.Bool
	go func() {
		for _, ep := range tl.eps {
			if ep.kind != trafficQuiet {
				tl.inject(ep)
				sleep(ctx, 5*time.Second)
			}
		}
		injected.Store(true)
	}()
	res := tl.watch(time.Now().Add(90*time.Second), injected.Load)
	tl.mu.Lock()
	defer tl.mu.Unlock()
	var kinds []string
	for _, ep := range tl.eps {
		if ep.kind == trafficQuiet {
			continue
		}
		inc, ok := res.incident[ep.service]
		if !ok {
			t.Errorf("%s (%s): no incident", ep.service, trafficNames[ep.kind])
			continue
		}
		hook, _ := tl.hook.get(ep.service)
		edge, ok := res.edge[ep.service]
		if !ok {
			t.Errorf("%s (%s): no incident said real clients were failing", ep.service, trafficNames[ep.kind])
		}
		t.Logf("%s: first record: %s", ep.service, res.first[ep.service])
		wp, ok := res.withProbe[ep.service]
		if !ok {
			t.Errorf("%s (%s): the incident never carried a probe's reason code", ep.service, trafficNames[ep.kind])
		}
		kinds = append(kinds, fmt.Sprintf("%s: incident %s, webhook %s, real clients failing %s, probe's reason %s (%s)", trafficNames[ep.kind],
			inc.Sub(ep.at).Round(100*time.Millisecond), hook.Sub(ep.at).Round(100*time.Millisecond), edge.Sub(ep.at).Round(100*time.Millisecond),
			wp.Sub(ep.at).Round(100*time.Millisecond), res.probeReason[ep.service]))
	}
	sort.Strings(kinds)
	t.Logf("%d handshakes, %d of them noise; after the fault:\n  %s", tl.hs.Load(), tl.noise.Load(), strings.Join(kinds, "\n  "))
	for _, n := range res.noise {
		t.Errorf("an incident no fault explains: %s", n)
	}
}
