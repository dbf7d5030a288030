package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/clients"
	"github.com/certpulse/certpulse/internal/periodic"
	"github.com/certpulse/certpulse/internal/tlsinspect"
	"github.com/certpulse/certpulse/internal/trigger"
	"github.com/certpulse/certpulse/internal/vantage"
	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// probeTarget is a resolved target ready to probe.
type probeTarget struct {
	meta targetMeta
	// targetSpec is how the target is probed; targets with the same share
	// it (targetPool): an agent holds 100,000 targets and more.
	*targetSpec
	// claim: this receiver's claim on the target among the collector's
	// receivers (configured targets, with a trigger hub); only its owner
	// probes, so identical receivers (receiver_creator, an Ingress with
	// several paths) probe it once.
	claim *trigger.Claim
}

// tlsProbeReceiver is shared by the logs and metrics pipelines of one
// component ID: one prober, two outputs.
type tlsProbeReceiver struct {
	cfg      *Config
	settings receiver.Settings
	logger   *zap.Logger
	vantage  string

	mu      sync.Mutex
	logs    consumer.Logs
	metrics consumer.Metrics

	obsLogs    *receiverhelper.ObsReport
	obsMetrics *receiverhelper.ObsReport
	telemetry  *metadata.TelemetryBuilder
	emitter    *emitter

	inspector *tlsinspect.Inspector
	claims    []*trigger.Claim // released at shutdown
	memory    *memories        // per target, across probes
	resolver  *net.Resolver    // resolves `nodes: all`
	profiles  *profileSet
	sched     *scheduler
	// batch gathers results for one hand-off per batch.timeout (nil: each
	// probe's at once); ticks hands it off.
	batch *outBatch
	ticks periodic.Flusher

	startOnce sync.Once
	startErr  error
	// created counts the pipelines (logs, metrics) the instance serves,
	// started their Start calls: probing begins only when every pipeline
	// has started, so no record reaches an exporter that is not started
	// yet (the collector starts the two pipelines' receiver nodes
	// separately, in no fixed order against the other pipeline's
	// exporters).
	created, started int
	launch           func()
	shutdownOnce     sync.Once
	cancel           context.CancelFunc
	wait             []func()
	onShutdown       func()

	budget *trigger.Budget
	unsub  func()
	// vantages: the collector's membership (certpulse_vantages), nil
	// when every target is probed here.
	vantages *vantage.Set

	fileHash [sha256.Size]byte
	fileMod  time.Time
	fileSize int64
}

func newReceiver(cfg *Config, set receiver.Settings) (*tlsProbeReceiver, error) {
	obsLogs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "tcp", ReceiverCreateSettings: set})
	if err != nil {
		return nil, err
	}
	obsMetrics, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "tcp", ReceiverCreateSettings: set})
	if err != nil {
		return nil, err
	}
	telemetry, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	vantage := cfg.Vantage
	if vantage == "" {
		vantage, _ = os.Hostname()
	}
	r := &tlsProbeReceiver{
		cfg: cfg, settings: set, logger: set.Logger, vantage: vantage,
		obsLogs: obsLogs, obsMetrics: obsMetrics, telemetry: telemetry, resolver: net.DefaultResolver, memory: newMemories(),
	}
	r.emitter = newEmitter(metadata.NewMetricsBuilder(cfg.MetricsBuilderConfig, set), vantage)
	r.emitter.families = clients.Select(cfg.ClientFamilies)
	return r, nil
}

func (r *tlsProbeReceiver) setLogs(c consumer.Logs) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.logs == nil {
		r.created++
	}
	r.logs = c
}

func (r *tlsProbeReceiver) setMetrics(c consumer.Metrics) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.metrics == nil {
		r.created++
	}
	r.metrics = c
}

// Start loads profiles and targets (the first call, so that a bad config
// fails the first pipeline's start) and starts probing once every pipeline
// the instance serves has called Start.
func (r *tlsProbeReceiver) Start(_ context.Context, host component.Host) error {
	r.startOnce.Do(func() { r.startErr = r.start(host) })
	if r.startErr != nil {
		return r.startErr
	}
	if launch := r.readyToLaunch(); launch != nil {
		launch()
	}
	return nil
}

// readyToLaunch counts a Start call and returns the launch function when it
// was the last pipeline's (only once).
func (r *tlsProbeReceiver) readyToLaunch() func() {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.started++
	if r.started < r.created || r.launch == nil {
		return nil
	}
	l := r.launch
	r.launch = nil
	return l
}

