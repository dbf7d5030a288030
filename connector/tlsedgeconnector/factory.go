package tlsedgeconnector

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/connector"
	"go.opentelemetry.io/collector/consumer"

	"github.com/certpulse/certpulse/connector/tlsedgeconnector/internal/metadata"
)

// NewFactory returns the tlsedge connector factory. As a logs-to-metrics
// connector it counts; as a logs-to-logs connector it passes the records
// on normalized, with each node's windows for the correlator. Used in both
// pipelines, each instance reads every record (they keep separate state).
func NewFactory() connector.Factory {
	return connector.NewFactory(
		metadata.Type,
		func() component.Config { return createDefaultConfig() },
		connector.WithLogsToMetrics(createLogsToMetrics, metadata.LogsToMetricsStability),
		connector.WithLogsToLogs(createLogsToLogs, metadata.LogsToLogsStability),
	)
}

func createLogsToMetrics(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Metrics) (connector.Logs, error) {
	return newMetricsConnector(set, cfg.(*Config), next), nil
}

func createLogsToLogs(_ context.Context, set connector.Settings, cfg component.Config, next consumer.Logs) (connector.Logs, error) {
	return newLogsConnector(set, cfg.(*Config), next), nil
}
