package tlsprobereceiver

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
)

func TestFilesConfigErrors(t *testing.T) {
	_, err := loadConfig(t, "bad_files")
	require.Error(t, err)
	for _, want := range []string{
		`files[0]: path "/etc/kubernetes/pki/[*.crt" is not a valid glob pattern`,
		`files[1]: path is required`,
		`files[2]: criticality "urgent" must be one of low, medium, high, critical`,
	} {
		assert.Contains(t, err.Error(), want)
	}
}

func TestParseCertFile(t *testing.T) {
	nf, err := faultlab.WriteNodeFiles(t.TempDir())
	require.NoError(t, err)
	read := func(name string) []byte {
		b, err := os.ReadFile(filepath.Join(nf.Dir, name))
		require.NoError(t, err)
		return b
	}
	for _, tc := range []struct {
		name    string
		data    []byte
		certs   int
		keys    int
		sources []string
		err     string
	}{
		{name: "pem bundle", data: read("apiserver.crt"), certs: 2, sources: []string{""}},
		{name: "cert and key", data: read("kubelet-client-current.pem"), certs: 1, keys: 1, sources: []string{""}},
		{name: "der", data: read("apiserver.der"), certs: 1, sources: []string{""}},
		{name: "kubeconfig", data: read("kubelet.conf"), certs: 2, sources: []string{"cluster:lab", "user:system:node:lab-node"}},
		{name: "key only", data: read("apiserver.key"), keys: 1, err: "no certificate in the file, only 1 private key block(s), which are not read"},
		{name: "garbage", data: read("garbage.crt"), err: "no certificate found"},
		{name: "empty", data: nil, err: "no certificate found"},
		{name: "bad pem certificate", data: []byte("-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n"), err: "certificate block 1"},
		{name: "oversized", data: make([]byte, maxCertFileBytes+1), err: "larger than"},
		{name: "kubeconfig bad base64", data: []byte("kind: Config\nclusters:\n- name: c\n  cluster:\n    certificate-authority-data: '%%%'\n"), err: "cluster:c: certificate data is not base64"},
		{name: "kubeconfig reference", data: []byte("kind: Config\nusers:\n- name: u\n  user:\n    client-certificate: pki/client.crt\n    client-key: pki/client.key\n"), sources: []string{"user:u"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cf, err := parseCertFile(tc.data)
			if tc.err != "" {
				require.Error(t, err)
				assert.Contains(t, err.Error(), tc.err)
				assert.Equal(t, tc.keys, cf.keysSkipped)
				return
			}
			require.NoError(t, err)
			assert.Equal(t, tc.certs, cf.certCount())
			assert.Equal(t, tc.keys, cf.keysSkipped)
			var names []string
			for _, s := range cf.sources {
				names = append(names, s.name)
			}
			assert.Equal(t, tc.sources, names)
		})
	}
}

// fileRecords returns the latest file result records by file base name
// (several records for a file with several certificate groups).
func fileRecords(sink *consumertest.LogsSink) map[string][]plog.LogRecord {
	out := map[string][]plog.LogRecord{}
	for _, ld := range sink.AllLogs() {
		batch := map[string][]plog.LogRecord{}
		for _, r := range logtest.Named(logtest.Records(ld), attrs.EventFileResult) {
			name := filepath.Base(r.Attr(attrs.FilePath))
			batch[name] = append(batch[name], r.LogRecord)
		}
		for k, v := range batch {
			out[k] = v
		}
	}
	return out
}

func reasonOf(lr plog.LogRecord) string {
	v, _ := lr.Attributes().Get(attrs.ReasonKey)
	return v.Str()
}

