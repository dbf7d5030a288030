package tlsprobereceiver

import (
	"context"
	"errors"
	"sync/atomic"

	"go.opentelemetry.io/collector/confmap"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/pmetric"
)

func confmapFrom(m map[string]any) *confmap.Conf { return confmap.NewFromStringMap(m) }

type countingErrSink struct {
	calls atomic.Int64
}

func (s *countingErrSink) Capabilities() consumer.Capabilities { return consumer.Capabilities{} }
func (s *countingErrSink) ConsumeMetrics(context.Context, pmetric.Metrics) error {
	s.calls.Add(1)
	return errors.New("memory limiter says no")
}
