package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"cmp"
	"math"
	"strings"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/clients"
)

// obs is one failure observation feeding an incident.
type obs struct {
	reason      attrs.Reason
	probeReason attrs.Reason
	rec         *record // nil for lifecycle-derived incidents
	service     string  // when rec is nil
	identity    string
	deploy      *lcEvent
	detail      string
	derived     bool // from lifecycle events alone: no endpoints, no corroboration
	sticky      bool // resolved by a lifecycle event, not by healthy results
	notAfter    time.Time
	at          time.Time   // when rec is nil
	edge        *edgeObs    // from edge telemetry
	nel         *nelVerdict // from browsers' NEL reports
	// faultAt is when the endpoint began failing (its first failing
	// result); lastGood the chain and SPKI it served when last healthy.
	faultAt                     time.Time
	lastGoodChain, lastGoodSPKI string
}

// edgeObs is what edge telemetry measured for an incident.
type edgeObs struct {
	share      float64
	handshakes int64
	nodes      []string
}

// needsCorroboration: network failures (the reason table's network side)
// open an incident only once corroborated; certificate faults are
// deterministic and open at once.
func needsCorroboration(r attrs.Reason) bool {
	info, ok := attrs.Info(r)
	return ok && info.Side == attrs.SideNetwork
}

// observe records a failure and emits the transition it causes. It returns
// the incident fingerprint.
func (e *engine) observe(o *obs) string {
	service, t := o.service, o.at
	if o.rec != nil {
		service, t = o.rec.service, o.rec.time
	}
	svc := e.service(service, t)
	e.markSvc(service, true)
	fp := fingerprint(o.reason, service, o.identity)
	inc, ok := e.incidents[fp]
	if !ok {
		inc = &incident{ID: fp, Reason: o.reason, Service: service, Identity: o.identity}
		e.incidents[fp] = inc
	}
	e.dirtyInc = true
	reopen := false
	if inc.State == attrs.StateResolved {
		if t.Sub(inc.ResolvedAt) <= e.cfg.ReopenWindow {
			reopen = true
			inc.Recurring = true
			inc.Flaps++
			// A new episode: its own timeline.
			inc.FaultAt, inc.ActedAt, inc.FixedAt = time.Time{}, time.Time{}, time.Time{}
		} else {
			*inc = incident{ID: fp, Reason: o.reason, Service: service, Identity: o.identity}
		}
	}
	if o.probeReason != "" && o.probeReason != o.reason {
		inc.ProbeReason = o.probeReason
	}
	inc.Env, inc.Owner, inc.Crit = svc.Env, svc.Owner, cmp.Or(svc.Crit, attrs.CriticalityMedium)
	inc.UpdatedAt = t
	inc.Derived = o.derived
	if o.detail != "" {
		inc.Detail = o.detail
	}
	if o.deploy != nil {
		d := *o.deploy
		inc.Deploy = &d
	}
	if x := o.edge; x != nil {
		inc.Edge, inc.EdgeShare, inc.EdgeHandshakes, inc.EdgeNodes = true, x.share, x.handshakes, x.nodes
	}
	if x := o.nel; x != nil {
		inc.UserReports, inc.ClientsFailing = x.reports, mergeClients(inc.ClientsFailing, x.clients)
	}
	if !o.notAfter.IsZero() {
		inc.NotAfter = o.notAfter
	}
	inc.noteFault(o, t)
	changed := !ok || reopen
	if r := o.rec; r != nil {
		if r.clients != "" {
			inc.ClientsFailing = mergeClients(inc.ClientsFailing, r.clients)
		}
		if !r.notAfter.IsZero() {
			inc.NotAfter = r.notAfter
		}
		if r.spki != "" {
			inc.SPKI = r.spki
		}
		if inc.Endpoints == nil {
			inc.Endpoints, inc.Vantages, inc.Profiles, inc.Regions = map[string]*incEndpoint{}, map[string]struct{}{}, map[string]struct{}{}, map[string]struct{}{}
		}
		k := epKey(r)
		if ie, ok := inc.Endpoints[k]; ok {
			if ie.ConsecOK > 0 && inc.open() {
				// Healthy for a while, but not long enough to resolve, and
				// failing again: a flap of the open incident. Announced
				// at the 1st, 2nd, 4th, 8th... flap, not each one.
				inc.Flaps++
				if inc.Flaps&(inc.Flaps-1) == 0 {
					changed = true
				}
			}
			ie.ConsecOK = 0
			inc.FixedAt = time.Time{} // a fix that did not hold
		} else if len(inc.Endpoints) < maxIncidentEndpoints {
			inc.Endpoints[k] = &incEndpoint{Target: r.server + "@" + cmp.Or(r.dial, endpointName(r))}
			changed = true
		}
		changed = addTo(inc.Vantages, r.vantage) || changed
		changed = addTo(inc.Profiles, r.profile) || changed
		addTo(inc.Regions, r.region)
		inc.Failures = append(inc.Failures, failObs{At: t.Unix(), Vantage: r.vantage})
		if len(inc.Failures) > maxFailObs {
			inc.Failures = inc.Failures[len(inc.Failures)-maxFailObs:]
		}
	}
	if !inc.Corroborated && (o.derived || e.corroborated(inc, t)) {
		inc.Corroborated = true
		changed = true
	}
	if needsCorroboration(o.reason) && !inc.Corroborated && !inc.open() {
		return fp // pending: not an incident until corroborated
	}
	sev := e.severity(inc, svc, t)
	inc.Impact = e.impact(inc, svc)
	sup := e.suppressedBy(inc, svc, t)
	prev := inc.State
	switch {
	case sup != "":
		inc.Suppressed = sup
		inc.Severity = maxSeverity(inc.Severity, sev)
		if prev != attrs.StateSuppressed {
			e.emit(inc, attrs.StateSuppressed, prev, t)
		}
	case reopen:
		// Flapping: the same incident again, marked recurring; no new page.
		inc.Severity = maxSeverity(inc.Severity, sev)
		e.emit(inc, attrs.StateUpdated, prev, t)
	case prev == "" || prev == attrs.StateResolved || (prev == attrs.StateSuppressed && !inc.Announced):
		inc.Suppressed = ""
		inc.Severity = sev
		inc.OpenedAt = t
		inc.Announced = true
		e.emit(inc, attrs.StateOpened, prev, t)
	case prev == attrs.StateSuppressed:
		inc.Suppressed = ""
		inc.Severity = maxSeverity(inc.Severity, sev)
		e.emit(inc, attrs.StateUpdated, prev, t)
	case attrs.SeverityRank(sev) > attrs.SeverityRank(inc.Severity):
		inc.Severity = sev
		e.emit(inc, attrs.StateEscalated, prev, t)
	case changed:
		e.emit(inc, attrs.StateUpdated, prev, t)
	}
	return fp
}

