package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"strings"
	"time"
)

// The nodes of a `nodes` target are endpoints of their own (host:port@node
// in the key); the name itself (host:port, no node) is an endpoint when its
// resolution failed. When the name's node set changes, endpoints stop being
// probed: their incidents are retired within a round instead of waiting for
// the idle expiry.

// nameKey is an endpoint key without its node, and the node ("" for none).
func nameKey(key string) (name, node string) {
	service, ep, rest, ok := splitKey(key)
	if !ok {
		return key, ""
	}
	at := strings.IndexByte(ep, '@') // a server holds none (keyable)
	if at < 0 {
		return key, ""
	}
	return service + "|" + ep[:at] + "|" + rest, ep[at+1:]
}

// indexNode records a node endpoint under its name.
func (e *engine) indexNode(key string) {
	name, node := nameKey(key)
	if node == "" {
		return
	}
	if e.nodesOf == nil {
		e.nodesOf = map[string]map[string]struct{}{}
	}
	m := e.nodesOf[name]
	if m == nil {
		m = map[string]struct{}{}
		e.nodesOf[name] = m
	}
	m[key] = struct{}{}
}

// unindexNode forgets a node endpoint.
func (e *engine) unindexNode(key string) {
	name, node := nameKey(key)
	if node == "" {
		return
	}
	if m := e.nodesOf[name]; m != nil {
		delete(m, key)
		if len(m) == 0 {
			delete(e.nodesOf, name)
		}
	}
}

// retireGone runs after a result of endpoint key (whose previous result
// was at prev, Unix seconds; 0 for none): the endpoints of the same name
// and vantage that are no longer probed give up their incidents. A result
// for a node means the name resolves: the node-less endpoint of a failed
// resolution is done. Another node that has not reported since before this
// endpoint's previous result missed a whole round: it left the name's node
// set.
func (e *engine) retireGone(key string, prev int64, t time.Time) {
	name, node := nameKey(key)
	if node != "" {
		if ep := e.endpoints[name]; ep != nil {
			e.retireEndpoint(ep, name, t)
		}
	}
	if prev == 0 {
		return
	}
	for k := range e.nodesOf[name] {
		if k == key {
			continue
		}
		if ep := e.endpoints[k]; ep != nil && ep.LastSeen < prev {
			e.retireEndpoint(ep, k, t)
		}
	}
}

// retireEndpoint takes an endpoint that is no longer probed out of its
// incidents.
func (e *engine) retireEndpoint(ep *endpointState, key string, t time.Time) {
	e.dirtyEp.mark(bucketOf(key))
	tr := ep.trouble()
	if tr.Incident != "" {
		e.retireFrom(tr.Incident, key, t)
		tr.Incident = ""
	}
	if tr.LagIncident != "" {
		e.retireFrom(tr.LagIncident, key, t)
		tr.LagIncident = ""
	}
	ep.setTrouble(tr)
}

// retireFrom removes endpoint key from incident fp; an incident left with
// no endpoint resolves as retired, one whose other endpoints are all
// healthy resolves as healthy.
func (e *engine) retireFrom(fp, key string, t time.Time) {
	inc, ok := e.incidents[fp]
	if !ok {
		return
	}
	if _, ok := inc.Endpoints[key]; !ok {
		return
	}
	e.dirtyInc = true
	if !inc.open() {
		e.forgetPending(fp, inc, key)
		return
	}
	delete(inc.Endpoints, key)
	switch {
	case len(inc.Endpoints) == 0:
		e.resolveAs(inc, t, "retired")
	case allHealthy(inc, e.cfg.ResolveAfter):
		e.resolve(inc, t)
	}
}
