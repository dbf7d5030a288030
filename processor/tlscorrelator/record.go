package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
)

type recordKind uint8

const (
	kindOther recordKind = iota
	kindProbe
	kindLifecycle
	kindEdge // a tlsedge window: one node's handshakes over an interval
	kindNEL  // a browser's Network Error Logging report (nel receiver)
)

// correlated: the kinds the engine takes (the rest pass through).
func (k recordKind) correlated() bool {
	return k == kindProbe || k == kindLifecycle || k == kindEdge || k == kindNEL
}

// record is what the engine needs from one log record.
type record struct {
	kind    recordKind
	time    time.Time
	service string
	env     string
	owner   string
	crit    string
	vantage string
	region  string

	// probe result
	server string
	port   int64
	dial   string // what the probe dialed (host:port)
	// node is the edge node of a `nodes` target (certpulse.edge.node);
	// lagging says it serves an older chain than refChain, which its
	// neighbours serve.
	node     string
	lagging  bool
	refChain string
	// clients are the client families the probe's presets say fail
	// (certpulse.clients.failing).
	clients  string
	profile  string
	reason   attrs.Reason
	chainSHA string
	spki     string
	leafHash string
	notAfter time.Time
	pins     []string
	detail   string

	// lifecycle event
	ltype      string
	source     string
	eventID    string
	duplicate  bool
	jobID      string
	stage      string
	artifact   string
	incidentID string
	message    string
	winStart   time.Time
	winEnd     time.Time

	// edge window
	edge edgeWindow
	// NEL report
	nel nelHit
}

func str(m pcommon.Map, k string) string {
	if v, ok := m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func resOrRec(res, rec pcommon.Map, k string) string {
	if v, ok := res.Get(k); ok {
		return v.AsString()
	}
	return str(rec, k)
}

func parseTime(s string) time.Time {
	if s == "" {
		return time.Time{}
	}
	t, _ := time.Parse(time.RFC3339, s)
	return t
}

// extract reads a record; kind is kindOther for records that are neither
// probe results nor lifecycle events.
func extract(res pcommon.Map, lr plog.LogRecord) record {
	name := lr.EventName()
	var r record
	a := lr.Attributes()
	switch {
	case name == attrs.EventProbeResult:
		r.kind = kindProbe
	case strings.HasPrefix(name, attrs.EventLifecyclePrefix):
		r.kind = kindLifecycle
	case name == attrs.EventEdgeWindow:
		r.kind = kindEdge
	case name == attrs.EventNELReport:
		r.kind = kindNEL
	default:
		return r
	}
	r.time = lr.Timestamp().AsTime()
	if lr.Timestamp() == 0 {
		r.time = lr.ObservedTimestamp().AsTime()
	}
	// Routing keys are resource attributes; a gateway layout may have moved
	// all but the service to the record (see distributions/.../agent.yaml).
	r.service = resOrRec(res, a, attrs.ServiceName)
	r.env = resOrRec(res, a, attrs.DeploymentEnv)
	r.owner = resOrRec(res, a, attrs.Owner)
	r.crit = resOrRec(res, a, attrs.Criticality)
	r.vantage = resOrRec(res, a, attrs.Vantage)
	r.region = resOrRec(res, a, attrs.CloudRegion)
	if r.kind == kindEdge {
		r.edge = readEdgeWindow(a, r.time)
		return r
	}
	if r.kind == kindNEL {
		r.nel = readNEL(a)
		return r
	}
	if r.kind == kindProbe {
		r.server = str(a, attrs.ServerAddress)
		if v, ok := a.Get(attrs.ServerPort); ok {
			r.port = v.Int()
		}
		r.dial = str(a, attrs.ProbeEndpoint)
		r.node = str(a, attrs.EdgeNode)
		if v, ok := a.Get(attrs.NodesLagging); ok && v.Type() == pcommon.ValueTypeBool {
			r.lagging = v.Bool()
		}
		r.refChain = str(a, attrs.NodesReferenceChain)
		r.clients = str(a, attrs.ClientsFailing)
		r.profile = str(a, attrs.ClientProfile)
		r.reason = attrs.Reason(str(a, attrs.ReasonKey))
		if r.reason == "" {
			r.reason = attrs.ReasonOK
		}
		r.chainSHA = str(a, attrs.ChainSHA256)
		r.spki = str(a, attrs.SPKISHA256)
		r.leafHash = str(a, attrs.TLSServerHash)
		r.notAfter = parseTime(str(a, attrs.TLSServerNotAfter))
		if v, ok := a.Get(attrs.Pins); ok && v.Type() == pcommon.ValueTypeSlice {
			s := v.Slice()
			for i := 0; i < s.Len(); i++ {
				r.pins = append(r.pins, strings.TrimPrefix(s.At(i).AsString(), "sha256/"))
			}
		}
		r.detail = lr.Body().AsString()
		if !keyable(&r) {
			// Not correlated (its endpoint would not read back from its
			// key), but passed on as any other record.
			r.kind = kindOther
		}
		return r
	}
	r.ltype = str(a, attrs.LifecycleType)
	r.source = str(a, attrs.LifecycleSource)
	r.eventID = str(a, attrs.LifecycleEventID)
	if v, ok := a.Get(attrs.LifecycleDuplicate); ok {
		r.duplicate = v.Bool()
	}
	r.jobID = str(a, attrs.LifecycleJobID)
	r.stage = str(a, attrs.LifecyclePipelineStage)
	r.artifact = str(a, attrs.LifecycleArtifactVersion)
	r.incidentID = str(a, attrs.LifecycleIncidentID)
	r.message = str(a, attrs.LifecycleMessage)
	r.leafHash = str(a, attrs.TLSServerHash)
	r.spki = str(a, attrs.SPKISHA256)
	r.notAfter = parseTime(str(a, attrs.TLSServerNotAfter))
	r.winStart = parseTime(str(a, attrs.LifecycleWindowStart))
	r.winEnd = parseTime(str(a, attrs.LifecycleWindowEnd))
	return r
}