func addTo(m map[string]struct{}, k string) bool {
	if k == "" {
		return false
	}
	if _, ok := m[k]; ok || len(m) >= 64 {
		return false
	}
	m[k] = struct{}{}
	return true
}

func maxSeverity(a, b attrs.SeverityLevel) attrs.SeverityLevel {
	if attrs.SeverityRank(b) > attrs.SeverityRank(a) {
		return b
	}
	return a
}

// corroborated: at least Failures failures from at least Vantages distinct
// vantages within Window before t.
func (e *engine) corroborated(inc *incident, t time.Time) bool {
	c := e.cfg.Corroboration
	from := t.Add(-c.Window).Unix()
	n := 0
	seen := map[string]struct{}{}
	for _, f := range inc.Failures {
		if f.At >= from && f.At <= t.Unix() {
			n++
			seen[f.Vantage] = struct{}{}
		}
	}
	return n >= c.Failures && len(seen) >= c.Vantages
}

// severity applies the tiers of docs/architecture.md.
func (e *engine) severity(inc *incident, svc *serviceState, t time.Time) attrs.SeverityLevel {
	tiers := e.cfg.ExpiryTiers
	high := inc.Crit == attrs.CriticalityHigh || inc.Crit == attrs.CriticalityCritical
	switch inc.Reason {
	case attrs.ReasonExpiringSoon:
		left := inc.NotAfter.Sub(t)
		switch {
		case inc.NotAfter.IsZero():
			return attrs.SeverityTicket
		case left <= tiers.Page:
			return attrs.SeverityPage
		case left <= tiers.Alert:
			return attrs.SeverityAlert
		}
		return attrs.SeverityTicket
	case attrs.ReasonRenewalOverdue:
		return attrs.SeverityPage
	case attrs.ReasonRenewalFailed:
		if !svc.MinNotAfter.IsZero() && svc.MinNotAfter.Sub(t) <= e.cfg.RenewalOverdue {
			return attrs.SeverityPage
		}
		return attrs.SeverityAlert
	case attrs.ReasonPropagationLag, attrs.ReasonUnexpectedCertChange:
		return attrs.SeverityAlert
	case attrs.ReasonResumptionDegraded:
		return attrs.SeverityTicket // clients connect, at a round trip and CPU
	case attrs.ReasonHandshakeFailureRate:
		if high {
			return attrs.SeverityPage // real clients failing on a high/critical service
		}
		return attrs.SeverityAlert
	}
	if inc.Derived { // predictive pin mismatch
		if inc.Crit == attrs.CriticalityCritical {
			return attrs.SeverityPage
		}
		return attrs.SeverityAlert
	}
	r := inc.Reason
	if inc.ProbeReason != "" {
		r = inc.ProbeReason
	}
	if info, _ := attrs.Info(r); !info.Failing {
		return attrs.SeverityTicket
	}
	// A user-impacting failure pages once confirmed from several vantages
	// on a high or critical target.
	switch {
	case inc.Corroborated && high:
		return attrs.SeverityPage
	case inc.Corroborated:
		return attrs.SeverityAlert
	}
	return attrs.SeverityTicket
}

