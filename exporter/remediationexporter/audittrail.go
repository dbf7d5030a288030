package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/attrs"
)

// AuditTrailConfig reads the remediation audit trail back from the gateway
// tier's Kafka audit topic: every partition, not only the ones this
// gateway's consumer group member owns, so that the attempts every gateway
// made count here before a handover gives this gateway their incidents.
type AuditTrailConfig struct {
	// Brokers of the Kafka cluster the agents publish to.
	Brokers []string `mapstructure:"brokers"`
	// Topic holding the remediation audit events alone (encoding
	// otlp_proto): the agents publish them there besides the main topic
	// (agent.yaml's logs/audit pipeline, topic certpulse-audit). The main
	// topic works too, but then every gateway reads every probe result and
	// edge record at start.
	Topic string `mapstructure:"topic"`
	// Lookback: how far back the trail is read at start (default 2h; it
	// should cover the cooldown and the budget window). No remediation
	// runs until the trail is read up to the end it had at start.
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

const (
	// trailListTimeout bounds one listing of the topic's offsets.
	trailListTimeout = 10 * time.Second
	// trailWarnEvery: while the trail is behind, how often it says so.
	trailWarnEvery = 30 * time.Second
)

// trailBehind returns the partitions not yet read up to the end offset
// listed at start: ends[p] is the offset after the last record then, read[p]
// the offset after the last record read (at first the start offset of the
// lookback). A partition with nothing to read is never behind.
func trailBehind(ends, read map[int32]int64) []int32 {
	var behind []int32
	for p, end := range ends {
		if read[p] < end {
			behind = append(behind, p)
		}
	}
	slices.Sort(behind)
	return behind
}

// trailOffsets lists, for every partition of topic, where reading starts
// (the first offset at or after since) and the end offset now. A topic that
// does not exist has nothing to read: both maps empty.
func trailOffsets(ctx context.Context, adm *kadm.Client, topic string, since time.Time) (ends, starts map[int32]int64, err error) {
	ctx, cancel := context.WithTimeout(ctx, trailListTimeout)
	defer cancel()
	// Ends first: a record written between the two listings is read, and
	// is not waited for.
	e, err := adm.ListEndOffsets(ctx, topic)
	if err != nil {
		return nil, nil, err
	}
	s, err := adm.ListOffsetsAfterMilli(ctx, since.UnixMilli(), topic)
	if err != nil {
		return nil, nil, err
	}
	ends, starts = map[int32]int64{}, map[int32]int64{}
	for _, l := range [...]struct {
		in  kadm.ListedOffsets
		out map[int32]int64
	}{{e, ends}, {s, starts}} {
		var errs []error
		l.in.Each(func(o kadm.ListedOffset) {
			switch {
			case errors.Is(o.Err, kerr.UnknownTopicOrPartition) && o.Partition < 0:
				// No such topic yet: nothing was ever audited there.
			case o.Err != nil:
				errs = append(errs, o.Err)
			default:
				l.out[o.Partition] = o.Offset
			}
		})
		if err := errors.Join(errs...); err != nil {
			return nil, nil, err
		}
	}
	for p, end := range ends {
		if s, ok := starts[p]; !ok || s < 0 || s > end {
			starts[p] = end // no record after since: nothing to read
		}
	}
	return ends, starts, nil
}

// tailAuditTrail consumes the topic (no consumer group: every partition)
// from lookback ago until ctx ends, and learns the attempts it finds. It
// closes r.trailReady once every partition is read up to the end offsets it
// had when the reader started: until then, no remediation runs here (plan's
// TrailBehind), so an attempt another gateway made before this one started
// counts here before this one acts.
func (r *remediator) tailAuditTrail(ctx context.Context, c AuditTrailConfig) error {
	lookback := c.Lookback
	if lookback == 0 {
		lookback = 2 * time.Hour
	}
	since := r.now().Add(-lookback)
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.Brokers...), kgo.ConsumeTopics(c.Topic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AfterMilli(since.UnixMilli())))
	if err != nil {
		return err
	}
	r.telemetry.RemediationAuditTrailBehind.Add(ctx, 1)
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		defer cl.Close()
		started := time.Now()
		ends, read := r.listTrail(ctx, kadm.NewClient(cl), c.Topic, since)
		if ends == nil {
			return // shut down before the topic could be listed
		}
		caughtUp := false
		records, messages := 0, 0
		catchUp := func() {
			behind := trailBehind(ends, read)
			if len(behind) > 0 {
				return
			}
			caughtUp = true
			close(r.trailReady)
			r.telemetry.RemediationAuditTrailBehind.Add(ctx, -1)
			r.logger.Info("audit trail read up to its end at start: remediation may act",
				zap.String("topic", c.Topic), zap.Int("messages", messages), zap.Int("audit_records", records),
				zap.Duration("took", time.Since(started)))
		}
		catchUp()
		warned := time.Now()
		var u plog.ProtoUnmarshaler
		for ctx.Err() == nil {
			pctx, cancel := ctx, context.CancelFunc(func() {})
			if !caughtUp {
				// Wake up to say what is still behind.
				pctx, cancel = context.WithTimeout(ctx, trailWarnEvery)
			}
			fs := cl.PollFetches(pctx)
			cancel()
			fs.EachError(func(_ string, _ int32, err error) {
				if ctx.Err() == nil && !errors.Is(err, context.DeadlineExceeded) {
					r.logger.Warn("audit trail: fetch from Kafka failed (retrying)", zap.Error(err))
				}
			})
			var trail []actedOn
			fs.EachPartition(func(p kgo.FetchTopicPartition) {
				for _, rec := range p.Records {
					messages++
					if next := rec.Offset + 1; next > read[rec.Partition] {
						read[rec.Partition] = next
					}
					if !bytes.Contains(rec.Value, remediationEvent) {
						continue
					}
					ld, err := u.UnmarshalLogs(rec.Value)
					if err != nil {
						continue // not OTLP logs: not ours to judge here
					}
					t := r.attested(ctx, ld)
					records += len(t)
					trail = append(trail, t...)
				}
			})
			if len(trail) > 0 {
				r.learn(ctx, trail)
			}
			if caughtUp {
				continue
			}
			catchUp()
			if !caughtUp && time.Since(warned) >= trailWarnEvery {
				warned = time.Now()
				r.logger.Warn("audit trail still being read: remediation holds until it is",
					zap.String("topic", c.Topic), zap.Int32s("partitions_behind", trailBehind(ends, read)),
					zap.Duration("since_start", time.Since(started)))
			}
		}
	}()
	return nil
}

// listTrail lists the topic's offsets, retrying until it can or ctx ends
// (nil maps).
func (r *remediator) listTrail(ctx context.Context, adm *kadm.Client, topic string, since time.Time) (ends, read map[int32]int64) {
	for wait := time.Second; ; wait = min(2*wait, trailWarnEvery) {
		ends, starts, err := trailOffsets(ctx, adm, topic, since)
		if err == nil {
			return ends, starts
		}
		if ctx.Err() != nil {
			return nil, nil
		}
		r.logger.Warn("audit trail: cannot list the topic's offsets (retrying; remediation holds until the trail is read)",
			zap.String("topic", topic), zap.Error(err))
		select {
		case <-ctx.Done():
			return nil, nil
		case <-time.After(wait):
		}
	}
}

// trailCaughtUp reports whether remediation may act: no audit trail is
// configured, or it has been read up to its end at start.
func (r *remediator) trailCaughtUp() bool {
	if r.trailReady == nil {
		return true
	}
	select {
	case <-r.trailReady:
		return true
	default:
		return false
	}
}
