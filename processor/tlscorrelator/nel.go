package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"cmp"
	"fmt"
	"slices"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/certpulse/certpulse/internal/attrs"
)

// NELConfig: when real browsers' Network Error Logging reports (the nel
// receiver's certpulse.nel.report records) open an incident.
type NELConfig struct {
	// Window: the span reports are counted over. Default 5m.
	Window time.Duration `mapstructure:"window"`
	// MinReports: failure reports for a service in Window that open (or
	// join) its incident. Default 3: one browser with a wrong clock says
	// tls.cert.date_invalid for every site it visits.
	MinReports int64 `mapstructure:"min_reports"`
}

// identityNEL is the identity of the incidents NEL reports open: one per
// service and episode, whatever the certificate (browsers do not say).
const identityNEL = "nel"

// nelHit is a service's failure reports of one type from one client
// (family and major version) over a span.
type nelHit struct {
	First  int64  `json:"b"`
	Last   int64  `json:"t"`
	Type   string `json:"y"`
	Reason string `json:"r,omitempty"`
	Client string `json:"c,omitempty"` // "chrome 156"
	N      int64  `json:"n"`
}

// maxNELHits bounds a service's remembered report groups.
const maxNELHits = 256

func readNEL(a pcommon.Map) nelHit {
	h := nelHit{Type: str(a, attrs.NELType), Reason: str(a, attrs.ReasonKey), N: 1}
	h.Client = strings.TrimSpace(str(a, attrs.UserAgentName) + " " + str(a, attrs.UserAgentVersion))
	return h
}

// addNELHit merges h into the group of its type and client that began
// less than bucket seconds before it, or appends it.
func addNELHit(hits []nelHit, h nelHit, bucket int64) []nelHit {
	for i := len(hits) - 1; i >= 0; i-- {
		x := &hits[i]
		if x.Type == h.Type && x.Client == h.Client && h.Last-x.First < bucket && h.Last >= x.First {
			x.N += h.N
			x.Last = max(x.Last, h.Last)
			return hits
		}
	}
	hits = append(hits, h)
	if len(hits) > maxNELHits {
		hits = hits[len(hits)-maxNELHits:]
	}
	return hits
}

// nelVerdict is what a service's recent reports say (pure: judgeNEL).
type nelVerdict struct {
	reports int64
	failing bool
	clients string // families, sorted, comma-separated: "chrome,firefox"
	summary string // "tls.cert.date_invalid 3 (chrome 156)"
}

func judgeNEL(hits []nelHit, cfg NELConfig) nelVerdict {
	var v nelVerdict
	byType := map[string]int64{}
	typeClients := map[string]map[string]bool{}
	families := map[string]bool{}
	for _, h := range hits {
		v.reports += h.N
		byType[h.Type] += h.N
		if typeClients[h.Type] == nil {
			typeClients[h.Type] = map[string]bool{}
		}
		if h.Client != "" {
			typeClients[h.Type][h.Client] = true
			fam, _, _ := strings.Cut(h.Client, " ")
			families[fam] = true
		}
	}
	v.failing = v.reports >= cfg.MinReports
	fams := make([]string, 0, len(families))
	for f := range families {
		fams = append(fams, f)
	}
	sort.Strings(fams)
	v.clients = strings.Join(fams, ",")
	types := make([]string, 0, len(byType))
	for t := range byType {
		types = append(types, t)
	}
	sort.Slice(types, func(i, j int) bool {
		return byType[types[i]] > byType[types[j]] || byType[types[i]] == byType[types[j]] && types[i] < types[j]
	})
	parts := make([]string, 0, min(len(types), 4))
	for _, t := range types[:min(len(types), 4)] {
		cs := make([]string, 0, len(typeClients[t]))
		for c := range typeClients[t] {
			cs = append(cs, c)
		}
		sort.Strings(cs)
		s := fmt.Sprintf("%s %d", t, byType[t])
		if len(cs) > 0 {
			s += " (" + strings.Join(cs[:min(len(cs), 3)], ", ") + ")"
		}
		parts = append(parts, s)
	}
	v.summary = strings.Join(parts, ", ")
	return v
}

// recentNEL keeps, in place, the groups whose last report is within the
// window of t.
func (e *engine) recentNEL(hits []nelHit, t time.Time) []nelHit {
	cut := t.Add(-e.cfg.NEL.Window).Unix()
	kept := hits[:0]
	for _, h := range hits {
		if h.Last > cut {
			kept = append(kept, h)
		}
	}
	return kept
}