func (r *tlsProbeReceiver) start(host component.Host) error {
	// Probes outlive Start's context: they run until Shutdown.
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	var err error
	if r.profiles, err = loadProfiles(ctx, r.cfg); err != nil {
		return err
	}
	targets, err := r.configTargets()
	if err != nil {
		return err
	}
	if r.cfg.TargetsFile != "" {
		fileTargets, err := r.loadFile(true)
		if err != nil {
			return fmt.Errorf("targets_file %s: %w", r.cfg.TargetsFile, err)
		}
		targets = append(targets, fileTargets...)
	}
	r.inspector = tlsinspect.New(r.cfg.inspectOptions())
	r.sched = newScheduler(r.cfg.MaxConcurrency, r.probe)
	if r.cfg.Batch.Timeout > 0 {
		r.batch = newOutBatch(r.cfg.Batch.MaxSize)
		r.ticks = periodic.Flusher{Interval: r.cfg.Batch.Timeout, Flush: r.flushBatch, Logger: r.logger}
	}
	r.sched.late = func(d time.Duration) {
		r.telemetry.TlsprobeScheduleLateness.Record(context.Background(), d.Seconds())
	}
	r.setTargets(dedupTargets(targets, r.logger))
	if r.cfg.Vantages != nil {
		if r.vantages, err = vantage.Find(host.GetExtensions(), *r.cfg.Vantages); err != nil {
			return fmt.Errorf("tlsprobe: %w", err)
		}
		if self := r.vantages.Self(); self != r.vantage {
			r.logger.Warn("tlsprobe: the vantage name differs from the certpulse_vantages member name; records carry the vantage", zap.String("vantage", r.vantage), zap.String("member", self))
		}
	}
	var hub *trigger.Hub
	if r.cfg.Trigger != nil {
		if hub, err = trigger.Find(host.GetExtensions(), *r.cfg.Trigger); err != nil {
			return fmt.Errorf("tlsprobe: %w", err)
		}
		for _, t := range inlineTargets(targets) {
			if key, ok := claimKey(r.vantage, r.cfg, *t.meta.src); ok {
				t.claim = hub.Claim(key)
				r.claims = append(r.claims, t.claim)
			}
		}
	}
	// With a trigger hub, one budget per collector (receiver_creator starts
	// a receiver per discovered target); without one, per receiver.
	if hub != nil {
		r.budget = hub.Budget(r.cfg.ExtraProbes.PerSecond, r.cfg.ExtraProbes.Burst)
	} else {
		r.budget = trigger.NewBudget(r.cfg.ExtraProbes.PerSecond, r.cfg.ExtraProbes.Burst, time.Now)
	}
	r.launch = func() {
		if hub != nil {
			r.unsub = hub.Subscribe(r.onTrigger)
		}
		r.wait = append(r.wait, r.sched.start(ctx))
		if r.batch != nil {
			r.ticks.Start()
		}
		if entries := r.cfg.fileEntries(); len(entries) > 0 {
			fw := &fileWatcher{entries: entries, interval: r.cfg.CollectionInterval, soon: r.cfg.ExpiringSoon, logger: r.logger, now: time.Now, emit: r.emitFiles, empty: map[string]bool{}}
			r.spawn(func() { fw.run(ctx) })
		}
		if r.cfg.TargetsFile != "" {
			r.spawn(func() { r.watchFile(ctx, inlineTargets(targets)) })
		}
	}
	r.logger.Info("tlsprobe started", zap.Int("targets", r.sched.size()), zap.Int("file_targets", len(r.cfg.Files)), zap.String("vantage", r.vantage), zap.Duration("collection_interval", r.cfg.CollectionInterval))
	return nil
}

// spawn runs fn in a goroutine Shutdown waits for.
func (r *tlsProbeReceiver) spawn(fn func()) {
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		fn()
	}()
	r.wait = append(r.wait, wg.Wait)
}

// inlineTargets returns the targets that did not come from the targets file.
func inlineTargets(ts []*probeTarget) []*probeTarget {
	var out []*probeTarget
	for _, t := range ts {
		if !t.fromFile {
			out = append(out, t)
		}
	}
	return out
}

func (r *tlsProbeReceiver) configTargets() ([]*probeTarget, error) {
	var cts []TargetConfig
	if r.cfg.Endpoint != "" {
		cts = append(cts, r.cfg.TargetConfig)
	}
	cts = append(cts, r.cfg.Targets...)
	return r.resolveAll(cts, false)
}

