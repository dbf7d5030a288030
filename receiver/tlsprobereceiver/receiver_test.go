package tlsprobereceiver

import (
	"context"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

type labFixture struct {
	lab   *faultlab.Lab
	files faultlab.Files
}

func startLab(t *testing.T) labFixture {
	t.Helper()
	lab, err := faultlab.Start()
	require.NoError(t, err)
	t.Cleanup(lab.Close)
	files, err := lab.WriteFiles(t.TempDir())
	require.NoError(t, err)
	return labFixture{lab: lab, files: files}
}

func labConfig(f labFixture) *Config {
	cfg := createDefaultConfig()
	cfg.CollectionInterval = 2 * time.Second
	cfg.Timeout = 1500 * time.Millisecond
	cfg.OCSP.Timeout = 400 * time.Millisecond
	cfg.Vantage = "test-vantage"
	cfg.AllowPrivateFetchNetworks = []string{"127.0.0.0/8"} // the lab's OCSP, CRL and AIA server
	cfg.TargetsFile = f.files.TargetsFile
	cfg.TargetsFileCheckInterval = 100 * time.Millisecond
	mtls := configtls.NewDefaultClientConfig()
	mtls.CertFile, mtls.KeyFile = f.files.ClientCert, f.files.ClientKey
	cfg.ClientProfiles = map[string]ProfileConfig{faultlab.MTLSProfile: {ClientConfig: mtls}}
	return cfg
}

func startReceiver(t *testing.T, cfg *Config) (*consumertest.LogsSink, *consumertest.MetricsSink, func()) {
	t.Helper()
	return startReceiverWith(t, cfg, nil)
}

// labProfile trusts the lab's roots.
func labProfile(f labFixture) configtls.ClientConfig {
	c := configtls.NewDefaultClientConfig()
	c.CAFile = f.files.Roots
	return c
}

// startReceiverWith lets the test change the receiver before it starts
// (prep may be nil).
func startReceiverWith(t *testing.T, cfg *Config, prep func(*tlsProbeReceiver)) (*consumertest.LogsSink, *consumertest.MetricsSink, func()) {
	t.Helper()
	require.NoError(t, cfg.Validate())
	logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	lr, err := f.CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, metrics)
	require.NoError(t, err)
	require.Same(t, lr, mr, "logs and metrics share one prober")
	if prep != nil {
		prep(lr.(*tlsProbeReceiver))
	}
	require.NoError(t, lr.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, mr.Start(context.Background(), componenttest.NewNopHost()))
	stop := func() {
		require.NoError(t, lr.Shutdown(context.Background()))
		require.NoError(t, mr.Shutdown(context.Background()))
	}
	return logs, metrics, stop
}

// latestByServer returns the latest probe record per server.address.
func latestByServer(sink *consumertest.LogsSink) map[string]plog.LogRecord {
	out := map[string]plog.LogRecord{}
	for _, ld := range sink.AllLogs() {
		rls := ld.ResourceLogs()
		for i := 0; i < rls.Len(); i++ {
			sls := rls.At(i).ScopeLogs()
			for j := 0; j < sls.Len(); j++ {
				lrs := sls.At(j).LogRecords()
				for k := 0; k < lrs.Len(); k++ {
					lr := lrs.At(k)
					if lr.EventName() != attrs.EventProbeResult {
						continue // file results (the mTLS profile's own certificate)
					}
					if _, node := lr.Attributes().Get(attrs.EdgeNode); node {
						continue // the lab's node groups (TestLabNodeGroups)
					}
					addr, _ := lr.Attributes().Get(attrs.ServerAddress)
					out[addr.Str()] = lr
				}
			}
		}
	}
	return out
}

