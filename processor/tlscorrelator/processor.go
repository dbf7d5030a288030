package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"math"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/extension/xextension/storage"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/trigger"
	"github.com/certpulse/certpulse/processor/tlscorrelator/internal/metadata"
)

type correlator struct {
	next      consumer.Logs
	cfg       *Config
	settings  processor.Settings
	logger    *zap.Logger
	telemetry *metadata.TelemetryBuilder

	// mu guards the state; persistMu orders checkpoints (taken before
	// mu): one is prepared under mu and written with only persistMu held,
	// so records are processed while the disk works, and a later
	// checkpoint is never written before an earlier one.
	mu        sync.Mutex
	persistMu sync.Mutex
	eng       *engine
	client    storage.Client
	open      map[string][3]string // incident id -> (severity, reason, service) it is counted under
	lastN     int                  // last reported state entries
	lastB     int                  // last reported state bytes
	// futureLogged rate-limits the log line about records from the future,
	// per source (vantage or lifecycle source), to one a minute.
	futureLogged map[string]time.Time
	// applied: records already applied (redelivery changes nothing).
	applied *applied
	keyHash maphash.Hash
	// lastSummary and prevSummary: the latest open-incidents snapshot
	// (only the ticker goroutine touches them).
	lastSummary time.Time
	prevSummary map[openGroup]int

	// hub: the certpulse_trigger extension's (edge-triggered probes).
	hub *trigger.Hub

	cancel context.CancelFunc
	wg     sync.WaitGroup
}

func newCorrelator(cfg *Config, set processor.Settings, next consumer.Logs) (*correlator, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &correlator{next: next, cfg: cfg, settings: set, logger: set.Logger, telemetry: tb, eng: newEngine(cfg), open: map[string][3]string{}, futureLogged: map[string]time.Time{}, applied: newApplied(maxApplied)}, nil
}

func (c *correlator) start(ctx context.Context, host component.Host) error {
	if c.cfg.Trigger != nil {
		hub, err := trigger.Find(host.GetExtensions(), *c.cfg.Trigger)
		if err != nil {
			return err
		}
		c.hub = hub
	}
	if c.cfg.Storage != nil {
		ext, ok := host.GetExtensions()[*c.cfg.Storage]
		if !ok {
			return fmt.Errorf("storage extension %s is not configured", c.cfg.Storage)
		}
		se, ok := ext.(storage.Extension)
		if !ok {
			return fmt.Errorf("extension %s is not a storage extension", c.cfg.Storage)
		}
		client, err := se.GetClient(ctx, component.KindProcessor, c.settings.ID, "")
		if err != nil {
			return fmt.Errorf("storage client: %w", err)
		}
		c.client = client
		if err := c.eng.restore(ctx, client); err != nil {
			return err
		}
		// A watermark persisted from a record stamped in the future (before
		// max_clock_skew existed, or a clock since corrected) is capped.
		if now := time.Now(); c.eng.watermark.Sub(now) > c.cfg.MaxClockSkew {
			c.logger.Warn("tlscorrelator: restored event-time watermark is in the future; capped at the wall clock", zap.Time("watermark", c.eng.watermark))
			c.eng.watermark = now
		}
		for _, inc := range c.eng.incidents {
			if inc.open() {
				c.setOpen(ctx, inc.ID, [3]string{string(inc.Severity), string(inc.Reason), inc.Service}, true)
			}
		}
		c.logger.Info("tlscorrelator state restored", zap.Int("endpoints", len(c.eng.endpoints)), zap.Int("incidents", len(c.eng.incidents)))
	}
	bg, cancel := context.WithCancel(context.Background())
	c.cancel = cancel
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		t := time.NewTicker(c.cfg.CheckpointInterval)
		defer t.Stop()
		for {
			select {
			case <-bg.Done():
				return
			case <-t.C:
				c.tick(bg)
			}
		}
	}()
	return nil
}

// persist writes a checkpoint: prepared under mu, written outside it.
// Called without mu held.
func (c *correlator) persist(ctx context.Context, flush bool) error {
	c.persistMu.Lock()
	defer c.persistMu.Unlock()
	c.mu.Lock()
	n := len(c.eng.endpoints) + len(c.eng.services) + len(c.eng.incidents)
	if c.client == nil {
		c.mu.Unlock()
		c.telemetry.TlscorrelatorStateEntries.Add(ctx, int64(n-c.lastN))
		c.lastN = n
		return nil
	}
	w, err := c.eng.prepare(false, flush)
	c.mu.Unlock()
	c.telemetry.TlscorrelatorStateEntries.Add(ctx, int64(n-c.lastN))
	c.lastN = n
	if err != nil {
		return err
	}
	err = w.write(ctx, c.client)
	c.mu.Lock()
	c.eng.commit(w, err)
	b := c.eng.storedBytes
	c.mu.Unlock()
	if err == nil {
		c.telemetry.TlscorrelatorStateBytes.Add(ctx, int64(b-c.lastB))
		c.lastB = b
	}
	return err
}