func (r *tlsProbeReceiver) resolveAll(cts []TargetConfig, fromFile bool) ([]*probeTarget, error) {
	out := make([]*probeTarget, 0, len(cts))
	var errs []error
	// (The strings most targets share, one endpoint for many names, a
	// ca_file, a service, are kept once as the targets file is decoded:
	// targetsBuilder. The structs they share are kept once here.)
	var pool targetPool
	for i, c := range cts {
		profiles, err := r.profiles.resolve(c)
		if err != nil {
			errs = append(errs, fmt.Errorf("target %d (%s): %w", i, c.Endpoint, err))
			continue
		}
		iv := c.CollectionInterval
		if iv == 0 {
			iv = r.cfg.CollectionInterval
		}
		m := newTargetMeta(c)
		m.targetLabels = pool.labels(m.targetLabels)
		if !fromFile && m.src == nil {
			m.src = &c
		}
		spec := pool.spec(targetSpec{startTLS: c.StartTLS, pins: c.Pins, profiles: profiles, interval: iv, fromFile: fromFile})
		out = append(out, &probeTarget{meta: m, targetSpec: spec})
	}
	return out, errors.Join(errs...)
}

// dedupTargets drops targets that repeat an earlier identity (a file entry
// that repeats an inline target), with a warning.
func dedupTargets(ts []*probeTarget, logger *zap.Logger) []*probeTarget {
	seen := map[string]bool{}
	out := ts[:0:0]
	for _, t := range ts {
		k := t.meta.key
		if seen[k] {
			logger.Warn("duplicate target ignored", zap.String("endpoint", t.meta.endpoint), zap.String("server_name", t.meta.serverName))
			continue
		}
		seen[k] = true
		out = append(out, t)
	}
	return out
}

// Shutdown stops probing, waits for in-flight probes and hands off the
// results batched so far.
func (r *tlsProbeReceiver) Shutdown(ctx context.Context) error {
	r.shutdownOnce.Do(func() {
		if r.unsub != nil {
			r.unsub()
		}
		if r.cancel != nil {
			r.cancel()
		}
		for _, w := range r.wait {
			w()
		}
		// Once the probes have stopped: the last hand-off.
		_ = r.ticks.Stop(ctx)
		for _, c := range r.claims {
			c.Release()
		}
		if r.inspector != nil {
			r.inspector.Close()
		}
		if r.onShutdown != nil {
			r.onShutdown()
		}
		r.telemetry.Shutdown()
	})
	return nil
}

// probe runs one scheduled probe of t (the job's target when it was
// dispatched) and emits its results.
func (r *tlsProbeReceiver) probe(ctx context.Context, j *job, t *probeTarget) {
	if ctx.Err() != nil || (t.claim != nil && !t.claim.Owner()) {
		return
	}
	// Regular runs only where this agent is one of the target's
	// vantages; an extra run (a trigger this agent heard: a deploy posted
	// to its node, its real clients failing; a confirmation) probes here
	// whatever the vantages: the agent that heard the event may be the
	// only one that did.
	mem, mine := r.mine(t.meta.key, t, time.Now())
	if !mine {
		if j.ranRegular {
			return
		}
		mem = r.memory.of(t.meta.key)
		mem.vantage = r.vantages.Decide(t.meta.key)
	}
	if t.meta.src != nil && len(t.meta.src.Nodes) > 0 {
		r.probeNodes(ctx, mem, t)
		return
	}
	r.probeOne(ctx, mem, t)
}

// probeOne probes the target's endpoint once under every profile.
func (r *tlsProbeReceiver) probeOne(ctx context.Context, mem *targetMemory, t *probeTarget) {
	results := r.inspector.Inspect(ctx, t.inspectTarget())
	if ctx.Err() != nil {
		return // shutting down: a cancelled probe is not a result
	}
	unconfirmed := mem.unconfirmedFailures("", results)
	mem.countFailures("", results)
	if len(unconfirmed) > 0 {
		r.confirm(t)
	}
	r.send(ctx, t.meta.endpoint,
		func() plog.Logs { return withVantages(r.emitter.logs(t, results, unconfirmed), mem.vantage) },
		func() pmetric.Metrics { return r.emitter.metrics(mem.failures, t, results, r.plan(mem)) })
}

// emitFiles sends the file targets' results to the pipelines.
func (r *tlsProbeReceiver) emitFiles(ctx context.Context, results []fileResult) {
	r.send(ctx, "files",
		func() plog.Logs { return r.emitter.fileLogs(results) },
		func() pmetric.Metrics { return r.emitter.fileMetrics(results) })
}

// send builds results for whichever pipelines are connected and hands
// them off: into the batch (batch.timeout), or at once. what names them in
// a refusal's log line (an endpoint, or "files").
func (r *tlsProbeReceiver) send(ctx context.Context, what string, makeLogs func() plog.Logs, makeMetrics func() pmetric.Metrics) {
	r.mu.Lock()
	logs, metrics := r.logs, r.metrics
	r.mu.Unlock()
	p := &pending{probes: 1, hasLogs: logs != nil, hasMetrics: metrics != nil}
	if p.hasLogs {
		p.logs = makeLogs()
	}
	if p.hasMetrics {
		p.metrics = makeMetrics()
	}
	if r.batch != nil {
		if p = r.batch.add(p); p == nil {
			return
		}
		what = ""
	}
	r.deliver(ctx, what, p)
}

