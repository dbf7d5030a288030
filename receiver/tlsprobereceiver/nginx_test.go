package tlsprobereceiver

import (
	"crypto/rand"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// edgeName is the name the nginx "edge nodes" serve.
const edgeName = "edge." + faultlab.Domain

// nginxEdge is a real nginx standing for the edge nodes of one name on
// 127.0.0.2-4 (one port per scenario), with the lab's PKI.
type nginxEdge struct {
	lab                          labFixture
	ticketPort, lagPort, hrrPort int
}

func startNginxEdge(t *testing.T) nginxEdge {
	f := startLab(t)
	dir := t.TempDir()
	write := func(name string, data []byte) string {
		p := filepath.Join(dir, name)
		require.NoError(t, os.WriteFile(p, data, 0o600))
		return p
	}
	leaf := func(name string, age time.Duration) (string, string) {
		c, err := f.lab.IssueLeaf([]string{edgeName}, time.Now().Add(-age), time.Now().Add(90*24*time.Hour-age), false)
		require.NoError(t, err)
		key, err := faultlab.KeyPEM(c.Key)
		require.NoError(t, err)
		return write(name+".crt", faultlab.PEM(c.Cert, f.lab.Inter.Cert)), write(name+".key", key)
	}
	newCrt, newKey := leaf("new", time.Hour)
	oldCrt, oldKey := leaf("old", 20*24*time.Hour)
	ticket := func(name string) string {
		b := make([]byte, 80)
		_, _ = rand.Read(b)
		return write(name, b)
	}
	k1, k2 := ticket("k1.key"), ticket("k2.key")
	e := nginxEdge{lab: f, ticketPort: tb.FreePort(t), lagPort: tb.FreePort(t), hrrPort: tb.FreePort(t)}
	var b strings.Builder
	block := func(ip string, port int, crt, key, tk, extra string) {
		fmt.Fprintf(&b, "  server { listen %s:%d ssl; server_name %s; ssl_certificate %s; ssl_certificate_key %s; ssl_protocols TLSv1.2 TLSv1.3; ssl_session_ticket_key %s; %s return 200 ok; }\n", ip, port, edgeName, crt, key, tk, extra)
	}
	// Ticket keys: .2 and .3 share one, .4 has its own.
	block("127.0.0.2", e.ticketPort, newCrt, newKey, k1, "")
	block("127.0.0.3", e.ticketPort, newCrt, newKey, k1, "")
	block("127.0.0.4", e.ticketPort, newCrt, newKey, k2, "")
	// A renewal that has not reached .4: it still serves the old leaf.
	block("127.0.0.2", e.lagPort, newCrt, newKey, k1, "")
	block("127.0.0.3", e.lagPort, newCrt, newKey, k1, "")
	block("127.0.0.4", e.lagPort, oldCrt, oldKey, k1, "")
	// P-384 only: Go's default key shares (X25519MLKEM768, X25519) get a
	// HelloRetryRequest.
	block("127.0.0.2", e.hrrPort, newCrt, newKey, k1, "ssl_ecdh_curve secp384r1;")
	var listen []string
	for _, p := range []int{e.ticketPort, e.lagPort} {
		for _, ip := range []string{"127.0.0.2", "127.0.0.3", "127.0.0.4"} {
			listen = append(listen, fmt.Sprintf("%s:%d", ip, p))
		}
	}
	proxytest.StartNginx(t, b.String(), append(listen, fmt.Sprintf("127.0.0.2:%d", e.hrrPort))...)
	return e
}

// nodeRecords returns the latest probe record per certpulse.edge.node of
// the target on port.
func nodeRecords(sink *consumertest.LogsSink, port int) map[string]plog.LogRecord {
	out := map[string]plog.LogRecord{}
	for _, ld := range sink.AllLogs() {
		for i := 0; i < ld.ResourceLogs().Len(); i++ {
			sls := ld.ResourceLogs().At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					p, _ := lr.Attributes().Get(attrs.ServerPort)
					node, ok := lr.Attributes().Get(attrs.EdgeNode)
					if ok && p.Int() == int64(port) {
						out[node.Str()] = lr
					}
				}
			}
		}
	}
	return out
}