// TestFileTargets reads a node's certificate files written from a real PKI
// through the factory-built receiver: every file's reason, a client
// profile's own certificate, ca_file trust, no key material in any record,
// metrics per certificate, and a replaced file picked up on the next run.
func TestFileTargets(t *testing.T) {
	dir := t.TempDir()
	nf, err := faultlab.WriteNodeFiles(dir)
	require.NoError(t, err)
	cfg := createDefaultConfig()
	cfg.CollectionInterval = 300 * time.Millisecond
	cfg.Timeout = 200 * time.Millisecond
	cfg.OCSP.Timeout = 100 * time.Millisecond
	cfg.Vantage = "node-7"
	cfg.Files = []FileTargetConfig{
		{Path: filepath.Join(nf.Dir, "*"), Service: "node-pki", Owner: "team-platform", Environment: "lab", Criticality: "high"},
		{Path: nf.UnknownCA, Service: "foreign", CAFile: nf.CAFile},
		{Path: filepath.Join(dir, "no-such-dir", "*.crt")},
		{Path: filepath.Join(dir, "missing.crt")},
	}
	client := configtls.NewDefaultClientConfig()
	client.CertFile, client.KeyFile = filepath.Join(nf.Dir, "kubelet-client-current.pem"), filepath.Join(nf.Dir, "kubelet-client-current.pem")
	cfg.ClientProfiles = map[string]ProfileConfig{"node-mtls": {ClientConfig: client}}
	logs, metrics, stop := startReceiver(t, cfg)
	defer stop()

	want := map[string]string{"foreign.crt": string(attrs.ReasonUnknownCA), "missing.crt": string(attrs.ReasonFileError)}
	for _, f := range nf.Files {
		want[f.Name] = string(f.Want)
	}
	require.Eventually(t, func() bool { return len(fileRecords(logs)) >= len(want) }, 10*time.Second, 50*time.Millisecond)
	recs := fileRecords(logs)
	assert.Len(t, recs, len(want), "one entry per file; the empty glob reports nothing")
	// Key material: the base64 lines of every private key the files hold
	// (PEM keys, and the kubeconfig's client-key-data).
	var secrets []string
	for _, name := range []string{"apiserver.key", "kubelet-client-current.pem"} {
		b, _ := os.ReadFile(filepath.Join(nf.Dir, name))
		k := string(b)[strings.Index(string(b), "-----BEGIN PRIVATE KEY"):]
		secrets = append(secrets, strings.Split(k, "\n")[1:3]...)
	}
	kc, _ := os.ReadFile(filepath.Join(nf.Dir, "kubelet.conf"))
	_, after, _ := strings.Cut(string(kc), "client-key-data: ")
	secrets = append(secrets, after[:64])
	for name, reason := range want {
		rs := recs[name]
		require.NotEmpty(t, rs, name)
		// The file's worst group carries the expected reason.
		best := ""
		for _, lr := range rs {
			if r := reasonOf(lr); best == "" || attrs.Rank(attrs.Reason(r)) < attrs.Rank(attrs.Reason(best)) {
				best = r
			}
			assert.Contains(t, lr.Body().Str(), name)
			whole := lr.Body().Str() + fmt.Sprint(lr.Attributes().AsRaw())
			assert.NotContains(t, whole, "PRIVATE KEY")
			for _, sec := range secrets {
				assert.NotContains(t, whole, sec, "key material in the record of %s", name)
			}
		}
		assert.Equal(t, reason, best, "%s: %s", name, rs[0].Body().Str())
	}
	// The kubeconfig's two entries are two records with their source.
	var sources []string
	for _, lr := range recs["kubelet.conf"] {
		s, _ := lr.Attributes().Get(attrs.FileSource)
		sources = append(sources, s.Str())
	}
	assert.ElementsMatch(t, []string{"cluster:lab", "user:system:node:lab-node"}, sources)
	assert.Contains(t, recs["kubelet-client-current.pem"][0].Body().Str(), "1 private key block(s) in the file, not read")
	assert.Contains(t, recs["apiserver.key"][0].Body().Str(), "only 1 private key block(s)")
	assert.Contains(t, recs["retired-ca.crt"][0].Body().Str(), "CA certificate CN=node lab retired CA expired")
	assert.Equal(t, plog.SeverityNumberError, recs["garbage.crt"][0].SeverityNumber())

	// Routing keys sit on the resource.
	rl := logs.AllLogs()[0].ResourceLogs().At(0)
	v, _ := rl.Resource().Attributes().Get(attrs.Vantage)
	assert.Equal(t, "node-7", v.Str())

	// Metrics: every certificate's expiry, by position, on a resource that
	// names the file.
	require.Eventually(t, func() bool { return metrics.DataPointCount() > 0 }, 5*time.Second, 50*time.Millisecond)
	perFile := map[string]map[string]int{}
	for _, md := range metrics.AllMetrics() {
		for i := 0; i < md.ResourceMetrics().Len(); i++ {
			rm := md.ResourceMetrics().At(i)
			p, ok := rm.Resource().Attributes().Get(attrs.FilePath)
			if !ok {
				continue
			}
			m := map[string]int{}
			ms := rm.ScopeMetrics().At(0).Metrics()
			for j := 0; j < ms.Len(); j++ {
				if ms.At(j).Type() == pmetric.MetricTypeGauge {
					m[ms.At(j).Name()] = ms.At(j).Gauge().DataPoints().Len()
				}
			}
			perFile[filepath.Base(p.Str())] = m
		}
	}
	assert.Equal(t, 2, perFile["apiserver.crt"]["tlsprobe.cert.time_left"], "leaf and intermediate")
	assert.Equal(t, 2, perFile["kubelet.conf"]["tlsprobe.cert.lifetime_used"])
	assert.Equal(t, 2, perFile["kubelet.conf"]["tlsprobe.cert.not_after"])
	assert.Equal(t, 0, perFile["garbage.crt"]["tlsprobe.cert.time_left"])
	assert.Equal(t, 1, perFile["garbage.crt"]["tlsprobe.result"])

	// A renewed file is picked up on the next run.
	renewed, err := os.ReadFile(filepath.Join(nf.Dir, "ca.crt"))
	require.NoError(t, err)
	require.NoError(t, os.WriteFile(filepath.Join(nf.Dir, "expired-client.crt"), renewed, 0o644))
	require.Eventually(t, func() bool {
		rs := fileRecords(logs)["expired-client.crt"]
		return len(rs) == 1 && reasonOf(rs[0]) == string(attrs.ReasonOK)
	}, 5*time.Second, 50*time.Millisecond)
}

