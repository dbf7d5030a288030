package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/collector/processor/processorhelper"

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

func createLogs(ctx context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	c, err := newCorrelator(cfg.(*Config), set)
	if err != nil {
		return nil, err
	}
	return processorhelper.NewLogs(ctx, set, cfg, next, c.processLogs,
		processorhelper.WithStart(c.start),
		processorhelper.WithShutdown(c.shutdown),
		processorhelper.WithCapabilities(consumer.Capabilities{MutatesData: true}))
}