func attr(lr plog.LogRecord, k string) string {
	if v, ok := lr.Attributes().Get(k); ok {
		return v.AsString()
	}
	return ""
}

// TestNodesAgainstNginx: every node behind a name, against real nginx.
func TestNodesAgainstNginx(t *testing.T) {
	e := startNginxEdge(t)
	cfg := labConfig(e.lab)
	cfg.TargetsFile = ""
	cfg.CollectionInterval = 3 * time.Second
	nodes := func(port int) []string {
		return []string{fmt.Sprintf("127.0.0.2:%d", port), fmt.Sprintf("127.0.0.3:%d", port), fmt.Sprintf("127.0.0.4:%d", port)}
	}
	cfg.ClientProfiles = map[string]ProfileConfig{"lab": {ClientConfig: labProfile(e.lab)}}
	cfg.Targets = []TargetConfig{
		{Endpoint: fmt.Sprintf("%s:%d", edgeName, e.ticketPort), Service: "edge-tickets", Profiles: []string{"lab"}, Nodes: nodes(e.ticketPort)},
		{Endpoint: fmt.Sprintf("%s:%d", edgeName, e.lagPort), Service: "edge-lag", Profiles: []string{"lab"}, Nodes: nodes(e.lagPort)},
		{Endpoint: fmt.Sprintf("127.0.0.2:%d", e.hrrPort), ServerName: edgeName, Service: "edge-hrr", Profiles: []string{"lab"}},
	}
	logs, _, stop := startReceiver(t, cfg)
	defer stop()
	require.Eventually(t, func() bool {
		return len(nodeRecords(logs, e.ticketPort)) == 3 && len(nodeRecords(logs, e.lagPort)) == 3 && len(latestByServer(logs)) > 0
	}, 20*time.Second, 50*time.Millisecond)

	// Ticket keys: .4 refuses sessions .3 issued while .2 and .3 resume
	// each other's; .2 refuses .4's sessions but is not blamed.
	recs := nodeRecords(logs, e.ticketPort)
	for node, want := range map[string]string{"127.0.0.2": resumptionOK, "127.0.0.3": resumptionOK, "127.0.0.4": resumptionFailed} {
		lr := recs[fmt.Sprintf("%s:%d", node, e.ticketPort)]
		require.Equal(t, want, attr(lr, attrs.ResumptionResult), "%s: %s", node, lr.Body().Str())
		require.Equal(t, "true", attr(lr, attrs.NodesConsistent))
		if want == resumptionFailed {
			require.Equal(t, string(attrs.ReasonResumptionFailed), attr(lr, attrs.ReasonKey))
			require.Contains(t, lr.Body().Str(), "refuses sessions 127.0.0.3")
			require.Equal(t, "server", attr(lr, attrs.ReasonSideKey))
		} else {
			require.Equal(t, "ok", attr(lr, attrs.ReasonKey), lr.Body().Str())
		}
		require.Equal(t, "false", attr(lr, attrs.TLSResumed), "ordinary probes never resume")
	}

	// Propagation lag: .4 serves the previous leaf; it is named, not
	// blamed for refusing sessions across certificates.
	recs = nodeRecords(logs, e.lagPort)
	lag := recs[fmt.Sprintf("127.0.0.4:%d", e.lagPort)]
	require.Equal(t, "false", attr(lag, attrs.NodesConsistent))
	require.Equal(t, "true", attr(lag, attrs.NodesLagging), lag.Body().Str())
	require.Equal(t, `["chain"]`, attr(lag, attrs.NodesDiffers))
	require.Equal(t, resumptionNotChecked, attr(lag, attrs.ResumptionResult))
	require.Equal(t, "ok", attr(lag, attrs.ReasonKey))
	require.Contains(t, lag.Body().Str(), "propagation lag")
	good := recs[fmt.Sprintf("127.0.0.2:%d", e.lagPort)]
	require.Equal(t, attr(good, attrs.ChainSHA256), attr(lag, attrs.NodesReferenceChain))
	require.Equal(t, resumptionOK, attr(good, attrs.ResumptionResult), good.Body().Str())
	require.Contains(t, good.Body().Str(), fmt.Sprintf("nodes that differ: 127.0.0.4:%d (chain)", e.lagPort))

	// HelloRetryRequest: nginx with P-384 only.
	var hrr plog.LogRecord
	require.Eventually(t, func() bool {
		for _, lr := range latestByServer(logs) {
			if p, _ := lr.Attributes().Get(attrs.ServerPort); p.Int() == int64(e.hrrPort) {
				hrr = lr
				return true
			}
		}
		return false
	}, 10*time.Second, 50*time.Millisecond)
	require.Equal(t, "true", attr(hrr, attrs.HelloRetry), hrr.Body().Str())
	require.Equal(t, "P384", attr(hrr, attrs.TLSCurve))
}

