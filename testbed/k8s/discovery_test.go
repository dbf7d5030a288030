package k8s

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// Loopback addresses of the discovery test: the agent's "pod IP" (its
// health, lifecycle and telemetry ports), the lab's TLS servers (what the
// cluster names resolve to), a workload pod's IP (where lifecycle events come
// from) and the test's DNS server (port 53, named by the agent's resolv.conf).
const (
	agentIP    = "127.0.0.61"
	labIP      = "127.0.0.62"
	workloadIP = "127.0.0.63"
	dnsIP      = "127.0.0.153"
	nodeName   = "lab-node-1"
	webhookTok = "k8s-discovery-token-0123456789"
	webhookKey = "k8s-discovery-hmac-0123456789abcdef"
)

// sniServer is a TLS server that counts the SNI of every handshake it sees:
// what the agent probed, and with which name.
type sniServer struct {
	mu   sync.Mutex
	seen map[string]int
}

func (s *sniServer) count(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.seen[name]
}

func (s *sniServer) names() map[string]int {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := map[string]int{}
	for k, v := range s.seen {
		out[k] = v
	}
	return out
}

// serveTLS serves certs (chosen by SNI, the first when none matches) on
// addr until cleanup.
func serveTLS(t *testing.T, addr string, s *sniServer, certs map[string]tls.Certificate, fallback string) {
	t.Helper()
	ln, err := tls.Listen("tcp", addr, &tls.Config{GetCertificate: func(h *tls.ClientHelloInfo) (*tls.Certificate, error) {
		s.mu.Lock()
		s.seen[h.ServerName]++
		s.mu.Unlock()
		if c, ok := certs[h.ServerName]; ok {
			return &c, nil
		}
		c := certs[fallback]
		return &c, nil
	}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				_ = c.SetDeadline(time.Now().Add(5 * time.Second))
				_ = c.(*tls.Conn).Handshake()
				_, _ = c.Write([]byte("HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"))
				_ = c.Close()
			}()
		}
	}()
}

func labCert(t *testing.T, lab *faultlab.Lab, name string) tls.Certificate {
	t.Helper()
	leaf, err := lab.IssueLeaf([]string{name}, time.Now().Add(-time.Hour), time.Now().Add(60*24*time.Hour), false)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{leaf.Cert.Raw, lab.Inter.Cert.Raw}, PrivateKey: leaf.Key, Leaf: leaf.Cert}
}

