// Package gateway runs the gateway tier for real: two agents (the shipped
// agent.yaml) publish to a Kafka protocol broker (franz-go's kfake, on
// 127.0.0.1), two gateways (the shipped gateway.yaml) consume in one
// consumer group, correlate and remediate; one gateway is killed with
// SIGKILL halfway. Nothing accepted by an agent may be lost, and no
// remediation webhook may be called twice with one idempotency key.
package gateway

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

const (
	topic      = "certpulse-logs"
	auditTopic = "certpulse-audit"
	partitions = 6
	token      = "gateway-test-token"
	hmacSecret = "gateway-test-hmac-0123456789"
	actionHMAC = "gateway-test-action-0123456789"
)

func binary(t *testing.T) string {
	bin := tb.Env(t, "reliability", "CERTPULSE_BIN")[0]
	return bin
}

// hooks is the remediation webhook receiver: calls by idempotency key and
// by the gateway that made them.
type hooks struct {
	mu    sync.Mutex
	byKey map[string][]string // key -> gateways
}

func (h *hooks) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	h.mu.Lock()
	k := r.Header.Get("Idempotency-Key")
	h.byKey[k] = append(h.byKey[k], strings.Trim(r.URL.Path, "/"))
	h.mu.Unlock()
	w.WriteHeader(http.StatusNoContent)
}

func (h *hooks) snapshot() map[string][]string {
	h.mu.Lock()
	defer h.mu.Unlock()
	out := map[string][]string{}
	for k, v := range h.byKey {
		out[k] = append([]string(nil), v...)
	}
	return out
}

// proc is one collector process.
type proc struct {
	name   string
	cmd    *exec.Cmd
	exited <-chan error
	stderr *bytes.Buffer
}

func start(t *testing.T, bin, name string, env []string, configs ...string) *proc {
	t.Helper()
	args := []string{}
	for _, c := range configs {
		args = append(args, "--config", c)
	}
	cmd := exec.Command(bin, args...)
	cmd.Env = append(os.Environ(), env...)
	exited, stderr := tb.Start(t, cmd)
	return &proc{name: name, cmd: cmd, exited: exited, stderr: stderr}
}

