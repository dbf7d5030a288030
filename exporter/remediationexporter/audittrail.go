package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"bytes"
	"context"
	"errors"
	"time"

	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/attrs"
)

// AuditTrailConfig reads the remediation audit trail back from the gateway
// tier's Kafka topic: every partition, not only the ones this gateway's
// consumer group member owns, so that the attempts every gateway made count
// here before a handover gives this gateway their incidents.
type AuditTrailConfig struct {
	// Brokers of the Kafka cluster the agents publish to.
	Brokers []string `mapstructure:"brokers"`
	// Topic the agents publish logs to (encoding otlp_proto).
	Topic string `mapstructure:"topic"`
	// Lookback: how far back the trail is read at start (default 2h; it
	// should cover the cooldown and the budget window).
	Lookback time.Duration `mapstructure:"lookback"`
}

func (c *AuditTrailConfig) validate() error {
	var errs []error
	if len(c.Brokers) == 0 || c.Topic == "" {
		errs = append(errs, errors.New("audit_trail: brokers and topic are required"))
	}
	if c.Lookback < 0 || c.Lookback > 7*24*time.Hour {
		errs = append(errs, errors.New("audit_trail: lookback must be between 0 and 168h"))
	}
	return errors.Join(errs...)
}

// remediationEvent is in the OTLP bytes of every message that carries a
// remediation audit event: messages without it are not decoded.
var remediationEvent = []byte(attrs.EventLifecyclePrefix + attrs.LifecycleRemediation)

// tailAuditTrail consumes the topic (no consumer group: every partition)
// from lookback ago until ctx ends, and learns the attempts it finds.
func (r *remediator) tailAuditTrail(ctx context.Context, c AuditTrailConfig) error {
	lookback := c.Lookback
	if lookback == 0 {
		lookback = 2 * time.Hour
	}
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...), kgo.ConsumeTopics(c.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(time.Now().Add(-lookback).UnixMilli())))
	if err != nil {
		return err
	}
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cl.Close()
		var u plog.ProtoUnmarshaler
		for ctx.Err() == nil {
			fs := cl.PollFetches(ctx)
			fs.EachError(func(_ string, _ int32, err error) {
				if ctx.Err() == nil {
					r.logger.Warn("audit trail: fetch from Kafka failed (retrying)", zap.Error(err))
				}
			})
			var trail []actedOn
			fs.EachRecord(func(rec *kgo.Record) {
				if !bytes.Contains(rec.Value, remediationEvent) {
					return
				}
				ld, err := u.UnmarshalLogs(rec.Value)
				if err != nil {
					return // not OTLP logs: not ours to judge here
				}
				trail = append(trail, r.attested(ctx, ld)...)
			})
			if len(trail) > 0 {
				r.learn(ctx, trail)
			}
		}
	}()
	return nil
}
