package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// transition is an incident state change to emit.
type transition struct {
	inc   incident // snapshot at the time of the transition
	state attrs.State
	prev  attrs.State
	at    time.Time
}

// outboxEntry is a transition not yet accepted downstream.
type outboxEntry struct {
	seq uint64
	tr  transition
	// inFlight is set while a batch carrying it is with the next consumer,
	// so that concurrent batches do not announce it twice.
	inFlight bool
}

// queue moves new transitions into the outbox and returns them.
func (e *engine) queue() []transition {
	fresh := e.out
	for _, tr := range fresh {
		e.outboxSeq++
		e.outbox = append(e.outbox, &outboxEntry{seq: e.outboxSeq, tr: tr})
	}
	e.out = nil
	if len(fresh) > 0 {
		e.dirtyOutbox = true
	}
	return fresh
}

// takeOutbox marks every entry up to seq upTo not in flight as in flight
// and returns them: with storage, upTo is persistedSeq, so a transition
// queued while a checkpoint was being written waits for the next one.
func (e *engine) takeOutbox(upTo uint64) []*outboxEntry {
	var out []*outboxEntry
	for _, o := range e.outbox {
		if !o.inFlight && o.seq <= upTo {
			o.inFlight = true
			out = append(out, o)
		}
	}
	return out
}

// settle removes accepted entries, or returns refused ones to the outbox.
func (e *engine) settle(entries []*outboxEntry, accepted bool) {
	if !accepted {
		for _, o := range entries {
			o.inFlight = false
		}
		return
	}
	done := make(map[uint64]bool, len(entries))
	for _, o := range entries {
		done[o.seq] = true
	}
	kept := e.outbox[:0]
	for _, o := range e.outbox {
		if !done[o.seq] {
			kept = append(kept, o)
		}
	}
	clear(e.outbox[len(kept):])
	e.outbox = kept
	e.dirtyOutbox = true
}

// enrichment is what the engine adds to a probe record.
type enrichment struct {
	owner, crit, env string
	trafficWeight    float64
	lastGoodChain    string
	lastGoodSPKI     string
	deploy           *lcEvent
	renewal          *lcEvent
}

// engine holds all correlator state. It is not safe for concurrent use; the
// processor serializes calls. Decisions use record timestamps (event time),
// so a given input order always yields the same output.
type engine struct {
	cfg       *Config
	endpoints map[string]*endpointState
	// nodesOf indexes node endpoints (host:port@node) by name (nodes.go).
	nodesOf   map[string]map[string]struct{}
	services  map[string]*serviceState
	incidents map[string]*incident
	watermark time.Time
	out       []transition
	// outbox holds transitions until the next consumer has accepted them;
	// it is persisted with the state, so a refusal or a crash loses none.
	outbox      []*outboxEntry
	outboxSeq   uint64
	dirtyOutbox bool
	// persistedSeq: the outbox entries up to this seq are persisted.
	persistedSeq uint64
	// storedSizes are the bytes of each persisted key, storedBytes their
	// sum: the size of the persisted state (tlscorrelator_state_bytes).
	storedSizes map[string]int
	storedBytes int
	// codec compresses checkpoints' values (made at the first).
	codec *stateCodec
	// the endpoint and service buckets and the incidents changed since
	// the last checkpoint; legacySvc: the services were restored from the
	// one-value form (keyServices), which the next checkpoint replaces.
	dirtyEp, dirtySvc bucketSet
	dirtyInc          bool
	legacySvc         bool
	untracked         int
	// fps: one copy of each fingerprint the endpoints hold.
	fps interner
	// brake is the remediation brake as the latest brake_engaged or
	// brake_released audit event said ("" until one is seen).
	brake attrs.Outcome
	// triggers: services whose real clients began failing (edge.fast),
	// whose probes the processor asks for once the batch is done.
	triggers []string
}

// maxTriggers bounds the services triggered per batch.
const maxTriggers = 64

// takeTriggers returns and forgets the services to probe now.
func (e *engine) takeTriggers() []string {
	t := e.triggers
	e.triggers = nil
	return t
}

func newEngine(cfg *Config) *engine {
	return &engine{cfg: cfg, endpoints: map[string]*endpointState{}, services: map[string]*serviceState{}, incidents: map[string]*incident{}}
}