var critWeight = map[string]float64{attrs.CriticalityLow: 0.25, attrs.CriticalityMedium: 0.5, attrs.CriticalityHigh: 0.75, attrs.CriticalityCritical: 1}

// impact in 0..1: criticality x traffic weight x the share of the service's
// vantages and client profiles failing (warnings count a tenth).
func (e *engine) impact(inc *incident, svc *serviceState) float64 {
	if inc.Edge && inc.Identity != identityNEL {
		// Measured: the share of real clients' handshakes failing (or,
		// for resumption, not resuming: a tenth, clients still connect).
		if inc.Reason == attrs.ReasonResumptionDegraded {
			return math.Round(inc.EdgeShare*100) / 1000
		}
		return inc.EdgeShare
	}
	w := critWeight[inc.Crit]
	if w == 0 {
		w = 0.5
	}
	w *= trafficWeight(e.cfg.Services[inc.Service])
	share := 1.0
	if !inc.Derived && len(inc.Vantages) > 0 && len(svc.Vantages) > 0 {
		share = math.Min(1, float64(len(inc.Vantages))/float64(len(svc.Vantages)))
		if len(svc.Profiles) > 0 {
			share *= math.Min(1, float64(len(inc.Profiles))/float64(len(svc.Profiles)))
		}
	}
	share *= clientShare(inc)
	r := inc.Reason
	if inc.ProbeReason != "" {
		r = inc.ProbeReason
	}
	// A warning counts a tenth, unless the presets say clients fail on it
	// (a 1024-bit key is a warning to the probe and a refusal to OpenSSL).
	if info, ok := attrs.Info(r); ok && !info.Failing && inc.ClientsFailing == "" {
		share *= 0.1
	}
	return math.Round(w*share*1000) / 1000
}

// clientShare is the share of client families hit, when the probes'
// presets said which fail (certpulse.clients.failing): a chain only
// browsers complete hits six of seven, a 1024-bit key two. 1 when no
// family was named, and for real users' reports (NEL names the browsers
// that reported, not who else is fine).
func clientShare(inc *incident) float64 {
	if inc.ClientsFailing == "" || inc.Identity == identityNEL {
		return 1
	}
	n := float64(strings.Count(inc.ClientsFailing, ",") + 1)
	return math.Min(1, n/float64(len(clients.Families())))
}