func TestReceiverAgainstLab(t *testing.T) {
	f := startLab(t)
	logs, metrics, stop := startReceiver(t, labConfig(f))
	defer stop()

	require.Eventually(t, func() bool {
		return len(latestByServer(logs)) == len(f.lab.Endpoints)
	}, 15*time.Second, 50*time.Millisecond, "every lab endpoint probed")

	recs := latestByServer(logs)
	for _, ep := range f.lab.Endpoints {
		lr := recs[ep.ServerName]
		reason, ok := lr.Attributes().Get(attrs.ReasonKey)
		require.True(t, ok, ep.Name)
		assert.Equal(t, string(ep.Want), reason.Str(), "%s: %s", ep.Name, lr.Body().Str())
		assert.Equal(t, attrs.EventProbeResult, lr.EventName())
		port, _ := lr.Attributes().Get(attrs.ServerPort)
		assert.Equal(t, pcommon.ValueTypeInt, port.Type())
		assert.NotEmpty(t, lr.Body().Str())
		if ep.Want == attrs.ReasonOK {
			reasons, _ := lr.Attributes().Get(attrs.ReasonsKey)
			assert.Equal(t, 0, reasons.Slice().Len(), "%s: false reasons %v", ep.Name, reasons.AsRaw())
			assert.Equal(t, plog.SeverityNumberInfo, lr.SeverityNumber())
		}
	}
	// Which client families fail (internal/clients' presets): a chain
	// only Chromium completes by AIA, a fault every client sees, a
	// revocation no default client checks, a healthy endpoint.
	for name, want := range map[string]string{
		"missing-intermediate": "openssl,python,node,gnutls,go,java",
		"expired-leaf":         "openssl,python,node,gnutls,chrome,go,java",
		"sha1-signature":       "openssl,python,node,gnutls,chrome,go",
		"revoked":              "",
		"healthy":              "",
	} {
		ep, ok := f.lab.Endpoint(name)
		require.True(t, ok, name)
		lr := recs[ep.ServerName]
		got, _ := lr.Attributes().Get(attrs.ClientsFailing)
		assert.Equal(t, want, got.Str(), "%s: %s", name, lr.Body().Str())
	}
	mi, _ := f.lab.Endpoint("missing-intermediate")
	assert.Contains(t, recs[mi.ServerName].Body().Str(), "; clients failing: openssl, python, node, gnutls, go, java; connecting: chrome")

	// Routing keys are on the resource (of a probe result; the mTLS
	// profile's own certificate is reported as a file result).
	var rl plog.ResourceLogs
	for _, ld := range logs.AllLogs() {
		if r := ld.ResourceLogs().At(0); r.ScopeLogs().At(0).LogRecords().At(0).EventName() == attrs.EventProbeResult {
			rl = r
			break
		}
	}
	v, _ := rl.Resource().Attributes().Get(attrs.Vantage)
	assert.Equal(t, "test-vantage", v.Str())
	o, _ := rl.Resource().Attributes().Get(attrs.Owner)
	assert.Equal(t, "team-lab", o.Str())

	// Expiry is reported for an expired leaf and for every chain member
	// of a chain that fails validation.
	timeLeft := map[string][]float64{}
	require.Eventually(t, func() bool { return metrics.DataPointCount() > 0 }, 5*time.Second, 50*time.Millisecond)
	for _, md := range metrics.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			addr, _ := rm.Resource().Attributes().Get(attrs.ServerAddress)
			ms := rm.ScopeMetrics().At(0).Metrics()
			for m := 0; m < ms.Len(); m++ {
				if ms.At(m).Name() != "tlsprobe.cert.time_left" {
					continue
				}
				dps := ms.At(m).Gauge().DataPoints()
				var vals []float64
				for d := 0; d < dps.Len(); d++ {
					vals = append(vals, dps.At(d).DoubleValue())
				}
				timeLeft[addr.Str()] = vals
			}
		}
	}
	exp, _ := f.lab.Endpoint("expired-leaf")
	require.NotEmpty(t, timeLeft[exp.ServerName], "expired leaf still has time_left")
	assert.Less(t, timeLeft[exp.ServerName][0], 0.0)
	ei, _ := f.lab.Endpoint("expired-intermediate")
	require.Len(t, timeLeft[ei.ServerName], 2)
	assert.Less(t, timeLeft[ei.ServerName][1], 0.0)
	uc, _ := f.lab.Endpoint("unknown-ca")
	assert.Len(t, timeLeft[uc.ServerName], 2)
}

func TestTargetsFileReload(t *testing.T) {
	f := startLab(t)
	healthy, _ := f.lab.Endpoint("healthy")
	expired, _ := f.lab.Endpoint("expired-leaf")
	dir := t.TempDir()
	path := filepath.Join(dir, "targets.yaml")
	write := func(s string) {
		tmp := path + ".tmp"
		require.NoError(t, os.WriteFile(tmp, []byte(s), 0o600))
		require.NoError(t, os.Rename(tmp, path))
	}
	target := func(ep faultlab.Endpoint) string {
		return "  - endpoint: " + ep.Address + "\n    server_name: " + ep.ServerName + "\n    ca_file: " + f.files.Roots + "\n"
	}
	write("targets:\n" + target(healthy))
	cfg := labConfig(f)
	cfg.CollectionInterval, cfg.Timeout, cfg.OCSP.Timeout = 300*time.Millisecond, 250*time.Millisecond, 100*time.Millisecond
	cfg.TargetsFile = path
	cfg.ClientProfiles = nil
	logs, _, stop := startReceiver(t, cfg)
	defer stop()
	require.Eventually(t, func() bool { return probeCount(logs, healthy.ServerName) > 0 }, 10*time.Second, 20*time.Millisecond)

	// A broken file keeps the previous targets in force: the healthy
	// target goes on being probed, nothing else is.
	write("targets:\n  - endpoint: [oops\n")
	time.Sleep(300 * time.Millisecond)
	before := probeCount(logs, healthy.ServerName)
	write("targets:\n  - endpoint: nohostport\n")
	require.Eventually(t, func() bool { return probeCount(logs, healthy.ServerName) >= before+3 }, 10*time.Second, 20*time.Millisecond,
		"the previous targets stay in force while the file is broken")
	assert.Equal(t, 0, probeCount(logs, "nohostport"))
	// A good file swaps the set: the new target is probed, and a target
	// the file drops stops being probed.
	write("targets:\n" + target(expired))
	require.Eventually(t, func() bool { return probeCount(logs, expired.ServerName) > 0 }, 10*time.Second, 20*time.Millisecond)
	time.Sleep(400 * time.Millisecond) // a probe in flight at the swap may still report
	dropped := probeCount(logs, healthy.ServerName)
	time.Sleep(time.Second) // more than three intervals
	assert.Equal(t, dropped, probeCount(logs, healthy.ServerName), "a target removed from the file is no longer probed")
}