// deliver hands results to the pipelines (no lock held: a consumer may
// block on a full queue); a refusal is logged with what was refused.
func (r *tlsProbeReceiver) deliver(ctx context.Context, what string, p *pending) {
	r.mu.Lock()
	logs, metrics := r.logs, r.metrics
	r.mu.Unlock()
	if what == "" {
		what = fmt.Sprintf("a batch of %d probes", p.probes)
	}
	if logs != nil && p.hasLogs {
		n := p.logs.LogRecordCount()
		octx := r.obsLogs.StartLogsOp(ctx)
		err := logs.ConsumeLogs(octx, p.logs)
		r.obsLogs.EndLogsOp(octx, metadata.Type.String(), n, err)
		if err != nil {
			r.logger.Warn("probe results refused by the pipeline", zap.String("endpoint", what), zap.Int("records", n), zap.Error(err))
		}
	}
	if metrics != nil && p.hasMetrics {
		n := p.metrics.DataPointCount()
		octx := r.obsMetrics.StartMetricsOp(ctx)
		err := metrics.ConsumeMetrics(octx, p.metrics)
		r.obsMetrics.EndMetricsOp(octx, metadata.Type.String(), n, err)
		if err != nil {
			r.logger.Warn("probe metrics refused by the pipeline", zap.String("endpoint", what), zap.Int("data_points", n), zap.Error(err))
		}
	}
}

// flushBatch hands off what the batch holds (every batch.timeout, and at
// Shutdown once the probes have stopped). A refusal is logged by deliver.
func (r *tlsProbeReceiver) flushBatch(ctx context.Context) error {
	if p := r.batch.take(); p != nil {
		r.deliver(ctx, "", p)
	}
	return nil
}

// onTrigger probes the event's service now and at on_change.backoff (a
// deploy or renewal may have changed what its endpoints serve). Called on
// the firing goroutine: it only schedules.
func (r *tlsProbeReceiver) onTrigger(ev trigger.Event) {
	delays := append([]time.Duration{0}, r.cfg.OnChange.Backoff...)
	added, refused := r.sched.runSoon(func(t *probeTarget) bool { return targetMatches(t, ev) }, delays, r.budget.Allow)
	if added+refused > 0 {
		r.logger.Info("lifecycle trigger: probing now", zap.String("service", ev.Service), zap.String("event", ev.Type),
			zap.Int("probes_scheduled", added), zap.Int("refused_by_budget", refused))
	}
}

// targetMatches: the event's service and, when it lists endpoints, one of
// their hosts as the target's server name or dialed host (a deploy to
// api.example.com refreshes every port of it).
func targetMatches(t *probeTarget, ev trigger.Event) bool {
	if t.meta.service != ev.Service {
		return false
	}
	if len(ev.Endpoints) == 0 {
		return true
	}
	dialed, _, _ := net.SplitHostPort(t.meta.endpoint)
	for _, e := range ev.Endpoints {
		host := e
		if h, _, err := net.SplitHostPort(e); err == nil {
			host = h
		}
		if strings.EqualFold(host, t.meta.serverName) || strings.EqualFold(host, dialed) {
			return true
		}
	}
	return false
}

// confirm re-probes t confirm.attempts times, confirm.interval apart.
func (r *tlsProbeReceiver) confirm(t *probeTarget) {
	if r.cfg.Confirm.Attempts <= 0 {
		return
	}
	delays := make([]time.Duration, r.cfg.Confirm.Attempts)
	for i := range delays {
		delays[i] = time.Duration(i+1) * r.cfg.Confirm.Interval
	}
	key := t.meta.key
	r.sched.runSoon(func(o *probeTarget) bool { return o.meta.key == key }, delays, r.budget.Allow)
}

// claimKey identifies a configured target with everything that shapes its
// probe and records (the receiver's config, the target, the vantage), so
// that only receivers that would probe it identically share a claim. ok is
// false when the config cannot be serialized (no claim: it always probes).
func claimKey(vantage string, cfg *Config, t TargetConfig) (string, bool) {
	b, err := json.Marshal(struct {
		Vantage string
		Config  *Config
		Target  TargetConfig
	}{vantage, cfg, t})
	if err != nil {
		return "", false
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:]), true
}

// setTargets hands the scheduler its targets and forgets the memory of
// those that are gone.
func (r *tlsProbeReceiver) setTargets(ts []*probeTarget) {
	r.sched.set(ts)
	keys := make(map[string]bool, len(ts))
	for _, t := range ts {
		keys[t.meta.key] = true
	}
	r.memory.keep(keys)
}