// suppressedBy names why an incident is suppressed at t, or "".
func (e *engine) suppressedBy(inc *incident, svc *serviceState, t time.Time) string {
	if t.Before(inc.RemediateTil) {
		return "remediation"
	}
	for _, w := range e.cfg.MaintenanceWindows {
		if w.contains(inc.Service, t) {
			return "maintenance"
		}
	}
	for _, w := range svc.Windows {
		if !t.Before(w.Start) && t.Before(w.End) {
			return w.Kind
		}
	}
	return ""
}

// healthyFor counts a healthy result of an endpoint for incident fp and
// resolves it once every affected endpoint has ResolveAfter in a row. It
// reports whether the endpoint is done with the incident.
func (e *engine) healthyFor(fp, key string, t time.Time) bool {
	inc, ok := e.incidents[fp]
	if !ok {
		return true
	}
	ie, ok := inc.Endpoints[key]
	if !ok {
		return true
	}
	e.dirtyInc = true
	if !inc.open() {
		e.forgetPending(fp, inc, key)
		return true
	}
	if ie.ConsecOK < 1<<15 {
		ie.ConsecOK++
	}
	if inc.FixedAt.IsZero() && allHealthy(inc, 1) {
		// Fixed: every affected endpoint healthy again, the first time
		// since it failed. After an action, that is the verdict the
		// remediation exporter waits for: announced at once, before the
		// resolve_after streak completes.
		inc.FixedAt = t
		if !inc.ActedAt.IsZero() && e.cfg.ResolveAfter > 1 {
			e.emit(inc, attrs.StateUpdated, inc.State, t)
		}
	}
	if !allHealthy(inc, e.cfg.ResolveAfter) {
		return false
	}
	e.resolve(inc, t)
	return true
}

// forgetPending drops endpoint key from a pending (never corroborated)
// incident, and the incident once it has none left.
func (e *engine) forgetPending(fp string, inc *incident, key string) {
	delete(inc.Endpoints, key)
	if len(inc.Endpoints) == 0 && inc.State == "" {
		delete(e.incidents, fp)
	}
}

// allHealthy: every affected endpoint of inc has n healthy results in a row.
func allHealthy(inc *incident, n int) bool {
	for _, x := range inc.Endpoints {
		if int(x.ConsecOK) < n {
			return false
		}
	}
	return true
}

// noteFault records when the fault began (the first failing result, or
// the deploy that preceded it) and what was served before it.
func (inc *incident) noteFault(o *obs, t time.Time) {
	at := o.faultAt
	if at.IsZero() || at.After(t) {
		at = t
	}
	if d := o.deploy; d != nil && !d.Time.IsZero() && d.Time.Before(at) {
		at = d.Time
	}
	if inc.FaultAt.IsZero() || at.Before(inc.FaultAt) {
		inc.FaultAt = at
	}
	if inc.LastGoodChain == "" && inc.LastGoodSPKI == "" {
		inc.LastGoodChain, inc.LastGoodSPKI = o.lastGoodChain, o.lastGoodSPKI
	}
}

func (e *engine) resolve(inc *incident, t time.Time) {
	e.resolveAs(inc, t, "healthy")
}

// resolveAs resolves inc, saying how (healthy, expired).
func (e *engine) resolveAs(inc *incident, t time.Time, how string) {
	prev := inc.State
	inc.Resolution = how
	inc.State = attrs.StateResolved
	inc.ResolvedAt = t
	inc.UpdatedAt = t
	e.dirtyInc = true
	e.emit(inc, attrs.StateResolved, prev, t)
}

func (e *engine) emit(inc *incident, state, prev attrs.State, t time.Time) {
	inc.State = state
	if state == attrs.StateUpdated && prev == attrs.StateSuppressed {
		inc.State = attrs.StateUpdated
	}
	snap := *inc
	e.out = append(e.out, transition{inc: snap, state: state, prev: prev, at: t})
}