// nelReport takes one browser's report: a failure counts towards the
// service's incident; a burst of them opens one (or joins the service's
// open probe incident) and asks for the service's probes at once, so the
// incident soon carries the probe's reason code.
func (e *engine) nelReport(r *record) {
	if r.service == "" || r.nel.Reason == "" || r.nel.Reason == string(attrs.ReasonOK) {
		return // a success report, or a failure no reason names (http.*)
	}
	t := r.time
	h := r.nel
	h.First, h.Last = t.Unix(), t.Unix()
	svc := e.service(r.service, t)
	e.markSvc(r.service, false)
	sc := e.cfg.Services[r.service]
	svc.Env = cmp.Or(sc.Environment, r.env, svc.Env)
	svc.Owner = cmp.Or(sc.Owner, r.owner, svc.Owner)
	svc.Crit = cmp.Or(sc.Criticality, r.crit, svc.Crit, attrs.CriticalityMedium)
	svc.NEL = addNELHit(e.recentNEL(svc.NEL, t), h, int64(max(e.cfg.NEL.Window/10, time.Second)/time.Second))
	v := judgeNEL(svc.NEL, e.cfg.NEL)
	if !v.failing {
		return
	}
	detail := fmt.Sprintf("real browsers reported %d failed requests in the last %s: %s", v.reports, e.cfg.NEL.Window, v.summary)
	fp := fingerprint(attrs.ReasonHandshakeFailureRate, r.service, identityNEL)
	own := e.incidents[fp]
	if joined := e.joinableProbeIncident(r.service); joined != nil {
		e.nelJoin(joined, own, v, t)
		return
	}
	wasOpen := own != nil && own.open()
	if wasOpen {
		_, said := splitProbe(own.Detail)
		detail += said // what the probes said stays
	}
	prev := int64(0)
	if own != nil {
		prev = own.UserReports
	}
	e.observe(&obs{reason: attrs.ReasonHandshakeFailureRate, service: r.service, at: t, identity: identityNEL, derived: true, detail: detail,
		faultAt: time.Unix(firstNEL(svc.NEL), 0), edge: &edgeObs{}, nel: &v})
	own = e.incidents[fp]
	if own == nil {
		return
	}
	if !wasOpen {
		if len(e.triggers) < maxTriggers {
			e.triggers = append(e.triggers, r.service)
		}
		return
	}
	if v.reports >= 2*prev {
		own.UpdatedAt = t
		e.emit(own, attrs.StateUpdated, own.State, t)
	}
}

// firstNEL is when the oldest remembered report came.
func firstNEL(hits []nelHit) int64 {
	var f int64
	for _, h := range hits {
		if f == 0 || h.First < f {
			f = h.First
		}
	}
	return f
}

// joinableProbeIncident: the service's oldest open probe incident for a
// failing reason (what real browsers fail on is that incident).
func (e *engine) joinableProbeIncident(service string) *incident {
	var joined *incident
	for _, inc := range e.incidents {
		if inc.Service == service && e.joinsFailureRate(inc) && (joined == nil || inc.OpenedAt.Before(joined.OpenedAt)) {
			joined = inc
		}
	}
	return joined
}

// nelJoin folds what browsers report into the probe incident joined, and
// the service's own NEL incident, if open, into it too.
func (e *engine) nelJoin(joined, own *incident, v nelVerdict, t time.Time) {
	reports, clients := v.reports, v.clients
	if own != nil && own.open() {
		reports, clients = max(reports, own.UserReports), mergeClients(clients, own.ClientsFailing)
		e.resolveAs(own, t, "joined")
	}
	first := joined.UserReports == 0
	grew := reports >= 2*joined.UserReports || mergeClients(joined.ClientsFailing, clients) != joined.ClientsFailing
	joined.UserReports, joined.ClientsFailing = max(reports, joined.UserReports), mergeClients(joined.ClientsFailing, clients)
	e.dirtyInc = true
	if first || grew {
		joined.UpdatedAt = t
		e.emit(joined, attrs.StateUpdated, joined.State, t)
	}
}

// nelProbeOpened: a probe incident of the service is open for a failing
// reason; an open NEL incident of the service joins it at once.
func (e *engine) nelProbeOpened(service string, t time.Time) {
	// Most failing probes have no NEL incident beside them: an open one
	// has reports in the window (nelSweep resolves it when none are left),
	// so the fingerprint is not hashed for services without any.
	if svc := e.services[service]; svc == nil || len(svc.NEL) == 0 {
		return
	}
	own := e.incidents[fingerprint(attrs.ReasonHandshakeFailureRate, service, identityNEL)]
	if own == nil || !own.open() {
		return
	}
	if joined := e.joinableProbeIncident(service); joined != nil {
		e.nelJoin(joined, own, nelVerdict{reports: own.UserReports, clients: own.ClientsFailing}, t)
	}
}

// nelSweep resolves the NEL incidents whose service had no failure report
// for a whole nel.window ("unobserved": browsers stopped failing, or
// stopped coming).
func (e *engine) nelSweep(now time.Time) {
	for _, inc := range e.incidents {
		if inc.Identity != identityNEL || !inc.open() {
			continue
		}
		var hits []nelHit
		if svc := e.services[inc.Service]; svc != nil {
			svc.NEL = e.recentNEL(svc.NEL, now)
			hits = svc.NEL
		}
		if len(hits) == 0 {
			e.resolveAs(inc, now, "unobserved")
		}
	}
}

// mergeClients unions two sorted comma-separated family lists.
func mergeClients(a, b string) string {
	set := map[string]bool{}
	for _, s := range []string{a, b} {
		for f := range strings.SplitSeq(s, ",") {
			if f != "" {
				set[f] = true
			}
		}
	}
	out := make([]string, 0, len(set))
	for f := range set {
		out = append(out, f)
	}
	slices.Sort(out)
	if len(out) > 8 {
		out = out[:8]
	}
	return strings.Join(out, ",")
}
