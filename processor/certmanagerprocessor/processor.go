package certmanagerprocessor // import "github.com/certpulse/certpulse/processor/certmanagerprocessor"

import (
	"context"
	"errors"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/trigger"
	"github.com/certpulse/certpulse/processor/certmanagerprocessor/internal/metadata"
)

// Outcomes of a k8sobjects record (the outcome attribute).
const (
	outcomeEvent     = "event"
	outcomeUnchanged = "unchanged"
	outcomePassed    = "passed"
	outcomeMalformed = "malformed"
	outcomeOverflow  = "overflow"
)

type certProcessor struct {
	cfg       *Config
	logger    *zap.Logger
	next      consumer.Logs
	telemetry *metadata.TelemetryBuilder
	hub       *trigger.Hub
	now       func() time.Time

	mu      sync.Mutex
	certs   map[string]*certState // namespace/name
	pending map[string]issued     // namespace/certificate name

	cancel context.CancelFunc
	done   chan struct{}
}

func newProcessor(cfg *Config, set processor.Settings, next consumer.Logs) (*certProcessor, error) {
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &certProcessor{cfg: cfg, logger: set.Logger, next: next, telemetry: tb, now: time.Now,
		certs: map[string]*certState{}, pending: map[string]issued{}}, nil
}

func (p *certProcessor) start(_ context.Context, host component.Host) error {
	if p.cfg.Trigger != nil {
		hub, err := trigger.Find(host.GetExtensions(), *p.cfg.Trigger)
		if err != nil {
			return err
		}
		p.hub = hub
	}
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go p.checkLoop(ctx)
	return nil
}

func (p *certProcessor) shutdown(context.Context) error {
	if p.cancel != nil {
		p.cancel()
		<-p.done
	}
	p.telemetry.Shutdown()
	return nil
}

// checkLoop reports overdue renewals every check_interval: an overdue
// renewal changes no object, so no watch event would say so.
func (p *certProcessor) checkLoop(ctx context.Context) {
	defer close(p.done)
	tick := time.NewTicker(p.cfg.CheckInterval)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		}
		evs := p.overdue(p.now())
		if len(evs) == 0 {
			continue
		}
		ld := plog.NewLogs()
		p.appendEvents(ld, evs)
		if err := p.next.ConsumeLogs(ctx, ld); err != nil {
			p.logger.Error("certmanager: overdue renewals not delivered", zap.Int("events", len(evs)), zap.Error(err))
		}
	}
}

func (p *certProcessor) overdue(now time.Time) []lcEvent {
	p.mu.Lock()
	defer p.mu.Unlock()
	var evs []lcEvent
	for _, st := range p.certs {
		if ev, ok := decideOverdue(st, now, p.cfg.OverdueAfter); ok {
			st.overdueFor = st.renewalTime
			evs = append(evs, ev)
		}
	}
	return evs
}

// consumeLogs replaces every cert-manager object record with the lifecycle
// events its change means (none when nothing changed that matters) and
// passes every other record on untouched.
func (p *certProcessor) consumeLogs(ctx context.Context, ld plog.Logs) error {
	now := p.now()
	var evs []lcEvent
	counts := map[string]int64{}
	ld.ResourceLogs().RemoveIf(func(rl plog.ResourceLogs) bool {
		rl.ScopeLogs().RemoveIf(func(sl plog.ScopeLogs) bool {
			sl.LogRecords().RemoveIf(func(lr plog.LogRecord) bool {
				o, err := parseObject(lr.Body(), p.cfg.ServiceAnnotation)
				switch {
				case errors.Is(err, errNotCertManager):
					counts[outcomePassed]++
					return false
				case err != nil:
					counts[outcomeMalformed]++
					p.logger.Warn("certmanager: cert-manager object not read, passed on as is", zap.Error(err))
					return false
				}
				at := now
				if ts := lr.ObservedTimestamp(); ts != 0 {
					at = ts.AsTime()
				}
				got, outcome := p.apply(o, at)
				counts[outcome]++
				if outcome == outcomeOverflow {
					p.logger.Warn("certmanager: max_certificates reached, Certificate not tracked (passed on as is)",
						zap.String("certificate", o.namespace+"/"+o.name), zap.Int("max_certificates", p.cfg.MaxCertificates))
					return false
				}
				evs = append(evs, got...)
				return true
			})
			return sl.LogRecords().Len() == 0
		})
		return rl.ScopeLogs().Len() == 0
	})
	for k, n := range counts {
		p.telemetry.CertmanagerObjects.Add(ctx, n, metric.WithAttributes(attribute.String("outcome", k)))
	}
	if len(evs) > 0 {
		p.appendEvents(ld, evs)
		p.fire(evs)
	}
	if ld.ResourceLogs().Len() == 0 {
		return nil
	}
	return p.next.ConsumeLogs(ctx, ld)
}

// apply records o and returns the events it means and the record's
// outcome.
func (p *certProcessor) apply(o object, now time.Time) ([]lcEvent, string) {
	key := o.namespace + "/" + o.name
	p.mu.Lock()
	defer p.mu.Unlock()
	var evs []lcEvent
	switch o.kind {
	case kindRequest:
		if o.leaf == nil || o.forCert == "" {
			return nil, outcomeUnchanged
		}
		ck := o.namespace + "/" + o.forCert
		if _, ok := p.pending[ck]; !ok && len(p.pending) >= p.cfg.MaxCertificates {
			return nil, outcomeOverflow
		}
		p.pending[ck] = issued{revision: o.forRevision, leaf: o.leaf}
		return nil, outcomeUnchanged
	case kindCertificate:
		prev := p.certs[key]
		if prev == nil && o.event != watchDeleted && len(p.certs) >= p.cfg.MaxCertificates {
			return nil, outcomeOverflow
		}
		var pend *issued
		if is, ok := p.pending[key]; ok {
			pend = &is
		}
		next, got := decideCertificate(prev, o, pend, now, p.cfg.OverdueAfter)
		switch {
		case next == nil && prev != nil:
			delete(p.certs, key)
			delete(p.pending, key)
			p.telemetry.CertmanagerCertificates.Add(context.Background(), -1)
		case next != nil:
			if prev == nil {
				p.telemetry.CertmanagerCertificates.Add(context.Background(), 1)
			}
			p.certs[key] = next
			if pend != nil && next.revision >= pend.revision {
				delete(p.pending, key)
			}
		}
		evs = got
	}
	if len(evs) == 0 {
		return nil, outcomeUnchanged
	}
	return evs, outcomeEvent
}

// fire asks the probes of each issued or renewed certificate's service to
// look now, as certlifecycle does for a hook sender's renewed.
func (p *certProcessor) fire(evs []lcEvent) {
	if p.hub == nil {
		return
	}
	for _, ev := range evs {
		if ev.typ == attrs.LifecycleIssued || ev.typ == attrs.LifecycleRenewed {
			p.hub.Fire(trigger.Event{Type: ev.typ, Service: ev.state.service})
		}
	}
}
