package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/certpulse/certpulse/processor/tlscorrelator/internal/metadata"
)

// NewFactory returns the tlscorrelator processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		processor.WithLogs(createLogs, metadata.LogsStability),
	)
}

// logsProcessor is the correlator as a processor. It does not use
// processorhelper: it must know whether the next consumer accepted a batch,
// to keep incident transitions in its outbox until it did.
type logsProcessor struct {
	component.StartFunc
	component.ShutdownFunc
	consumer.Logs
}

func createLogs(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	c, err := newCorrelator(cfg.(*Config), set, next)
	if err != nil {
		return nil, err
	}
	lc, err := consumer.NewLogs(c.consumeLogs, consumer.WithCapabilities(consumer.Capabilities{MutatesData: true}))
	if err != nil {
		return nil, err
	}
	return &logsProcessor{StartFunc: c.start, ShutdownFunc: c.shutdown, Logs: lc}, nil
}
