package remediationexporter

import (
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/confighttp"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
)

// TestAlertmanagerFiresAndResolves posts to a real Alertmanager: the alert
// carries the incident's routing keys, follows a tier change, and resolves.
func TestAlertmanagerFiresAndResolves(t *testing.T) {
	base := proxytest.StartAlertmanager(t)
	cfg := testConfig(PolicyConfig{Name: "page", Actions: []ActionConfig{{Name: "am", Type: "alertmanager", ClientConfig: confighttp.ClientConfig{Endpoint: base}, Labels: map[string]string{"team_channel": "#pay"}}}})
	e := startExporter(t, cfg, nopHost())

	inc := incident("inc-1", attrs.StateOpened, attrs.SeverityAlert)
	inc.Region = "eu-west"
	e.send(t, inc)
	var firing []proxytest.Alert
	require.Eventually(t, func() bool { firing = proxytest.Alerts(t, base); return len(firing) == 1 }, 10*time.Second, 50*time.Millisecond)
	assert.Equal(t, map[string]string{"alertname": "CertpulseIncident", "incident_id": "inc-1", "service": "payments", "severity": "alert",
		"reason": "expired_leaf", "environment": "prod", "owner": "team-pay", "region": "eu-west", "team_channel": "#pay"}, firing[0].Labels)
	assert.Equal(t, "active", firing[0].Status.State)
	assert.True(t, firing[0].EndsAt.After(time.Now().Add(time.Hour)), "does not auto-resolve after resolve_timeout")

	// Escalation: the alert-tier alert resolves, a page-tier one fires.
	inc.State, inc.Severity = attrs.StateEscalated, attrs.SeverityPage
	e.send(t, inc)
	require.Eventually(t, func() bool {
		var sev []string
		for _, a := range proxytest.Alerts(t, base) {
			if a.EndsAt.After(time.Now()) {
				sev = append(sev, a.Labels["severity"])
			}
		}
		return len(sev) == 1 && sev[0] == "page"
	}, 10*time.Second, 50*time.Millisecond)

	inc.State = attrs.StateResolved
	e.send(t, inc)
	require.Eventually(t, func() bool {
		for _, a := range proxytest.Alerts(t, base) {
			if a.Status.State == "active" && a.EndsAt.After(time.Now()) {
				return false
			}
		}
		return true
	}, 10*time.Second, 50*time.Millisecond, "resolved in Alertmanager")
}