// TestClientProfileCertificate reports a client profile's own certificate
// (blackbox_exporter issue #573) under the profile's name.
func TestClientProfileCertificate(t *testing.T) {
	nf, err := faultlab.WriteNodeFiles(t.TempDir())
	require.NoError(t, err)
	cfg := createDefaultConfig()
	cfg.CollectionInterval = 300 * time.Millisecond
	cfg.Timeout = 200 * time.Millisecond
	cfg.OCSP.Timeout = 100 * time.Millisecond
	cfg.Endpoint = "127.0.0.1:1" // a network target is not needed; one shows both coexist
	client := configtls.NewDefaultClientConfig()
	client.CertFile, client.KeyFile = filepath.Join(nf.Dir, "kubelet-client-current.pem"), filepath.Join(nf.Dir, "kubelet-client-current.pem")
	cfg.ClientProfiles = map[string]ProfileConfig{"partner-mtls": {ClientConfig: client}}
	logs, _, stop := startReceiver(t, cfg)
	defer stop()
	require.Eventually(t, func() bool { return len(fileRecords(logs)["kubelet-client-current.pem"]) > 0 }, 5*time.Second, 50*time.Millisecond)
	lr := fileRecords(logs)["kubelet-client-current.pem"][0]
	p, _ := lr.Attributes().Get(attrs.ClientProfile)
	assert.Equal(t, "partner-mtls", p.Str())
	assert.Equal(t, string(attrs.ReasonOK), reasonOf(lr))
	role, _ := lr.Attributes().Get(attrs.CertRole)
	assert.Equal(t, "leaf", role.Str())
}
