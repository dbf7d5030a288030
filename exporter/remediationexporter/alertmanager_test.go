package remediationexporter

import (
	"context"
	"encoding/json"
	"fmt"
	"go.opentelemetry.io/collector/config/confighttp"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/attrs"
)

// needBinary finds a system binary the test drives; missing, the test is
// skipped locally and fails in CI (CI=true), whose script installs it.
func needBinary(t *testing.T, names ...string) string {
	t.Helper()
	for _, n := range names {
		if p, err := exec.LookPath(n); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatalf("%v not installed (.ci/run installs it)", names)
	}
	t.Skipf("%v not installed; apt-get install it to run this test", names)
	return ""
}

// startAlertmanager runs Debian's prometheus-alertmanager on 127.0.0.1,
// clustering off, and returns its base URL.
func startAlertmanager(t *testing.T) string {
	bin := needBinary(t, "prometheus-alertmanager", "alertmanager")
	dir := t.TempDir()
	conf := filepath.Join(dir, "alertmanager.yml")
	require.NoError(t, os.WriteFile(conf, []byte("route:\n  receiver: blackhole\nreceivers:\n  - name: blackhole\n"), 0o600))
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, bin, "--config.file="+conf, "--storage.path="+dir,
		"--web.listen-address="+addr, "--cluster.listen-address=", "--log.level=warn")
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	require.NoError(t, cmd.Start())
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	base := "http://" + addr
	require.Eventually(t, func() bool {
		res, err := http.Get(base + "/-/ready")
		if err != nil {
			return false
		}
		res.Body.Close()
		return res.StatusCode == http.StatusOK
	}, 20*time.Second, 100*time.Millisecond, "alertmanager did not become ready")
	return base
}

type gotAlert struct {
	Labels map[string]string `json:"labels"`
	Status struct {
		State string `json:"state"`
	} `json:"status"`
	EndsAt time.Time `json:"endsAt"`
}

func amAlerts(t *testing.T, base string) []gotAlert {
	res, err := http.Get(base + "/api/v2/alerts")
	require.NoError(t, err)
	defer res.Body.Close()
	var out []gotAlert
	require.NoError(t, json.NewDecoder(res.Body).Decode(&out))
	return out
}

// TestAlertmanagerFiresAndResolves posts to a real Alertmanager: the alert
// carries the incident's routing keys, follows a tier change, and resolves.
func TestAlertmanagerFiresAndResolves(t *testing.T) {
	base := startAlertmanager(t)
	cfg := testConfig(PolicyConfig{Name: "page", Actions: []ActionConfig{{Name: "am", Type: "alertmanager", ClientConfig: confighttp.ClientConfig{Endpoint: base}, Labels: map[string]string{"team_channel": "#pay"}}}})
	e := startExporter(t, cfg, nopHost())

	inc := incident("inc-1", attrs.StateOpened, attrs.SeverityAlert)
	inc.Region = "eu-west"
	e.send(t, inc)
	var firing []gotAlert
	require.Eventually(t, func() bool { firing = amAlerts(t, base); return len(firing) == 1 }, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, map[string]string{"alertname": "CertpulseIncident", "incident_id": "inc-1", "service": "payments", "severity": "alert",
		"reason": "expired_leaf", "environment": "prod", "owner": "team-pay", "region": "eu-west", "team_channel": "#pay"}, firing[0].Labels)
	assert.Equal(t, "active", firing[0].Status.State)
	assert.True(t, firing[0].EndsAt.After(time.Now().Add(time.Hour)), "does not auto-resolve after resolve_timeout")

	// Escalation: the alert-tier alert resolves, a page-tier one fires.
	inc.State, inc.Severity = attrs.StateEscalated, attrs.SeverityPage
	e.send(t, inc)
	require.Eventually(t, func() bool {
		var sev []string
		for _, a := range amAlerts(t, base) {
			if a.EndsAt.After(time.Now()) {
				sev = append(sev, a.Labels["severity"])
			}
		}
		return len(sev) == 1 && sev[0] == "page"
	}, 10*time.Second, 50*time.Millisecond)

	inc.State = attrs.StateResolved
	e.send(t, inc)
	require.Eventually(t, func() bool {
		for _, a := range amAlerts(t, base) {
			if a.Status.State == "active" && a.EndsAt.After(time.Now()) {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "resolved in Alertmanager")
}
