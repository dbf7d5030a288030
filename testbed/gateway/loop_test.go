package gateway

import (
	"context"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/exporter/exporterhelper"
	"go.opentelemetry.io/collector/exporter/exportertest"
	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/certpulse/certpulse/exporter/remediationexporter"
	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/processor/tlscorrelator"
)

// The in-process loop of the remediation tests: the real correlator into
// the real remediation exporter (queue off: decisions before ConsumeLogs
// returns), fed with probe records as tlsprobe emits them.

// remediationConfig is the exporter's default config with the queue off
// and policies set; edit sets more.
func remediationConfig(policies ...remediationexporter.PolicyConfig) *remediationexporter.Config {
	rcfg := remediationexporter.NewFactory().CreateDefaultConfig().(*remediationexporter.Config)
	rcfg.QueueSettings = configoptional.None[exporterhelper.QueueBatchConfig]()
	rcfg.Policies = policies
	return rcfg
}

// startRemediation starts the exporter with rcfg until the test ends and
// returns a tee in front of it that keeps every record it is handed.
func startRemediation(t *testing.T, rcfg *remediationexporter.Config) *tee {
	t.Helper()
	require.NoError(t, rcfg.Validate())
	rf := remediationexporter.NewFactory()
	exp, err := rf.CreateLogs(context.Background(), exportertest.NewNopSettings(rf.Type()), rcfg)
	require.NoError(t, err)
	require.NoError(t, exp.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = exp.Shutdown(context.Background()) })
	return &tee{next: exp}
}

// startCorrelator starts the correlator (default config) into next until
// the test ends.
func startCorrelator(t *testing.T, next consumer.Logs) processor.Logs {
	t.Helper()
	cf := tlscorrelator.NewFactory()
	proc, err := cf.CreateLogs(context.Background(), processortest.NewNopSettings(cf.Type()), cf.CreateDefaultConfig(), next)
	require.NoError(t, err)
	require.NoError(t, proc.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = proc.Shutdown(context.Background()) })
	return proc
}

// probeResult is one tlsprobe result for svc's endpoint <host>:443 from
// vantage v1 at at, with reason and a fixed certificate identity (chain).
func probeResult(svc, host string, reason attrs.Reason, chain string, at time.Time) plog.Logs {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	rl.Resource().Attributes().PutStr(attrs.ServiceName, svc)
	rl.Resource().Attributes().PutStr(attrs.Vantage, "v1")
	lr := rl.ScopeLogs().AppendEmpty().LogRecords().AppendEmpty()
	lr.SetEventName(attrs.EventProbeResult)
	lr.SetTimestamp(pcommon.NewTimestampFromTime(at))
	a := lr.Attributes()
	a.PutStr(attrs.ServerAddress, host)
	a.PutInt(attrs.ServerPort, 443)
	a.PutStr(attrs.ClientProfile, "default")
	a.PutStr(attrs.ReasonKey, string(reason))
	a.PutStr(attrs.ChainSHA256, chain)
	a.PutStr(attrs.TLSServerHash, "CAFE")
	a.PutStr(attrs.SPKISHA256, "c2Fmzq==")
	return ld
}