// fingerprint: reason + service + certificate identity, never the host.
func fingerprint(reason attrs.Reason, service, identity string) string {
	h := sha256.New()
	h.Write([]byte(reason))
	h.Write([]byte{0})
	h.Write([]byte(service))
	h.Write([]byte{0})
	h.Write([]byte(identity))
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// epKey is an endpoint's key: service|host:port[@node]|profile|vantage.
// Only the service may hold a "|" (keyable refuses a probe record whose
// other parts do), so splitKey reads the key from its end.
func epKey(r *record) string {
	return r.service + "|" + endpointName(r) + "|" + r.profile + "|" + r.vantage
}

// keyable: the record's endpoint can be keyed (splitKey reads it back).
func keyable(r *record) bool {
	return !strings.Contains(r.server, "|") && !strings.Contains(r.node, "|") && !strings.Contains(r.profile, "|") && !strings.Contains(r.vantage, "|") &&
		!strings.Contains(r.server, "@")
}

// splitKey is epKey's parts: the service (which may hold "|"), the endpoint
// name, and the rest (profile|vantage). ok is false for a string that is
// not an endpoint key.
func splitKey(key string) (service, name, rest string, ok bool) {
	v := strings.LastIndexByte(key, '|')
	if v < 0 {
		return "", "", "", false
	}
	p := strings.LastIndexByte(key[:v], '|')
	if p < 0 {
		return "", "", "", false
	}
	n := strings.LastIndexByte(key[:p], '|')
	if n < 0 {
		return "", "", "", false
	}
	return key[:n], key[n+1 : p], key[p+1:], true
}

// nameInKey is r's endpoint name within its epKey: a part of the key
// string, not a copy (the services' Leaves hold one per endpoint).
func nameInKey(key string, r *record) string {
	n := len(r.server) + 1 + digits(r.port)
	if r.node != "" {
		n += 1 + len(r.node)
	}
	return key[len(r.service)+1 : len(r.service)+1+n]
}

// digits is the length of strconv.FormatInt(v, 10).
func digits(v int64) int {
	n := 1
	if v < 0 {
		n++
	}
	for v /= 10; v != 0; v /= 10 {
		n++
	}
	return n
}

// endpointName is the host:port shown in incidents; a node of a `nodes`
// target is host:port@node.
func endpointName(r *record) string {
	n := r.server + ":" + strconv.FormatInt(r.port, 10)
	if r.node != "" {
		n += "@" + r.node
	}
	return n
}

// timeliness of a record against the watermark and the wall clock.
type timeliness uint8

const (
	onTime timeliness = iota
	late              // older than the watermark minus max_lateness
	future            // newer than the wall clock plus max_clock_skew
)

// advance moves the event-time watermark to t, unless t is beyond the wall
// clock (now) plus max_clock_skew: one skewed agent must not make every
// other record late.
func (e *engine) advance(t, now time.Time) timeliness {
	if t.Sub(now) > e.cfg.MaxClockSkew {
		return future
	}
	if t.After(e.watermark) {
		e.watermark = t
		return onTime
	}
	if e.watermark.Sub(t) > e.cfg.MaxLateness {
		return late
	}
	return onTime
}

func (e *engine) service(name string, t time.Time) *serviceState {
	s, ok := e.services[name]
	if !ok {
		s = &serviceState{}
		e.services[name] = s
		e.markSvc(name, false)
	}
	if t.After(s.LastSeen) {
		// Like an endpoint's, a service's seen time is written once a
		// slot (persistChanged), not at every probe.
		slot, b := e.seenSlot(), bucketOf(name)
		if newSlot(s.LastSeen.Unix(), t.Unix(), slot, seenPhase(b, slot)) {
			e.dirtySvc.mark(b)
		}
		s.LastSeen = t
	}
	return s
}

// markSvc: the service changed in what a restart needs; urgent when it
// must be written at the next checkpoint (bucketSet).
func (e *engine) markSvc(name string, urgent bool) {
	if urgent {
		e.dirtySvc.markUrgent(bucketOf(name))
	} else {
		e.dirtySvc.mark(bucketOf(name))
	}
}

// persistChanged: the endpoint changed in more than its last-seen time,
// its healthy count and its volume-control time, or its last-seen time
// entered a new slot of slot seconds. A slot is long (idle_timeout/4: a
// restart reads a seen time that old at most, and idle_timeout is what it
// is compared with) and its boundaries are offset per bucket (phase): a
// bucket's endpoints come due together and the buckets one after another,
// so a checkpoint rewrites about one bucket in numBuckets*checkpoint/slot
// for the seen times, however many endpoints there are (a phase per
// endpoint made every bucket due at every checkpoint past a few thousand
// endpoints: every dirty endpoint rewrites its whole bucket).
func persistChanged(before, after *endpointState, slot, phase int64) bool {
	if newSlot(before.LastSeen, after.LastSeen, slot, phase) {
		return true
	}
	a, b := *before, *after
	a.LastSeen, a.ConsecOK, a.LastPassed = 0, 0, 0
	b.LastSeen, b.ConsecOK, b.LastPassed = 0, 0, 0
	ta, tb := a.trouble(), b.trouble()
	a.Trouble, b.Trouble = nil, nil
	return a != b || ta != tb
}

// newSlot: a seen time moved from before to after entered a new slot of
// slot seconds, offset by phase.
func newSlot(before, after, slot, phase int64) bool {
	return slot > 0 && (before+phase)/slot != (after+phase)/slot
}

// seenSlot: the slot of persistChanged, in seconds.
func (e *engine) seenSlot() int64 { return max(int64(e.cfg.IdleTimeout/time.Second)/4, 1) }

// seenPhase: a bucket's offset within the slot, the buckets spread evenly.
func seenPhase(bucket int, slot int64) int64 {
	return int64(bucket) * slot / numBuckets
}

// enrichment is what a probe record is enriched with, from the state
// alone (a redelivered record, already applied).
func (e *engine) enrichment(r *record) enrichment {
	sc := e.cfg.Services[r.service]
	en := enrichment{owner: cmp.Or(sc.Owner, r.owner), crit: cmp.Or(sc.Criticality, r.crit, attrs.CriticalityMedium), env: cmp.Or(sc.Environment, r.env), trafficWeight: trafficWeight(sc)}
	if svc := e.services[r.service]; svc != nil {
		en.owner, en.crit, en.env, en.deploy, en.renewal = svc.Owner, svc.Crit, svc.Env, svc.LastDeploy, svc.LastRenewal
	}
	if ep := e.endpoints[epKey(r)]; ep != nil {
		en.lastGoodChain, en.lastGoodSPKI = ep.GoodChain, ep.GoodSPKI
	}
	return en
}

// probe processes one probe result; pass is false when volume control holds
// the record back.
func (e *engine) probe(r *record) (pass bool, en enrichment) {
	t := r.time
	sc := e.cfg.Services[r.service]
	svc := e.service(r.service, t)
	was := [3]string{svc.Env, svc.Owner, svc.Crit}
	svc.Env = cmp.Or(sc.Environment, r.env, svc.Env)
	svc.Owner = cmp.Or(sc.Owner, r.owner, svc.Owner)
	svc.Crit = cmp.Or(sc.Criticality, r.crit, svc.Crit, attrs.CriticalityMedium)
	if was != [3]string{svc.Env, svc.Owner, svc.Crit} {
		e.markSvc(r.service, false)
	}
	en = enrichment{owner: svc.Owner, crit: svc.Crit, env: svc.Env, trafficWeight: trafficWeight(sc), deploy: svc.LastDeploy, renewal: svc.LastRenewal}
	if noteSeen(&svc.Vantages, r.vantage, t) || noteSeen(&svc.Profiles, r.profile, t) {
		e.markSvc(r.service, false)
	}
	for _, p := range r.pins {
		if svc.Pins == nil {
			svc.Pins = map[string]struct{}{}
		}
		if _, ok := svc.Pins[p]; !ok && len(svc.Pins) < 32 {
			svc.Pins[p] = struct{}{}
			e.markSvc(r.service, false)
		}
	}
	key := epKey(r)
	if !r.notAfter.IsZero() && svc.noteLeaf(nameInKey(key, r), r.notAfter) {
		e.markSvc(r.service, false)
	}

	ep, ok := e.endpoints[key]
	if !ok {
		if len(e.endpoints) >= e.cfg.MaxEndpoints {
			e.untracked++
			return true, en
		}
		ep = &endpointState{}
		e.endpoints[key] = ep
		e.indexNode(key)
	}
	prevSeen := ep.LastSeen
	defer e.retireGone(key, prevSeen, t)
	// The bucket is written at the next checkpoint only when the endpoint
	// changed in what a restart needs: a healthy endpoint's probe moves
	// only its times and counters (persisted once a slot, persistChanged),
	// so 100,000 healthy endpoints do not rewrite the whole state at every
	// checkpoint.
	before := *ep
	if !ok {
		before = endpointState{LastSeen: -1}
	}
	defer func() {
		slot := e.seenSlot()
		if b := bucketOf(key); persistChanged(&before, ep, slot, seenPhase(b, slot)) {
			e.dirtyEp.mark(b)
		}
	}()
	en.lastGoodChain, en.lastGoodSPKI = ep.GoodChain, ep.GoodSPKI
	prevReason, prevChain := ep.LastReason, ep.CurChain
	ep.LastSeen = t.Unix()
	ep.LastReason = r.reason
	if r.chainSHA != "" {
		ep.CurChain = e.fps.get(r.chainSHA)
	}
	healthy := r.reason == attrs.ReasonOK

	// A node that catches up with the chain its neighbours served is the
	// end of a propagation lag, not an unexpected change.
	tr := ep.trouble()
	caughtUp := tr.LagRef != "" && r.chainSHA == tr.LagRef
	e.nodeLag(r, &tr, key, t)

	// Derived from the certificate served, whatever the probe's reason.
	if r.chainSHA != "" && ep.GoodChain != "" && r.chainSHA != ep.GoodChain && r.chainSHA != prevChain && !caughtUp && !e.explained(svc, r, t) {
		e.observe(&obs{reason: attrs.ReasonUnexpectedCertChange, rec: r, identity: r.chainSHA, derived: false, sticky: true,
			detail: "the certificate chain of " + endpointName(r) + " changed (" + short(ep.GoodChain) + " -> " + short(r.chainSHA) + ") and no lifecycle event explains it"})
	}
	if x := svc.Expect; x != nil && r.leafHash != "" && t.Sub(x.Time) > e.cfg.PropagationGrace && t.Sub(x.Time) < e.cfg.ExplainWindow {
		fp := fingerprint(attrs.ReasonPropagationLag, r.service, cmp.Or(x.Leaf, x.SPKI))
		if (x.Leaf != "" && r.leafHash != x.Leaf) || (x.Leaf == "" && x.SPKI != "" && r.spki != x.SPKI) {
			e.observe(&obs{reason: attrs.ReasonPropagationLag, rec: r, identity: cmp.Or(x.Leaf, x.SPKI), deploy: x,
				detail: endpointName(r) + " still serves a certificate other than the one " + x.Type + " " + humanAgo(t.Sub(x.Time)) + " ago (job " + cmp.Or(x.JobID, "unknown") + ")"})
		} else {
			e.healthyFor(fp, key, t)
		}
	}

	// The probe's own reason, possibly derived into a correlator reason.
	var reason attrs.Reason
	var deploy *lcEvent
	switch {
	case healthy:
	case r.reason == attrs.ReasonExpiringSoon && !r.notAfter.IsZero() && r.notAfter.Sub(t) <= e.cfg.RenewalOverdue && !e.renewalInProgress(svc, t):
		reason = attrs.ReasonRenewalOverdue
	default:
		reason = r.reason
		if info, _ := attrs.Info(r.reason); info.Failing && ep.HealthyOnce {
			began := t
			if ep.FailingSince != 0 {
				began = time.Unix(ep.FailingSince, 0)
			}
			if d := e.lastDeploy(svc); d != nil && !began.Before(d.Time.Truncate(time.Second)) && began.Sub(d.Time) <= e.cfg.DeployWindow {
				reason, deploy = attrs.ReasonPostDeployRegression, d
			}
		}
	}
	if healthy {
		ep.ConsecOK++
		ep.ConsecFail = 0
		ep.FailingSince = 0
		ep.HealthyOnce = true
		ep.GoodChain, ep.GoodSPKI, ep.GoodLeaf = e.fps.get(r.chainSHA), e.fps.get(r.spki), e.fps.get(r.leafHash)
	} else {
		ep.ConsecOK = 0
		if ep.ConsecFail < 1<<15 {
			ep.ConsecFail++
		}
		if ep.FailingSince == 0 {
			ep.FailingSince = t.Unix()
		}
	}
	old := tr.Incident
	if reason != "" {
		e.edgeProbeReason(r, reason, t)
	}
	if reason != "" {
		fp := e.observe(&obs{reason: reason, probeReason: r.reason, rec: r, identity: cmp.Or(r.chainSHA, r.spki), deploy: deploy, detail: r.detail,
			faultAt: time.Unix(ep.FailingSince, 0), lastGoodChain: ep.GoodChain, lastGoodSPKI: ep.GoodSPKI})
		tr.Incident = fp
		if inc := e.incidents[fp]; inc != nil && inc.open() {
			e.nelProbeOpened(r.service, t)
		}
		if old != "" && old != fp {
			e.healthyFor(old, key, t)
		}
	} else if old != "" {
		if e.healthyFor(old, key, t) {
			tr.Incident = ""
		}
	}
	ep.setTrouble(tr)

	// Volume control: healthy results only on change, plus a heartbeat.
	pass = true
	if healthy && e.healthyMode(sc) == "on_change" {
		if prevReason == attrs.ReasonOK && prevChain == r.chainSHA && ep.LastPassed != 0 && t.Unix()-ep.LastPassed < int64(e.cfg.Heartbeat/time.Second) {
			pass = false
		}
	}
	if pass {
		ep.LastPassed = t.Unix()
	}
	return pass, en
}

// nodeLag derives propagation_lag from one vantage's comparison of the
// nodes behind a name: a node that has served an older chain than its
// neighbours for propagation_grace is lagging. The incident's identity is
// the chain the neighbours serve, so every lagging node of the service
// joins one incident; it resolves as the nodes catch up.
func (e *engine) nodeLag(r *record, tr *Trouble, key string, t time.Time) {
	if r.lagging && r.refChain != "" {
		if tr.LagSince == 0 || tr.LagRef != r.refChain {
			tr.LagSince, tr.LagRef = t.Unix(), e.fps.get(r.refChain)
		}
		if t.Sub(time.Unix(tr.LagSince, 0)) >= e.cfg.PropagationGrace {
			tr.LagIncident = e.observe(&obs{reason: attrs.ReasonPropagationLag, rec: r, identity: r.refChain,
				detail: "node " + r.node + " of " + r.server + ":" + strconv.FormatInt(r.port, 10) + " still serves chain " + short(r.chainSHA) + " while its neighbours serve " + short(r.refChain) + " (for " + humanAgo(t.Sub(time.Unix(tr.LagSince, 0))) + ")"})
		}
		return
	}
	tr.LagSince = 0
	if r.chainSHA != "" && r.chainSHA != tr.LagRef {
		tr.LagRef = ""
	}
	if tr.LagIncident != "" && e.healthyFor(tr.LagIncident, key, t) {
		tr.LagIncident = ""
	}
}

func (e *engine) healthyMode(sc ServiceConfig) string {
	if sc.HealthyResults != "" {
		return sc.HealthyResults
	}
	return e.cfg.HealthyResults
}

func trafficWeight(sc ServiceConfig) float64 {
	if sc.TrafficWeight != nil {
		return *sc.TrafficWeight
	}
	return 1
}

// noteSeen records k seen at t; added says k is new.
func noteSeen(m *map[string]int64, k string, t time.Time) (added bool) {
	if k == "" {
		return false
	}
	if *m == nil {
		*m = map[string]int64{}
	}
	_, ok := (*m)[k]
	if !ok && len(*m) >= 64 {
		return false
	}
	(*m)[k] = t.Unix()
	return !ok
}

// lastDeploy is the latest deployed, renewed or rotated event.
func (e *engine) lastDeploy(svc *serviceState) *lcEvent {
	d := svc.LastDeploy
	if r := svc.LastRenewal; r != nil && r.Type != attrs.LifecycleIssued && (d == nil || r.Time.After(d.Time)) {
		d = r
	}
	return d
}

func (e *engine) renewalInProgress(svc *serviceState, t time.Time) bool {
	r := svc.LastRenewal
	if r == nil || t.Sub(r.Time) > e.cfg.RenewalInProgress {
		return false
	}
	return svc.RenewalFailed == nil || svc.RenewalFailed.Time.Before(r.Time)
}

// explained: a lifecycle event of the service (matching the new
// certificate when it names one) within the explain window, or a planned
// rotation window.
func (e *engine) explained(svc *serviceState, r *record, t time.Time) bool {
	for _, ev := range []*lcEvent{svc.LastDeploy, svc.LastRenewal, svc.Expect} {
		if ev == nil || t.Sub(ev.Time) > e.cfg.ExplainWindow || ev.Time.After(t.Add(e.cfg.MaxLateness)) {
			continue
		}
		if (ev.Leaf == "" && ev.SPKI == "") || ev.Leaf == r.leafHash || ev.SPKI == r.spki {
			return true
		}
	}
	for _, w := range svc.Windows {
		if w.Kind == "rotation" && !t.Before(w.Start) && t.Before(w.End.Add(e.cfg.ExplainWindow)) {
			return true
		}
	}
	return false
}

func short(s string) string {
	if len(s) > 12 {
		return s[:12]
	}
	return s
}

func humanAgo(d time.Duration) string {
	return d.Round(time.Second).String()
}