func write(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// postEvent posts one signed lifecycle event to an agent; it returns the
// HTTP status (0 when the agent could not be reached).
func postEvent(client *http.Client, url, id, service string) int {
	body, _ := json.Marshal(map[string]any{"type": "validated", "id": id, "service": service, "environment": "lab", "source": "gateway-test"})
	req, err := tb.LifecycleRequest(url, token, hmacSecret, body)
	if err != nil {
		return 0
	}
	resp, err := client.Do(req)
	if err != nil {
		return 0
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode
}

// probeID identifies a probe result: who probed what, under which profile,
// when.
func probeID(r logtest.Record) string {
	return strings.Join([]string{r.Attr(attrs.Vantage), r.Attr(attrs.ServerAddress), r.Attr(attrs.ServerPort), r.Attr(attrs.ClientProfile), r.Attr(attrs.EdgeNode), fmt.Sprint(r.Timestamp())}, "|")
}

// published reads every record the agents published to the topic, by id.
func published(t *testing.T, broker string) map[string]bool {
	t.Helper()
	out := map[string]bool{}
	for _, r := range publishedOn(t, broker, topic) {
		if id := recordID(r); id != "" {
			out[id] = true
		}
	}
	return out
}

// publishedOn reads every record published to topic.
func publishedOn(t *testing.T, broker, topic string) []logtest.Record {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(200*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	var out []logtest.Record
	var u plog.ProtoUnmarshaler
	idle := 0
	for idle < 3 {
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		fs := cl.PollFetches(ctx)
		cancel()
		n := 0
		fs.EachRecord(func(rec *kgo.Record) {
			n++
			ld, err := u.UnmarshalLogs(rec.Value)
			if err != nil {
				t.Errorf("a message on %s is not OTLP logs: %v", topic, err)
				return
			}
			out = append(out, logtest.Records(ld)...)
		})
		if n == 0 {
			idle++
		} else {
			idle = 0
		}
	}
	return out
}

// healthy waits until url (a health_check extension) answers 200.
func healthy(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not healthy within 30s", url)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// groupStable waits until the consumer group has n members and is stable
// (the gateways have split the partitions), so that no rebalance moves a
// service while the test counts incidents.
func groupStable(t *testing.T, broker string, n int) {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(broker))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	deadline := time.Now().Add(60 * time.Second)
	for {
		req := kmsg.NewPtrDescribeGroupsRequest()
		req.Groups = []string{"certpulse-correlator"}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		resp, err := req.RequestWith(ctx, cl)
		cancel()
		if err == nil && len(resp.Groups) == 1 && resp.Groups[0].State == "Stable" && len(resp.Groups[0].Members) == n {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("consumer group not stable with %d members within 60s", n)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// recordID identifies a probe result or a lifecycle event ("" for other
// records).
func recordID(r logtest.Record) string {
	switch {
	case r.EventName() == attrs.EventProbeResult:
		return "probe:" + probeID(r)
	case strings.HasPrefix(r.EventName(), attrs.EventLifecyclePrefix):
		return "event:" + r.Attr(attrs.LifecycleSource) + "/" + r.Attr(attrs.LifecycleEventID)
	}
	return ""
}

func TestGatewayTierSurvivesAGatewayKill(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()

	// The broker.
	kport := tb.FreePort(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kport), kfake.SeedTopics(partitions, topic, auditTopic), kfake.GroupMinSessionTimeout(time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := fmt.Sprintf("127.0.0.1:%d", kport)

	// The lab, Loki's stand-in, the webhook receiver.
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	files, err := lab.WriteFiles(filepath.Join(dir, "lab"))
	if err != nil {
		t.Fatal(err)
	}
	loki := tb.NewLogSink()
	lokiSrv := httptest.NewServer(loki)
	defer lokiSrv.Close()
	hk := &hooks{byKey: map[string][]string{}}
	hookSrv := httptest.NewServer(hk)
	defer hookSrv.Close()

	shipped := func(name string) string {
		p, _ := filepath.Abs(filepath.Join("..", "..", "distributions", "otelcol-certpulse", name))
		return p
	}
	noTelemetry := "service:\n  telemetry:\n    metrics:\n      level: none\n"
	agentOverride := write(t, dir, "agent-override.yaml", fmt.Sprintf(`receivers:
  tlsprobe:
    collection_interval: 3s
    timeout: 2s
    ocsp:
      timeout: 1s
    targets_file: %s
    allow_private_fetch_networks: [127.0.0.0/8]
    client_profiles:
      lab-mtls:
        cert_file: %s
        key_file: %s
%s`, files.TargetsFile, files.ClientCert, files.ClientKey, noTelemetry))
	gatewayOverride := write(t, dir, "gateway-override.yaml", `receivers:
  kafka/logs:
    session_timeout: 3s
    heartbeat_interval: 1s
processors:
  tlscorrelator:
    storage: file_storage
    healthy_results: all          # every probe result passes, so each can be accounted for
exporters:
  remediation:
    dry_run: false
    handover_hold: 4s
    guardrails:
      cooldown: 10m
    policies:
      - name: reload-lab
        reasons: [expired_leaf, expired_intermediate, hostname_mismatch, revoked]
        min_severity: ticket
        environments: [lab]
        actions:
          - name: reload
            type: webhook
            operation: reload
            url: ${env:CERTPULSE_RELOAD_WEBHOOK}
            hmac_secret: ${env:CERTPULSE_ACTION_HMAC}
`+noTelemetry)

	agentIP := []string{"127.0.0.11", "127.0.0.12"}
	gatewayIP := []string{"127.0.0.21", "127.0.0.22"}
	common := []string{"KAFKA_BROKERS=" + broker, "CERTPULSE_WEBHOOK_TOKEN=" + token, "CERTPULSE_WEBHOOK_HMAC=" + hmacSecret,
		"MIMIR_URL=" + lokiSrv.URL + "/mimir", "MIMIR_TENANT=certpulse", "LOKI_TENANT=certpulse"}
	var gateways []*proc
	for i, ip := range gatewayIP {
		name := fmt.Sprintf("gw%d", i+1)
		env := append([]string{"POD_IP=" + ip, "CERTPULSE_STATE_DIR=" + filepath.Join(dir, name), "CERTPULSE_APPROVERS_HTPASSWD=/dev/null",
			"CERTPULSE_VERIFY_CA_FILE=" + files.Roots, "CERTPULSE_RELOAD_WEBHOOK=" + hookSrv.URL + "/" + name, "CERTPULSE_ACTION_HMAC=" + actionHMAC, "CERTPULSE_TRAIL_SECRET=gateway-test-trail-0123456789",
			"ALERTMANAGER_URL=http://127.0.0.1:1", "CERTPULSE_LIFECYCLE_URL=http://" + agentIP[0] + ":4380/v1/lifecycle",
			"LOKI_URL=" + lokiSrv.URL + "/" + name}, common...)
		gateways = append(gateways, start(t, bin, name, env, shipped("gateway.yaml"), gatewayOverride))
	}
	groupStable(t, broker, 2)
	var agents []*proc
	for i, ip := range agentIP {
		name := fmt.Sprintf("agent%d", i+1)
		env := append([]string{"POD_IP=" + ip, "NODE_NAME=" + name, "CERTPULSE_STATE_DIR=" + filepath.Join(dir, name)}, common...)
		agents = append(agents, start(t, bin, name, env, shipped("agent.yaml"), agentOverride))
	}
	alive := func(ps ...*proc) {
		t.Helper()
		for _, p := range ps {
			select {
			case err := <-p.exited:
				t.Fatalf("%s exited: %v\n%s", p.name, err, tb.Tail(p.stderr.String(), 3000))
			default:
			}
		}
	}

	// The agents answer (health check) before events are posted.
	for _, ip := range agentIP {
		healthy(t, "http://"+ip+":13133/")
	}

	// Lifecycle events at a steady rate, alternating agents, until stopped.
	var accepted sync.Map
	var posted int
	refused := map[int]int{} // status -> count
	stopPosting := make(chan struct{})
	postingDone := make(chan struct{})
	go func() {
		defer close(postingDone)
		client := &http.Client{Timeout: 5 * time.Second}
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stopPosting:
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("ev-%05d", i)
			svc := fmt.Sprintf("lab-%s", lab.Endpoints[i%len(lab.Endpoints)].Name)
			posted++
			if st := postEvent(client, "http://"+agentIP[i%2]+":4380/v1/lifecycle", id, svc); st/100 == 2 {
				accepted.Store("event:gateway-test/"+id, true)
			} else {
				refused[st]++
			}
		}
	}()

	// Phase 1: both gateways consume, correlate and act.
	phase1 := time.Now()
	for {
		alive(append(agents, gateways...)...)
		s := loki.ByName()
		calls := hk.snapshot()
		byGW := map[string]int{}
		for _, gws := range calls {
			for _, g := range gws {
				byGW[g]++
			}
		}
		if len(s["gw1"]) > 0 && len(s["gw2"]) > 0 && byGW["gw1"]+byGW["gw2"] > 0 && time.Since(phase1) > 15*time.Second {
			break
		}
		if time.Since(phase1) > 90*time.Second {
			t.Fatalf("phase 1: gateways did not both deliver and act within 90s (records %d/%d, webhook calls %v)", len(s["gw1"]), len(s["gw2"]), byGW)
		}
		time.Sleep(500 * time.Millisecond)
	}
	openedBefore := openedBy(loki.ByName())
	time.Sleep(2 * time.Second) // the audit trail reaches Kafka

	// Kill the gateway that acted (SIGKILL: no shutdown, no final commit).
	victim, survivor := gateways[0], gateways[1]
	callsBefore := hk.snapshot()
	n := map[string]int{}
	for _, gws := range callsBefore {
		for _, g := range gws {
			n[g]++
		}
	}
	if n["gw2"] > n["gw1"] {
		victim, survivor = gateways[1], gateways[0]
	}
	killedAt := time.Now()
	if err := victim.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-victim.exited
	t.Logf("%s (%d webhook calls) killed %.1fs after the records began", victim.name, n[victim.name], killedAt.Sub(phase1).Seconds())

	// Phase 2: the survivor takes over the victim's partitions.
	time.Sleep(20 * time.Second)
	close(stopPosting)
	<-postingDone
	alive(append(agents, survivor)...)
	time.Sleep(5 * time.Second) // the agents' queues drain to Kafka
	// The agents stop (SIGTERM: their queues flush to Kafka), so the topic
	// is complete when it is read.
	for _, a := range agents {
		_ = a.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.exited:
		case <-time.After(30 * time.Second):
			t.Fatalf("%s did not stop within 30s", a.name)
		}
	}

	// Every record the agents published reaches Loki through a gateway.
	want := published(t, broker)
	var lost []string
	deadline := time.Now().Add(60 * time.Second)
	for {
		got := map[string]bool{}
		for _, recs := range loki.ByName() {
			for _, r := range recs {
				if id := recordID(r); id != "" {
					got[id] = true
				}
			}
		}
		lost = lost[:0]
		for id := range want {
			if !got[id] {
				lost = append(lost, id)
			}
		}
		accepted.Range(func(k, _ any) bool {
			if !want[k.(string)] || !got[k.(string)] {
				lost = append(lost, k.(string)+" (accepted by an agent)")
			}
			return true
		})
		if len(lost) == 0 || time.Now().After(deadline) {
			break
		}
		time.Sleep(2 * time.Second)
	}
	sort.Strings(lost)
	nAccepted := 0
	accepted.Range(func(_, _ any) bool { nAccepted++; return true })
	total, dup := deliveries(loki.ByName())
	t.Logf("lifecycle events: %d posted, %d accepted, refused by HTTP status %v; records published to Kafka: %d; delivered to Loki: %d (%d delivered more than once: at-least-once replay after the kill); lost: %d",
		posted, nAccepted, refused, len(want), total, dup, len(lost))
	if len(lost) > 0 {
		t.Errorf("%d records lost, e.g. %v", len(lost), lost[:min(len(lost), 10)])
	}

	// The remediation audit events are on the audit topic too, alone: what
	// a starting gateway reads back (audit_trail) is nothing else.
	remediation := attrs.EventLifecyclePrefix + attrs.LifecycleRemediation
	onMain := 0
	for _, r := range publishedOn(t, cluster.ListenAddrs()[0], topic) {
		if r.EventName() == remediation {
			onMain++
		}
	}
	onAudit := publishedOn(t, cluster.ListenAddrs()[0], auditTopic)
	for _, r := range onAudit {
		if r.EventName() != remediation {
			t.Errorf("%s carries a %s record", auditTopic, r.EventName())
		}
	}
	t.Logf("remediation audit events: %d on %s, %d on %s", onMain, topic, len(onAudit), auditTopic)
	if onMain == 0 || len(onAudit) < onMain {
		t.Errorf("%d remediation events on %s, %d on %s: every one should be on both", onMain, topic, len(onAudit), auditTopic)
	}

	// Before the kill, every incident was opened by one gateway only.
	for id, gws := range openedBefore {
		if len(gws) > 1 {
			t.Errorf("incident %s opened by %v before the kill: the records of a service reached two correlators", id, gws)
		}
	}
	after := openedBy(loki.ByName())
	reannounced := 0
	for _, gws := range after {
		if gws["gw1"] && gws["gw2"] {
			reannounced++
		}
	}
	t.Logf("incidents opened before the kill: %d (each by one gateway); announced again by %s after taking over: %d", len(openedBefore), survivor.name, reannounced)

	// No webhook is called twice with one idempotency key: the survivor
	// read the victim's audit trail from Kafka (remediation audit_trail)
	// and waited handover_hold before acting on the incidents it took over.
	calls := hk.snapshot()
	keys := make([]string, 0, len(calls))
	for k := range calls {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	repeated := 0
	for _, k := range keys {
		gws := calls[k]
		if len(gws) > 1 {
			repeated++
			t.Errorf("webhook called %d times with idempotency key %s (by %v)", len(gws), k, gws)
			id := strings.SplitN(k, ":", 2)[0]
			for gw, recs := range loki.ByName() {
				for _, r := range recs {
					if r.Attr(attrs.LifecycleIncidentID) == id || r.Attr(attrs.IncidentID) == id {
						t.Logf("  %s %s %s %s %s", gw, r.Timestamp().AsTime().Format("15:04:05.000"), r.EventName(), r.Attr(attrs.LifecyclePipelineStage)+r.Attr(attrs.IncidentState), r.Attr(attrs.LifecycleJobID))
					}
				}
			}
		}
	}
	t.Logf("remediation webhook calls: %d keys (%d by the victim before the kill), called more than once: %d", len(keys), len(callsBefore), repeated)
}

// openedBy returns, per incident id, the gateways that announced it opened.
func openedBy(s map[string][]logtest.Record) map[string]map[string]bool {
	out := map[string]map[string]bool{}
	for gw, recs := range s {
		for _, r := range recs {
			if r.EventName() != attrs.EventIncident || attrs.State(r.Attr(attrs.IncidentState)) != attrs.StateOpened {
				continue
			}
			id := r.Attr(attrs.IncidentID)
			if out[id] == nil {
				out[id] = map[string]bool{}
			}
			out[id][gw] = true
		}
	}
	return out
}

// deliveries counts identified records delivered, and those delivered more
// than once.
func deliveries(s map[string][]logtest.Record) (total, dup int) {
	seen := map[string]int{}
	for _, recs := range s {
		for _, r := range recs {
			if id := recordID(r); id != "" {
				seen[id]++
				total++
			}
		}
	}
	for _, n := range seen {
		if n > 1 {
			dup++
		}
	}
	return total, dup
}
