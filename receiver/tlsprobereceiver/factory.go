package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"

	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// NewFactory returns the tlsprobe receiver factory. The logs and metrics
// pipelines of one component ID share one prober.
func NewFactory() receiver.Factory {
	f := &factory{instances: map[component.ID]*tlsProbeReceiver{}}
	return receiver.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		receiver.WithLogs(f.createLogs, metadata.LogsStability),
		receiver.WithMetrics(f.createMetrics, metadata.MetricsStability),
	)
}

type factory struct {
	mu        sync.Mutex
	instances map[component.ID]*tlsProbeReceiver
}

func (f *factory) get(cfg component.Config, set receiver.Settings) (*tlsProbeReceiver, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if r, ok := f.instances[set.ID]; ok {
		return r, nil
	}
	r, err := newReceiver(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	r.onShutdown = func() {
		f.mu.Lock()
		defer f.mu.Unlock()
		if f.instances[set.ID] == r {
			delete(f.instances, set.ID)
		}
	}
	f.instances[set.ID] = r
	return r, nil
}

func (f *factory) createLogs(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Logs) (receiver.Logs, error) {
	r, err := f.get(cfg, set)
	if err != nil {
		return nil, err
	}
	r.setLogs(next)
	return r, nil
}

func (f *factory) createMetrics(_ context.Context, set receiver.Settings, cfg component.Config, next consumer.Metrics) (receiver.Metrics, error) {
	r, err := f.get(cfg, set)
	if err != nil {
		return nil, err
	}
	r.setMetrics(next)
	return r, nil
}