// probeCount counts the probe results for server so far.
func probeCount(sink *consumertest.LogsSink, server string) int {
	n := 0
	for _, ld := range sink.AllLogs() {
		for _, r := range logtest.Named(logtest.Records(ld), attrs.EventProbeResult) {
			if r.Attr(attrs.ServerAddress) == server {
				n++
			}
		}
	}
	return n
}

func TestStartFailsOnBadTargetsFile(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "targets.yaml")
	require.NoError(t, os.WriteFile(path, []byte("targets:\n  - endpoint: a.example.com:443\n    criticality: urgent\n"), 0o600))
	cfg := createDefaultConfig()
	cfg.TargetsFile = path
	r, err := NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	err = r.Start(context.Background(), componenttest.NewNopHost())
	require.Error(t, err)
	assert.Contains(t, err.Error(), `criticality "urgent"`)
	require.NoError(t, r.Shutdown(context.Background()))

	cfg.TargetsFile = filepath.Join(dir, "missing.yaml")
	r, err = NewFactory().CreateLogs(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, consumertest.NewNop())
	require.NoError(t, err)
	require.Error(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.NoError(t, r.Shutdown(context.Background()))
}

// TestRefusingConsumer: a pipeline that refuses never stalls probing.
func TestRefusingConsumer(t *testing.T) {
	f := startLab(t)
	cfg := labConfig(f)
	healthy, _ := f.lab.Endpoint("healthy")
	cfg.TargetsFile = ""
	cfg.Endpoint, cfg.ServerName, cfg.CAFile = healthy.Address, healthy.ServerName, f.files.Roots
	cfg.CollectionInterval = 200 * time.Millisecond
	cfg.Timeout = 150 * time.Millisecond
	cfg.OCSP.Timeout = 100 * time.Millisecond
	sink := &countingErrSink{}
	r, err := NewFactory().CreateMetrics(context.Background(), receivertest.NewNopSettings(metadata.Type), cfg, sink)
	require.NoError(t, err)
	require.NoError(t, r.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool { return sink.calls.Load() >= 3 }, 10*time.Second, 20*time.Millisecond)
	require.NoError(t, r.Shutdown(context.Background()))
}

var _ receiver.Metrics = (*tlsProbeReceiver)(nil)

// TestInfoAndStatusMetrics: the dashboard's TLS mix and revocation panels
// come from labelled gauges: tls.info (version, cipher, group), ocsp.status
// and crl.status, per endpoint.
func TestInfoAndStatusMetrics(t *testing.T) {
	f := startLab(t)
	_, metrics, stop := startReceiver(t, labConfig(f))
	defer stop()
	healthy, _ := f.lab.Endpoint("healthy")
	revoked, _ := f.lab.Endpoint("revoked")
	rsaKex, _ := f.lab.Endpoint("rsa-kex-only")
	labels := func(server, metric string) []map[string]any {
		var out []map[string]any
		for _, md := range metrics.AllMetrics() {
			for i := 0; i < md.ResourceMetrics().Len(); i++ {
				rm := md.ResourceMetrics().At(i)
				if a, _ := rm.Resource().Attributes().Get(attrs.ServerAddress); a.Str() != server {
					continue
				}
				ms := rm.ScopeMetrics().At(0).Metrics()
				for m := 0; m < ms.Len(); m++ {
					if ms.At(m).Name() == metric {
						dps := ms.At(m).Gauge().DataPoints()
						for d := 0; d < dps.Len(); d++ {
							out = append(out, dps.At(d).Attributes().AsRaw())
						}
					}
				}
			}
		}
		return out
	}
	require.Eventually(t, func() bool {
		return len(labels(healthy.ServerName, "tlsprobe.tls.info")) > 0 && len(labels(revoked.ServerName, "tlsprobe.ocsp.status")) > 0
	}, 15*time.Second, 50*time.Millisecond)
	info := labels(healthy.ServerName, "tlsprobe.tls.info")[0]
	assert.Equal(t, "1.3", info["tls.protocol.version"])
	assert.Equal(t, "TLS_AES_128_GCM_SHA256", info["tls.cipher"])
	assert.Contains(t, []any{"X25519MLKEM768", "X25519"}, info["tls.curve"])
	assert.Equal(t, "good", labels(healthy.ServerName, "tlsprobe.ocsp.status")[0]["certpulse.ocsp.status"])
	assert.Equal(t, "good", labels(healthy.ServerName, "tlsprobe.crl.status")[0]["certpulse.crl.status"])
	assert.Equal(t, "revoked", labels(revoked.ServerName, "tlsprobe.ocsp.status")[0]["certpulse.ocsp.status"])
	assert.Empty(t, labels(rsaKex.ServerName, "tlsprobe.tls.info"), "no handshake under the default profile: no tls.info")
}
