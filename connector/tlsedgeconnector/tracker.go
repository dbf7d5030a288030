package tlsedgeconnector

import (
	"hash/maphash"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

// tracker decides, record by record, what each is: a connection's
// handshake (counted once), a later request, a failure, noise. It is pure
// state with no I/O; callers hold their own lock.
type tracker struct {
	cfg      *Config
	policies []policy
	names    *topNames
	classes  *firstN
	conns    *connTable
	// nodeOf remembers the node each proxy listener logged (access log),
	// for records that do not name it (nginx's error log).
	nodeOf map[string]string
	// seen remembers the records observed lately and what they were, so
	// that a retried batch counts once.
	seen *recentSet
	// seed keys recordKey's hash (in memory only).
	seed maphash.Seed
	// listenerServices: the mapped services each proxy listener was seen
	// serving (by SNI), for its records without SNI.
	listenerServices map[string][]string
}

func newTracker(cfg *Config) *tracker {
	t := &tracker{
		cfg:     cfg,
		names:   newTopNames(cfg.MaxServerNames),
		classes: newFirstN(cfg.MaxClientClasses),
		conns:   newConnTable(cfg.MaxConnections, cfg.ConnectionIdle),
		nodeOf:  map[string]string{},
		seen:    newRecentSet(cfg.MaxConnections, replayWindow),
		seed:    maphash.MakeSeed(),

		listenerServices: map[string][]string{},
	}
	for _, pc := range cfg.Policies {
		t.policies = append(t.policies, compilePolicy(pc))
	}
	return t
}

// observed is one record as the connector understood it.
type observed struct {
	kind kind
	// replay: the record was observed before (a retried batch): counted
	// then, not again.
	replay  bool
	h       handshake
	sni     string // bounded label
	service string
	env     string
	// alsoListener: a success that also counts in its listener's own
	// population (see serviceOf).
	alsoListener string
	hrr          bool // inferred HelloRetryRequest
	hrrKnown     bool
	// earlyUnsafe: 0-RTT early data with a non-idempotent method.
	earlyUnsafe bool
	class       string    // client class (handshakes, when policies are set)
	verdicts    []verdict // per policy, for successful handshakes
}

// observeRecord observes a record as a receiver delivered it. A record
// seen before (the same read time and content: a batch refused downstream
// and sent again by filelog) is classified as it was the first time and
// marked replay, so that nothing counts it twice and no state moves.
func (t *tracker) observeRecord(res pcommon.Map, lr plog.LogRecord, now time.Time) observed {
	key, ok := t.recordKey(res, lr)
	if !ok {
		return t.classify(res, lr.Attributes(), lr.Body(), now, nil)
	}
	if was, seen := t.seen.get(key); seen {
		return t.classify(res, lr.Attributes(), lr.Body(), now, &was)
	}
	o := t.classify(res, lr.Attributes(), lr.Body(), now, nil)
	t.seen.put(key, o.kind, now)
	return o
}

func (t *tracker) observe(res, m pcommon.Map, now time.Time) observed {
	return t.classify(res, m, pcommon.NewValueEmpty(), now, nil)
}

// classify reads one record; was is its kind when it was seen before
// (a replay: no state changes, the same kind).
func (t *tracker) classify(res, m pcommon.Map, body pcommon.Value, now time.Time, was *kind) observed {
	o := observed{h: readRecord(res, m, body), replay: was != nil}
	h := &o.h
	o.kind = h.classify()
	if o.kind == kindUnparsed || o.kind == kindOther {
		return o
	}
	lk := h.proxy + "|" + h.listener
	if h.node == "" {
		h.node = t.nodeOf[lk]
	} else if h.listener != "" && !o.replay && len(t.nodeOf) < t.cfg.MaxConnections {
		t.nodeOf[lk] = h.node
	}
	switch {
	case o.replay:
		o.kind = *was
	case o.kind == kindHandshake && !t.firstOfConnection(h, now):
		o.kind = kindRequest
	}
	o.earlyUnsafe = h.early && nonIdempotent(h.method)
	if o.kind == kindRequest {
		if o.earlyUnsafe {
			o.sni = t.names.peek(h.sni)
			o.service, o.env, _ = t.serviceOf(h)
		}
		return o
	}
	if o.replay {
		o.sni = t.names.peek(h.sni)
	} else {
		o.sni = t.names.label(h.sni)
	}
	o.service, o.env, o.alsoListener = t.serviceOf(h)
	if o.kind != kindHandshake {
		return o
	}
	h.parseOffers()
	o.hrr, o.hrrKnown = inferHRR(h)
	if len(t.policies) > 0 {
		o.class = t.classes.label(clientClass(h))
		o.verdicts = make([]verdict, len(t.policies))
		for i := range t.policies {
			o.verdicts[i] = t.policies[i].judge(h)
		}
	}
	return o
}

// firstOfConnection: nginx logs the request's number on its connection;
// HAProxy, Caddy and Envoy a connection key; a record with neither is a
// connection of its own.
func (t *tracker) firstOfConnection(h *handshake, now time.Time) bool {
	switch {
	case h.connRequests > 0:
		return h.connRequests == 1
	case h.conn != "":
		return t.conns.first(h.proxy+"|"+h.node+"|"+h.listener+"|"+h.conn, now)
	}
	return true
}

// serviceOf names the service of a record. A client-chosen name (SNI)
// never becomes a service: only the services configuration maps names,
// and a record's own service.name (set by the operator's pipeline) is
// taken as it is. Failures the proxy logs without SNI (nginx's and
// HAProxy's error logs) go to the one service their listener serves when
// the access records told it; everything else is the listener's own
// population ("10.0.0.5:443"), its successes and its failures together.
// alsoListener names that population for a success of a mapped service
// on a listener several mapped services share, so that the listener's
// SNI-less failures are judged against its successes, never alone.
func (t *tracker) serviceOf(h *handshake) (service, env, alsoListener string) {
	lk := h.proxy + "|" + h.listener
	if s, ok := t.cfg.serviceFor(h.sni, h.listener); ok {
		env = s.Environment
		if env == "" {
			env = h.env
		}
		if h.sni != "" && h.listener != "" {
			if t.learnListener(lk, s.Name) > 1 {
				alsoListener = h.listener
			}
		}
		return s.Name, env, alsoListener
	}
	if h.service != "" {
		return h.service, h.env, ""
	}
	if h.sni == "" {
		if svcs := t.listenerServices[lk]; len(svcs) == 1 {
			return svcs[0], h.env, ""
		}
	}
	return h.listener, h.env, ""
}

// maxServicesPerListener bounds what a listener remembers it serves.
const maxServicesPerListener = 4

// learnListener remembers that listener lk serves service (bounded) and
// returns how many services it is known to serve.
func (t *tracker) learnListener(lk, service string) int {
	svcs, ok := t.listenerServices[lk]
	if !ok && len(t.listenerServices) >= t.cfg.MaxConnections {
		return 0
	}
	for _, s := range svcs {
		if s == service {
			return len(svcs)
		}
	}
	if len(svcs) < maxServicesPerListener {
		svcs = append(svcs, service)
		t.listenerServices[lk] = svcs
	}
	return len(svcs)
}

// reasonOf is the reason code a record's outcome carries.
func (o *observed) reasonOf() attrs.Reason {
	if o.kind == kindFailure {
		return o.h.reason
	}
	return attrs.ReasonOK
}
