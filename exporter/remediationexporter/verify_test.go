package remediationexporter

import (
	"strings"
	"testing"

	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
)

// TestVerifyFirstAgainstLab re-probes real lab endpoints: an expired leaf
// reproduces and the action runs with the evidence; a healthy endpoint does
// not, and nothing is called.
func TestVerifyFirstAgainstLab(t *testing.T) {
	lab, err := faultlab.Start()
	require.NoError(t, err)
	t.Cleanup(lab.Close)
	files, err := lab.WriteFiles(t.TempDir())
	require.NoError(t, err)

	hook := newHookServer(t)
	p := webhookPolicy("reload", hook.URL, "reload")
	p.Verify = nil // default: verify first
	cfg := testConfig(p)
	cfg.Verify.TLS.CAFile = files.Roots
	cfg.Verify.AllowPrivateFetchNetworks = []string{"127.0.0.0/8"}
	audit := auditSink(t, cfg)
	e := startExporter(t, cfg, nopHost())

	target := func(name string) string {
		ep, ok := lab.Endpoint(name)
		require.True(t, ok, name)
		return ep.ServerName + "@" + ep.Address
	}
	bad := incident("inc-expired", attrs.StateOpened, attrs.SeverityPage)
	bad.Targets = []string{target("expired-leaf")}
	e.send(t, bad)
	require.Equal(t, []string{"inc-expired:reload:1"}, hook.calls())

	good := incident("inc-healthy", attrs.StateOpened, attrs.SeverityPage)
	good.Targets = []string{target("healthy")}
	e.send(t, good)
	assert.Len(t, hook.calls(), 1, "does not reproduce: nothing called")

	assert.Equal(t, []string{"matched", "verified", "sent", "matched", "not_reproduced"}, decisions(audit))
	ev := evidence(audit)
	require.Len(t, ev, 2)
	assert.Contains(t, ev[0], "expired_leaf")
	assert.Contains(t, ev[1], "ok")
}

// evidence returns the audit messages that carry evidence.
func evidence(sink *consumertest.LogsSink) []string {
	var out []string
	for _, m := range auditMessages(sink) {
		if strings.Contains(m, "evidence:") {
			out = append(out, m)
		}
	}
	return out
}

// auditMessages returns the bodies of the audit events, in order.
func auditMessages(sink *consumertest.LogsSink) []string {
	var out []string
	for _, lr := range auditRecords(sink) {
		out = append(out, lr.Body().AsString())
	}
	return out
}