// takeOutbox takes the outbox entries that may be sent: with storage, the
// persisted ones. Called with mu held.
func (c *correlator) takeOutbox() []*outboxEntry {
	if c.client == nil {
		return c.eng.takeOutbox(math.MaxUint64)
	}
	return c.eng.takeOutbox(c.eng.persistedSeq)
}

func (c *correlator) shutdown(ctx context.Context) error {
	if c.cancel != nil {
		c.cancel()
	}
	c.wg.Wait()
	var errs []error
	if c.client != nil {
		errs = append(errs, c.persist(ctx, true))
		errs = append(errs, c.client.Close(ctx))
	}
	c.telemetry.Shutdown()
	return errors.Join(errs...)
}

func incAttrs(sev, reason, service string) metric.AddOption {
	return metric.WithAttributes(attribute.String("severity", sev), attribute.String("reason", reason), attribute.String("service", service))
}

// tick expires idle state, persists, announces what the outbox still
// holds (transitions a refused batch carried), and emits the open-incidents
// snapshot when it is due.
func (c *correlator) tick(ctx context.Context) {
	c.summarize(ctx)
	c.mu.Lock()
	c.eng.expire(c.eng.watermark)
	for _, tr := range c.eng.queue() {
		c.countTransition(ctx, tr)
	}
	c.mu.Unlock()
	err := c.persist(ctx, false)
	var take []*outboxEntry
	if err == nil {
		c.mu.Lock()
		take = c.takeOutbox()
		c.mu.Unlock()
	}
	if err != nil {
		c.logger.Error("tlscorrelator checkpoint failed; state will be retried at the next one", zap.Error(err))
		return
	}
	if len(take) == 0 {
		return
	}
	ld := plog.NewLogs()
	c.appendTransitions(ld, take)
	sendCtx, cancel := context.WithTimeout(ctx, c.cfg.CheckpointInterval)
	defer cancel()
	err = c.next.ConsumeLogs(sendCtx, ld)
	c.mu.Lock()
	c.eng.settle(take, err == nil)
	c.mu.Unlock()
	if err != nil {
		c.logger.Warn("incident transitions refused downstream; kept for the next batch or tick", zap.Int("transitions", len(take)), zap.Error(err))
	}
}

// summarize emits the open-incidents snapshot every open_incidents_interval.
func (c *correlator) summarize(ctx context.Context) {
	iv := c.cfg.OpenIncidentsInterval
	now := time.Now()
	if iv <= 0 || now.Sub(c.lastSummary) < iv {
		return
	}
	c.mu.Lock()
	cur := c.eng.openSummary(now)
	brake := c.eng.brake
	c.mu.Unlock()
	if len(cur) == 0 && len(c.prevSummary) == 0 && brake == "" {
		c.lastSummary = now
		return
	}
	ld := plog.NewLogs()
	appendOpenSummary(ld, cur, c.prevSummary, now)
	if brake != "" {
		appendBrake(ld, brake, now)
	}
	sendCtx, cancel := context.WithTimeout(ctx, c.cfg.CheckpointInterval)
	defer cancel()
	if err := c.next.ConsumeLogs(sendCtx, ld); err != nil {
		c.logger.Warn("open-incidents snapshot refused downstream; the next one follows", zap.Error(err))
		return
	}
	c.lastSummary, c.prevSummary = now, cur
}

func (c *correlator) appendTransitions(ld plog.Logs, entries []*outboxEntry) {
	now := time.Now()
	for _, o := range entries {
		appendIncident(ld, o.tr, now)
	}
}

