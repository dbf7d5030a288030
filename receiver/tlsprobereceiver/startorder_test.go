package tlsprobereceiver

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/receiver/receivertest"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// TestNoRecordBeforeEveryPipelineStarted: the collector starts the logs and
// the metrics pipeline's receiver nodes separately, and may start the
// metrics one before the logs pipeline's exporters. The shared receiver
// must not emit (file targets emit at once) until every pipeline it serves
// has started: an exporter that is not started yet can crash on data
// (fileexporter v0.145 did, in the e2e run).
func TestNoRecordBeforeEveryPipelineStarted(t *testing.T) {
	nf, err := faultlab.WriteNodeFiles(t.TempDir())
	require.NoError(t, err)
	cfg := createDefaultConfig()
	cfg.CollectionInterval = 100 * time.Millisecond
	cfg.Timeout = 50 * time.Millisecond
	cfg.OCSP.Timeout = 20 * time.Millisecond
	cfg.Files = []FileTargetConfig{{Path: filepath.Join(nf.Dir, "*"), Service: "node-pki"}}
	require.NoError(t, cfg.Validate())
	logs, metrics := new(consumertest.LogsSink), new(consumertest.MetricsSink)
	f := NewFactory()
	set := receivertest.NewNopSettings(metadata.Type)
	lr, err := f.CreateLogs(context.Background(), set, cfg, logs)
	require.NoError(t, err)
	mr, err := f.CreateMetrics(context.Background(), set, cfg, metrics)
	require.NoError(t, err)
	defer func() {
		require.NoError(t, mr.Shutdown(context.Background()))
		require.NoError(t, lr.Shutdown(context.Background()))
	}()

	require.NoError(t, mr.Start(context.Background(), componenttest.NewNopHost()))
	time.Sleep(500 * time.Millisecond) // five file rounds, had it started
	require.Zero(t, logs.LogRecordCount(), "records emitted before the logs pipeline started")
	require.Zero(t, metrics.DataPointCount(), "metrics emitted before every pipeline started")

	require.NoError(t, lr.Start(context.Background(), componenttest.NewNopHost()))
	require.Eventually(t, func() bool { return logs.LogRecordCount() > 0 && metrics.DataPointCount() > 0 }, 5*time.Second, 20*time.Millisecond)
}
