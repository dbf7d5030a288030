package gateway

import (
	"fmt"
	"net/http"
	"path/filepath"
	"sort"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// TestAgentKillLosesNoAcceptedEvent: lifecycle events are posted to an
// agent (the shipped agent.yaml, persistent sending queue) at a steady
// rate; the agent is killed with SIGKILL and started again on the same
// state directory. Every event it answered 2xx must reach Kafka.
func TestAgentKillLosesNoAcceptedEvent(t *testing.T) {
	bin := binary(t)
	dir := t.TempDir()
	kport := tb.FreePort(t)
	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.Ports(kport), kfake.SeedTopics(partitions, topic, auditTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	broker := fmt.Sprintf("127.0.0.1:%d", kport)
	targets := write(t, dir, "targets.yaml", "targets: []\n")
	override := write(t, dir, "agent-override.yaml", fmt.Sprintf(`receivers:
  tlsprobe:
    targets_file: %s
service:
  telemetry:
    metrics:
      level: none
`, targets))
	const ip = "127.0.0.31"
	env := []string{"POD_IP=" + ip, "NODE_NAME=agent-kill", "CERTPULSE_STATE_DIR=" + filepath.Join(dir, "state"), "KAFKA_BROKERS=" + broker,
		"CERTPULSE_WEBHOOK_TOKEN=" + token, "CERTPULSE_WEBHOOK_HMAC=" + hmacSecret, "MIMIR_URL=http://127.0.0.1:1", "MIMIR_TENANT=certpulse"}
	shipped, _ := filepath.Abs(filepath.Join("..", "..", "distributions", "otelcol-certpulse", "agent.yaml"))
	agent := start(t, bin, "agent", env, shipped, override)
	healthy(t, "http://"+ip+":13133/")

	var mu sync.Mutex
	accepted := map[string]bool{}
	refused := map[int]int{}
	posted := 0
	stop := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		client := &http.Client{Timeout: 2 * time.Second}
		tick := time.NewTicker(10 * time.Millisecond) // 100 events/s
		defer tick.Stop()
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			case <-tick.C:
			}
			id := fmt.Sprintf("kill-%05d", i)
			st := postEvent(client, "http://"+ip+":4380/v1/lifecycle", id, "svc-"+fmt.Sprint(i%7))
			mu.Lock()
			posted++
			if st/100 == 2 {
				accepted["event:gateway-test/"+id] = true
			} else {
				refused[st]++
			}
			mu.Unlock()
		}
	}()
	time.Sleep(5 * time.Second)
	if err := agent.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-agent.exited
	killed := time.Now()
	agent = start(t, bin, "agent", env, shipped, override)
	healthy(t, "http://"+ip+":13133/")
	t.Logf("agent back %.1fs after SIGKILL", time.Since(killed).Seconds())
	time.Sleep(5 * time.Second)
	close(stop)
	<-done
	time.Sleep(5 * time.Second) // the queue drains to Kafka
	_ = agent.cmd.Process.Signal(syscall.SIGTERM)
	<-agent.exited

	got := published(t, broker)
	var lost []string
	for id := range accepted {
		if !got[id] {
			lost = append(lost, id)
		}
	}
	sort.Strings(lost)
	t.Logf("events: %d posted, %d answered 2xx, refused by status %v (0: agent down); in Kafka: %d; lost: %d", posted, len(accepted), refused, len(got), len(lost))
	if len(lost) > 0 {
		t.Errorf("%d events answered 2xx are not in Kafka, e.g. %v", len(lost), lost[:min(10, len(lost))])
	}
}