// consumeLogs passes records on (enriched, minus held-back healthy ones)
// with the incident transitions in the outbox. Transitions are persisted
// before they are sent (a persist failure fails the batch, so the queue
// before the processor retries it) and leave the outbox only once the next
// consumer accepted them; a refusal is returned so the records are retried.
func (c *correlator) consumeLogs(ctx context.Context, ld plog.Logs) error {
	var counts [9]int64 // probe, lifecycle, other, late, dropped, future, edge, redelivered, nel
	now := time.Now()
	c.mu.Lock()
	eng := c.eng
	rls := ld.ResourceLogs()
	for i := 0; i < rls.Len(); i++ {
		rl := rls.At(i)
		res := rl.Resource().Attributes()
		sls := rl.ScopeLogs()
		for j := 0; j < sls.Len(); j++ {
			sls.At(j).LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				r := extract(res, lr)
				if r.kind.correlated() {
					switch eng.advance(r.time, now) {
					case late:
						counts[3]++
						return false
					case future:
						// Not correlated (its time cannot be trusted, and
						// it must not move the watermark), but passed on:
						// nothing is dropped for a bad clock.
						counts[5]++
						c.logFuture(&r, now)
						lr.Attributes().PutBool(attrs.ClockAhead, true)
						return false
					}
				}
				var key uint64
				if r.kind.correlated() {
					key = recordKey(&c.keyHash, res, lr)
					if pass, ok := c.applied.seen(key); ok {
						// Redelivered: already applied; passed on as the
						// first time (enriched from the state it made).
						counts[7]++
						if r.kind == kindProbe {
							if !pass {
								return true
							}
							enrich(res, lr, eng.enrichment(&r))
						}
						return false
					}
				}
				switch r.kind {
				case kindProbe:
					counts[0]++
					pass, en := eng.probe(&r)
					c.applied.add(key, pass)
					if !pass {
						counts[4]++
						return true
					}
					enrich(res, lr, en)
				case kindLifecycle:
					counts[1]++
					eng.lifecycle(&r)
					c.applied.add(key, true)
				case kindEdge:
					counts[6]++
					eng.edgeWindow(&r)
					c.applied.add(key, true)
				case kindNEL:
					counts[8]++
					eng.nelReport(&r)
					c.applied.add(key, true)
				default:
					counts[2]++
				}
				return false
			})
		}
	}
	fresh := eng.queue()
	for _, tr := range fresh {
		c.countTransition(ctx, tr)
	}
	fire := eng.takeTriggers()
	// Persist before anyone hears of a transition: a restart never reopens
	// or re-pages what was already announced, nor loses it. An entry is
	// unpersisted when no checkpoint has written it since it joined the
	// outbox (this batch's, or an earlier one's whose write failed);
	// entries that only left it (accepted) wait for the next tick.
	unpersisted := eng.outboxSeq > eng.persistedSeq && c.client != nil
	c.mu.Unlock()
	var perr error
	if unpersisted {
		perr = c.persist(ctx, false)
	}
	var take []*outboxEntry
	if perr == nil {
		c.mu.Lock()
		take = c.takeOutbox()
		c.mu.Unlock()
		c.appendTransitions(ld, take)
	}
	c.fire(fire)
	for k, n := range counts {
		if n > 0 {
			c.telemetry.TlscorrelatorRecords.Add(ctx, n, metric.WithAttributes(attribute.String("kind", [...]string{"probe", "lifecycle", "other", "late", "dropped", "future", "edge", "redelivered", "nel"}[k])))
		}
	}
	if perr != nil {
		return fmt.Errorf("tlscorrelator: incident state not persisted, batch refused so that it is retried: %w", perr)
	}
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool { return sl.LogRecords().Len() == 0 })
		return rl.ScopeLogs().Len() == 0
	})
	if ld.ResourceLogs().Len() == 0 {
		return nil
	}
	err := c.next.ConsumeLogs(ctx, ld)
	if len(take) > 0 {
		c.mu.Lock()
		c.eng.settle(take, err == nil)
		c.mu.Unlock()
	}
	return err
}

// logFuture logs a record not correlated for a timestamp beyond the wall clock plus
// max_clock_skew, at most once a minute per source. Called with c.mu held.
func (c *correlator) logFuture(r *record, now time.Time) {
	src := r.vantage
	if r.kind == kindLifecycle {
		src = "lifecycle:" + r.source
	}
	if last, ok := c.futureLogged[src]; ok && now.Sub(last) < time.Minute {
		return
	}
	if len(c.futureLogged) > 10000 {
		clear(c.futureLogged) // bounded: sources are few; this only resets the rate limit
	}
	c.futureLogged[src] = now
	c.logger.Warn("tlscorrelator passed on, without correlating it, a record stamped in the future: check this source's clock", zap.String("source", src), zap.String("service", r.service),
		zap.Time("timestamp", r.time), zap.Duration("ahead", r.time.Sub(now)), zap.Duration("max_clock_skew", c.cfg.MaxClockSkew))
}

func (c *correlator) countTransition(ctx context.Context, tr transition) {
	inc := &tr.inc
	c.telemetry.TlscorrelatorIncidentTransitions.Add(ctx, 1, metric.WithAttributes(attribute.String("state", string(tr.state)), attribute.String("severity", string(inc.Severity)), attribute.String("reason", string(inc.Reason))))
	c.setOpen(ctx, inc.ID, [3]string{string(inc.Severity), string(inc.Reason), inc.Service}, tr.state != attrs.StateResolved)
}

// setOpen keeps tlscorrelator_incidents_open: each open incident is counted
// once, under its current severity.
func (c *correlator) setOpen(ctx context.Context, id string, key [3]string, open bool) {
	if old, ok := c.open[id]; ok {
		if open && old == key {
			return
		}
		c.telemetry.TlscorrelatorIncidentsOpen.Add(ctx, -1, incAttrs(old[0], old[1], old[2]))
		delete(c.open, id)
	}
	if open {
		c.open[id] = key
		c.telemetry.TlscorrelatorIncidentsOpen.Add(ctx, 1, incAttrs(key[0], key[1], key[2]))
	}
}

// fire asks the probes of each service whose real clients began failing
// to run now (outside the lock: subscribers only schedule).
func (c *correlator) fire(services []string) {
	if c.hub == nil {
		return
	}
	for _, svc := range services {
		n := c.hub.Fire(trigger.Event{Type: trigger.EdgeFailures, Service: svc})
		c.logger.Info("tlscorrelator: real clients failing; probing the service now", zap.String("service", svc), zap.Int("receivers", n))
	}
}