// TestNodesAllResolves: `nodes: all` probes every address the name
// resolves to (a DNS server of the test's own answers with three).
func TestNodesAllResolves(t *testing.T) {
	e := startNginxEdge(t)
	dns := proxytest.StartDNS(t, map[string][]netip.Addr{edgeName: {netip.MustParseAddr("127.0.0.4"), netip.MustParseAddr("127.0.0.2"), netip.MustParseAddr("127.0.0.3")}})
	cfg := labConfig(e.lab)
	cfg.TargetsFile = ""
	cfg.ClientProfiles = map[string]ProfileConfig{"lab": {ClientConfig: labProfile(e.lab)}}
	every := 0
	cfg.Targets = []TargetConfig{{Endpoint: fmt.Sprintf("%s:%d", edgeName, e.lagPort), Profiles: []string{"lab"}, Nodes: []string{"all"}, MaxNodes: 2, Resumption: ResumptionConfig{Every: &every}}}
	require.NoError(t, cfg.Validate())
	logs, _, stop := startReceiverWith(t, cfg, func(r *tlsProbeReceiver) { r.resolver = dns.Resolver() })
	defer stop()
	require.Eventually(t, func() bool { return len(nodeRecords(logs, e.lagPort)) == 2 }, 10*time.Second, 50*time.Millisecond)
	recs := nodeRecords(logs, e.lagPort)
	for _, n := range []string{"127.0.0.2", "127.0.0.3"} { // the first max_nodes in address order
		lr, ok := recs[fmt.Sprintf("%s:%d", n, e.lagPort)]
		require.True(t, ok, "%v", recs)
		require.Equal(t, "2", attr(lr, attrs.NodesCount))
		require.Equal(t, resumptionNotChecked, attr(lr, attrs.ResumptionResult))
	}
}

// TestLabNodeGroups: the fault lab's node groups (Go servers sharing, or
// not, session ticket keys; one node on the previous certificate), as
// `make run` shows them.
func TestLabNodeGroups(t *testing.T) {
	f := startLab(t)
	logs, _, stop := startReceiver(t, labConfig(f))
	defer stop()
	byNode := func() map[string]plog.LogRecord { return nodeRecords(logs, 443) }
	total := 0
	for _, g := range f.lab.NodeGroups {
		total += len(g.Nodes)
	}
	require.Eventually(t, func() bool { return len(byNode()) == total }, 15*time.Second, 50*time.Millisecond)
	recs := byNode()
	for _, g := range f.lab.NodeGroups {
		for i, n := range g.Nodes {
			lr := recs[n]
			require.Equal(t, string(g.Want[i]), attr(lr, attrs.ReasonKey), "%s node %d: %s", g.Name, i, lr.Body().Str())
			require.Equal(t, g.Lagging[i], attr(lr, attrs.NodesLagging) == "true", "%s node %d: %s", g.Name, i, lr.Body().Str())
		}
	}
}
