package certmanagerprocessor // import "github.com/certpulse/certpulse/processor/certmanagerprocessor"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/processor"

	"github.com/certpulse/certpulse/processor/certmanagerprocessor/internal/metadata"
)

// NewFactory returns the certmanager processor factory.
func NewFactory() processor.Factory {
	return processor.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		processor.WithLogs(createLogs, metadata.LogsStability),
	)
}

type logsProcessor struct {
	component.StartFunc
	component.ShutdownFunc
	consumer.Logs
}

func createLogs(_ context.Context, set processor.Settings, cfg component.Config, next consumer.Logs) (processor.Logs, error) {
	p, err := newProcessor(cfg.(*Config), set, next)
	if err != nil {
		return nil, err
	}
	lc, err := consumer.NewLogs(p.consumeLogs, consumer.WithCapabilities(consumer.Capabilities{MutatesData: true}))
	if err != nil {
		return nil, err
	}
	return &logsProcessor{StartFunc: p.start, ShutdownFunc: p.shutdown, Logs: lc}, nil
}