// shippedAgentConfig is distributions/kubernetes/base/agent.yaml with only
// what running outside a pod requires changed: the API credentials from a
// kubeconfig instead of the pod's ServiceAccount mount, the node's
// certificate paths and the targets file in the test's directory, and the
// probe interval (5 s instead of 60 s to see several rounds; the probe
// timeout, 5 s, may not exceed it) so that the test sees several rounds. Every
// replacement must match, so the test follows the shipped file.
func shippedAgentConfig(t *testing.T, dir, interval string) string {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(repo(), "distributions", "kubernetes", "base", "agent.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := string(data)
	for _, r := range []struct {
		old, new string
		n        int
	}{
		{"auth_type: serviceAccount", "auth_type: kubeConfig", 4},
		{"collection_interval: 60s", "collection_interval: " + interval, 3},
		{"/etc/certpulse/targets.yaml", filepath.Join(dir, "targets.yaml"), 1},
		{"/host/etc/kubernetes/pki/", filepath.Join(dir, "pki") + "/", 1},
		{"/host/var/lib/kubelet/pki/", filepath.Join(dir, "kubelet") + "/", 1},
	} {
		if got := strings.Count(cfg, r.old); got != r.n {
			t.Fatalf("agent.yaml: %q occurs %d times, the test expects %d: update shippedAgentConfig", r.old, got, r.n)
		}
		cfg = strings.ReplaceAll(cfg, r.old, r.new)
	}
	if _, err := os.Stat(filepath.Join(dir, "targets.yaml")); err != nil { // a test's own, or none
		if err := os.WriteFile(filepath.Join(dir, "targets.yaml"), []byte("targets: []\n"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	p := filepath.Join(dir, "agent.yaml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// startAgent runs the built distribution with cfg in a mount namespace of
// its own where /etc/resolv.conf names the test's DNS server (the binary is
// unchanged: its own resolver reads resolv.conf), as a pod's cluster DNS
// would answer. Needs root (unshare, mount).
func startAgent(t *testing.T, bin, cfg, dir string, env []string) (<-chan error, *bytes.Buffer) {
	t.Helper()
	if os.Geteuid() != 0 {
		proxytest.SkipOrFail(t, "the agent's own resolv.conf needs a mount namespace (root)")
	}
	unshare := proxytest.Need(t, "unshare")
	rc := filepath.Join(dir, "resolv.conf")
	if err := os.WriteFile(rc, []byte("nameserver "+dnsIP+"\noptions ndots:1 timeout:1 attempts:2\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	cmd := exec.CommandContext(ctx, unshare, "--mount", "--propagation", "private", "sh", "-c",
		`mount --bind "$0" /etc/resolv.conf && exec "$1" --config "$2"`, rc, bin, cfg)
	cmd.Env = append(os.Environ(), env...)
	return tb.Start(t, cmd)
}

// TestDiscovery runs the built distribution outside the cluster with the
// shipped agent config and a kubeconfig for the agent's ServiceAccount: it
// discovers annotated Services and TLS Ingresses from the real API server,
// probes them at their cluster names (which the test's DNS server answers
// with the lab's TLS servers) with the right SNI and routing keys, stops
// when the annotation goes or the object is deleted, and k8sattributes
// names the pod a lifecycle event was posted from.
func TestDiscovery(t *testing.T) {
	c := getCluster(t)
	bin := need(t, "CERTPULSE_BIN", "the built distribution")
	applyServerSide(t, c, "single-tier", kustomize(t, c, "single-tier"))
	dir := t.TempDir()

	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	roots := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(roots, faultlab.PEM(lab.Root.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	const (
		webSNI  = "web.shop.certpulse.test"      // certpulse.dev/server-name of Service web
		apiName = "api.shop.svc.cluster.local"   // Service api: SNI is its cluster name
		webName = "web.shop.svc.cluster.local"   // Service web's cluster name
		quiet   = "quiet.shop.svc.cluster.local" // not annotated: never probed
		ingHost = "shop.certpulse.test"          // Ingress shop's TLS host
	)
	srv := &sniServer{seen: map[string]int{}}
	svcPort := tb.FreePort(t)
	serveTLS(t, fmt.Sprintf("%s:%d", labIP, svcPort), srv, map[string]tls.Certificate{
		webSNI: labCert(t, lab, webSNI), apiName: labCert(t, lab, apiName),
	}, webSNI)
	serveTLS(t, labIP+":443", srv, map[string]tls.Certificate{ingHost: labCert(t, lab, ingHost)}, ingHost)
	lab1 := netip.MustParseAddr(labIP)
	proxytest.StartDNSAt(t, dnsIP+":53", map[string][]netip.Addr{
		webName: {lab1}, apiName: {lab1}, quiet: {lab1}, ingHost: {lab1},
	})

	// The workloads, as an application team would write them.
	ns := "shop"
	applyServerSide(t, c, "shop", []byte(fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: v1
kind: Service
metadata:
  name: web
  namespace: %[1]s
  annotations:
    certpulse.dev/probe: "true"
    certpulse.dev/port: "%[2]d"
    certpulse.dev/server-name: %[3]s
    certpulse.dev/owner: team-shop
    certpulse.dev/criticality: high
spec:
  ports: [{name: https, port: 443}]
---
apiVersion: v1
kind: Service
metadata:
  name: api
  namespace: %[1]s
  annotations:
    certpulse.dev/probe: "true"
    certpulse.dev/port: "%[2]d"
spec:
  ports: [{name: https, port: 443}]
---
apiVersion: v1
kind: Service
metadata: {name: quiet, namespace: %[1]s}
spec:
  ports: [{name: https, port: 443}]
---
apiVersion: networking.k8s.io/v1
kind: Ingress
metadata:
  name: storefront
  namespace: %[1]s
  annotations: {certpulse.dev/owner: team-front}
spec:
  tls: [{hosts: [%[4]s], secretName: storefront-tls}]
  rules:
    - host: %[4]s
      http:
        paths:
          - {path: /, pathType: Prefix, backend: {service: {name: web, port: {number: 443}}}}
          - {path: /api, pathType: Prefix, backend: {service: {name: api, port: {number: 443}}}}
---
apiVersion: apps/v1
kind: Deployment
metadata: {name: checkout, namespace: %[1]s}
spec:
  replicas: 1
  selector: {matchLabels: {app: checkout}}
  template:
    metadata: {labels: {app: checkout}}
    spec:
      nodeName: %[5]s
      containers: [{name: app, image: registry.invalid/checkout:1}]
`, ns, svcPort, webSNI, ingHost, nodeName)))

	a := runAgent(t, c, bin, dir, "5s", roots)
	sink, alive := a.sink, a.alive
	probes := func(addr string) []logtest.Record {
		var out []logtest.Record
		for _, r := range logtest.Named(sink.ByName()["loki"], attrs.EventProbeResult) {
			if r.Attr(attrs.ServerAddress) == addr {
				out = append(out, r)
			}
		}
		return out
	}
	want := []struct {
		sni, endpoint, service, owner, criticality string
	}{
		{webSNI, fmt.Sprintf("%s:%d", webName, svcPort), "web", "team-shop", "high"},
		{apiName, "", "api", "", "medium"},
		{ingHost, "", "storefront", "team-front", "medium"},
	}
	eventually(t, 60*time.Second, func() string {
		alive()
		for _, w := range want {
			if len(probes(w.sni)) == 0 || srv.count(w.sni) == 0 {
				return fmt.Sprintf("%s not probed yet (server saw %v)", w.sni, srv.names())
			}
		}
		return ""
	})
	for _, w := range want {
		r := probes(w.sni)[0]
		got := map[string]string{
			"reason":      r.Attr(attrs.ReasonKey),
			"endpoint":    r.Attr(attrs.ProbeEndpoint),
			"service":     r.ResAttr(attrs.ServiceName),
			"owner":       r.ResAttr(attrs.Owner),
			"criticality": r.ResAttr(attrs.Criticality),
			"environment": r.ResAttr(attrs.DeploymentEnv),
			"vantage":     r.ResAttr(attrs.Vantage),
		}
		// The chain, the name and the SNI are right: the only finding is
		// that the lab's OCSP responder (on 127.0.0.1) was not asked,
		// because the shipped config refuses fetches to private addresses
		// (SSRF guard, allow_private_fetch_networks unset), as it should.
		got["reasons"] = r.Attr(attrs.ReasonsKey)
		exp := map[string]string{
			"reason": string(attrs.ReasonOCSPError), "reasons": `["` + string(attrs.ReasonOCSPError) + `"]`, "endpoint": w.endpoint, "service": w.service,
			"owner": w.owner, "criticality": w.criticality, "environment": "lab", "vantage": nodeName,
		}
		for k, v := range exp {
			if got[k] != v {
				t.Errorf("%s: %s = %q, want %q (%s)", w.sni, k, got[k], v, r.Body().AsString())
			}
		}
	}
	if n := srv.count(quiet); n != 0 {
		t.Errorf("the Service without certpulse.dev/probe was probed %d times", n)
	}
	// Metrics too, with the routing keys as data point labels
	// (transform/mimir_labels), as Mimir will keep them.
	eventually(t, 20*time.Second, func() string {
		for _, l := range sink.Series("tlsprobe.cert.time_left") {
			if l[attrs.ServiceName] == "web" && l[attrs.Owner] == "team-shop" && l[attrs.Criticality] == "high" && l[attrs.Vantage] == nodeName {
				return ""
			}
		}
		return fmt.Sprintf("no tlsprobe.cert.time_left series for web with its routing keys: %v", sink.Series("tlsprobe.cert.time_left"))
	})

	// k8s_observer emits one endpoint per Ingress path, so receiver_creator
	// starts two identical receivers for the two-path Ingress: they share
	// one claim (the trigger hub) and probe it once a round, as often as
	// the single Service.
	n0 := srv.names()
	time.Sleep(10500 * time.Millisecond)
	n1 := srv.names()
	if dIng, dAPI := n1[ingHost]-n0[ingHost], n1[apiName]-n0[apiName]; dIng > dAPI+1 || dAPI == 0 {
		t.Errorf("in two rounds the two-path Ingress was probed %d times, the single Service %d", dIng, dAPI)
	}
	// The annotation removed and the Ingress deleted: their probes stop
	// within an interval or two, the other Service's go on.
	c.kubectlT(t, "annotate", "service", "web", "-n", ns, "certpulse.dev/probe-")
	c.kubectlT(t, "delete", "ingress", "storefront", "-n", ns)
	time.Sleep(6 * time.Second) // the watch event, one in-flight round
	before := map[string]int{webSNI: srv.count(webSNI), ingHost: srv.count(ingHost), apiName: srv.count(apiName)}
	time.Sleep(11 * time.Second) // two intervals
	alive()
	for _, name := range []string{webSNI, ingHost} {
		if n := srv.count(name) - before[name]; n != 0 {
			t.Errorf("%s: probed %d more times after its Service lost the annotation / its Ingress was deleted", name, n)
		}
	}
	if srv.count(apiName) == before[apiName] {
		t.Errorf("%s: no longer probed, but its Service is still annotated", apiName)
	}
	// Deleting the annotated Service stops its probes too.
	c.kubectlT(t, "delete", "service", "api", "-n", ns)
	time.Sleep(6 * time.Second)
	n := srv.count(apiName)
	time.Sleep(11 * time.Second)
	if d := srv.count(apiName) - n; d != 0 {
		t.Errorf("%s: probed %d more times after its Service was deleted", apiName, d)
	}

	// A lifecycle event posted from the checkout pod's IP carries the pod,
	// namespace and Deployment (k8sattributes, by connection address).
	pod := givePodAnIP(t, c, ns, "app=checkout", workloadIP)
	eventually(t, 30*time.Second, func() string {
		alive()
		id := fmt.Sprintf("k8s-discovery-%d", time.Now().UnixNano())
		if code := postFrom(workloadIP, "http://"+agentIP+":4380/v1/lifecycle", id); code/100 != 2 {
			return fmt.Sprintf("lifecycle POST: HTTP %d", code)
		}
		time.Sleep(time.Second)
		for _, r := range sink.ByName()["loki"] {
			if r.Attr(attrs.LifecycleEventID) != id {
				continue
			}
			got := fmt.Sprintf("%s/%s/%s", r.ResAttr("k8s.namespace.name"), r.ResAttr("k8s.pod.name"), r.ResAttr("k8s.deployment.name"))
			if got != ns+"/"+pod+"/checkout" {
				return "lifecycle event attributed to " + got + ", want " + ns + "/" + pod + "/checkout"
			}
			return ""
		}
		return "lifecycle event " + id + " not exported yet"
	})
}

// givePodAnIP finds the pod the Deployment's ReplicaSet created (the
// controller manager runs; no scheduler or kubelet does) and writes the
// status a kubelet would: Running with ip. It returns the pod's name.
func givePodAnIP(t *testing.T, c *cluster, ns, selector, ip string) string {
	t.Helper()
	var pod string
	eventually(t, 30*time.Second, func() string {
		out, err := c.run(context.Background(), "get", "pods", "-n", ns, "-l", selector, "-o", "jsonpath={.items[*].metadata.name}")
		if err != nil {
			return err.Error()
		}
		if f := strings.Fields(string(out)); len(f) > 0 {
			pod = f[0]
			return ""
		}
		return "no pod for " + selector + " yet"
	})
	status, _ := json.Marshal(map[string]any{"status": map[string]any{
		"phase": "Running", "podIP": ip, "podIPs": []map[string]string{{"ip": ip}}, "hostIP": "127.0.0.1",
	}})
	c.kubectlT(t, "patch", "pod", pod, "-n", ns, "--subresource=status", "--type=merge", "-p", string(status))
	return pod
}

// postFrom posts one signed lifecycle event from the source address src (a
// pod's IP) and returns the HTTP status, 0 when it could not be sent.
func postFrom(src, url, id string) int {
	body, _ := json.Marshal(map[string]any{"type": "validated", "id": id, "service": "checkout", "environment": "lab", "source": "k8s-test"})
	req, err := tb.LifecycleRequest(url, webhookTok, webhookKey, body)
	if err != nil {
		return 0
	}
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	client := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DialContext: d.DialContext}}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	defer resp.Body.Close()
	return resp.StatusCode
}

// agent is the built distribution running the shipped agent config against
// the test API server, its logs and metrics in sink.
type agent struct {
	sink  *tb.LogSink
	alive func() // fails the test when the agent has exited
}

// runAgent starts the agent as the base's ServiceAccount (a kubeconfig with
// a token the API server issued), with the probe interval given and the
// lab roots trusted (SSL_CERT_FILE, as a pod trusts its CA bundle).
func runAgent(t *testing.T, c *cluster, bin, dir, interval, roots string) agent {
	t.Helper()
	for _, d := range []string{"pki", "kubelet", "state"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	kc := saKubeconfig(t, c, "certpulse", "otelcol-certpulse")
	sink := tb.NewLogSink()
	hs := httptest.NewServer(sink)
	t.Cleanup(hs.Close)
	cfg := shippedAgentConfig(t, dir, interval)
	exited, stderr := startAgent(t, bin, cfg, dir, []string{
		"KUBECONFIG=" + kc,
		"NODE_NAME=" + nodeName,
		"POD_NAMESPACE=certpulse",
		"POD_IP=" + agentIP,
		"CERTPULSE_STATE_DIR=" + filepath.Join(dir, "state"),
		"CERTPULSE_WEBHOOK_TOKEN=" + webhookTok,
		"CERTPULSE_WEBHOOK_HMAC=" + webhookKey,
		"CERTPULSE_ENVIRONMENT=lab",
		"MIMIR_URL=" + hs.URL + "/mimir", "MIMIR_TENANT=lab",
		"LOKI_URL=" + hs.URL + "/loki", "LOKI_TENANT=lab",
		"SSL_CERT_FILE=" + roots,
	})
	return agent{sink: sink, alive: func() {
		t.Helper()
		select {
		case err := <-exited:
			t.Fatalf("agent exited: %v\n%s", err, tb.Tail(stderr.String(), 4000))
		default:
		}
	}}
}
