package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"crypto/tls"
	"crypto/x509"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/clients"
	"github.com/certpulse/certpulse/internal/tlsinspect"
	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// emitter turns probe results into OTLP logs and metrics.
type emitter struct {
	mu      sync.Mutex // guards mb, which is not safe for concurrent use
	mb      *metadata.MetricsBuilder
	vantage string
	// families are the client presets each record is judged under
	// (certpulse.clients.failing; client_families).
	families []clients.Model
}

func newEmitter(mb *metadata.MetricsBuilder, vantage string) *emitter {
	return &emitter{mb: mb, vantage: vantage, families: clients.Presets()}
}

// logs builds one resource (the target's routing keys) with one record per
// profile result.
func (e *emitter) logs(t *probeTarget, results []tlsinspect.Result, unconfirmed map[string]bool) plog.Logs {
	ld, sl := e.newLogs(t)
	observed := pcommon.NewTimestampFromTime(time.Now())
	for i := range results {
		e.appendRecord(sl, t, &results[i], unconfirmed, observed)
	}
	return ld
}

// nodeLogs builds a `nodes` round: one record per node and profile, each
// with the node, what it serves differently, and its resumption verdict.
func (e *emitter) nodeLogs(t *probeTarget, outs []nodeOutcome, round *nodesRound) plog.Logs {
	ld, sl := e.newLogs(t)
	observed := pcommon.NewTimestampFromTime(time.Now())
	for i := range outs {
		o := &outs[i]
		for k := range o.results {
			lr := e.appendRecord(sl, t, &o.results[k], o.unconfirmed, observed)
			putNodeAttrs(lr, o, round)
		}
	}
	return ld
}

func (e *emitter) newLogs(t *probeTarget) (plog.Logs, plog.ScopeLogs) {
	ld := plog.NewLogs()
	rl := ld.ResourceLogs().AppendEmpty()
	e.routing(t.meta.service, t.meta.environment, t.meta.owner, t.meta.criticality).putAttrs(rl.Resource().Attributes())
	sl := rl.ScopeLogs().AppendEmpty()
	sl.Scope().SetName(metadata.ScopeName)
	return ld, sl
}

func (e *emitter) appendRecord(sl plog.ScopeLogs, t *probeTarget, r *tlsinspect.Result, unconfirmed map[string]bool, observed pcommon.Timestamp) plog.LogRecord {
	lr := sl.LogRecords().AppendEmpty()
	e.fillRecord(lr, t, r, observed)
	if !r.Success() {
		lr.Attributes().PutBool(attrs.ProbeConfirmed, !unconfirmed[r.Profile])
	}
	return lr
}

// putNodeAttrs adds what the round showed about the node and the name.
func putNodeAttrs(lr plog.LogRecord, o *nodeOutcome, round *nodesRound) {
	a := lr.Attributes()
	a.PutStr(attrs.EdgeNode, o.node)
	a.PutInt(attrs.NodesCount, int64(round.count))
	a.PutBool(attrs.NodesConsistent, round.cmp.consistent)
	body := lr.Body().Str()
	if len(o.verdict.differs) > 0 {
		d := a.PutEmptySlice(attrs.NodesDiffers)
		for _, x := range o.verdict.differs {
			d.AppendEmpty().SetStr(x)
		}
		body += "; " + o.verdict.detail
	} else if round.cmp.odd != "" {
		body += "; " + round.cmp.odd
	}
	if o.verdict.lagging {
		a.PutBool(attrs.NodesLagging, true)
		a.PutStr(attrs.NodesReferenceChain, round.cmp.reference)
	}
	res := resumptionNotChecked
	if o.resumption != nil {
		res = o.resumption.result
		a.PutStr(attrs.ResumptionCheckedAt, round.checkedAt.UTC().Format(time.RFC3339))
		if res == resumptionUnsupported {
			body += "; session resumption: " + o.resumption.detail
		}
	}
	a.PutStr(attrs.ResumptionResult, res)
	lr.Body().SetStr(body)
}

func (e *emitter) fillRecord(lr plog.LogRecord, t *probeTarget, r *tlsinspect.Result, observed pcommon.Timestamp) {
	lr.SetTimestamp(pcommon.NewTimestampFromTime(r.Start))
	lr.SetObservedTimestamp(observed)
	lr.SetEventName(attrs.EventProbeResult)
	primary := r.Primary()
	info, _ := attrs.Info(primary)
	setSeverity(lr, primary, info.Failing)
	failing, judged := e.clientsFailing(t, r)
	lr.Body().SetStr(message(t, r) + clientsPhrase(failing, judged, e.families))

	a := lr.Attributes()
	a.EnsureCapacity(32)
	a.PutStr(attrs.ServerAddress, r.ServerName)
	a.PutInt(attrs.ServerPort, t.meta.port) // the name's port; a node's own is network.peer.port
	if r.Host != r.ServerName {
		a.PutStr(attrs.ProbeEndpoint, net.JoinHostPort(r.Host, strconv.Itoa(r.Port)))
	}
	if r.PeerAddress != "" {
		a.PutStr(attrs.NetworkPeerAddress, r.PeerAddress)
		a.PutInt(attrs.NetworkPeerPort, int64(r.PeerPort))
	}
	a.PutStr(attrs.ClientProfile, r.Profile)
	a.PutStr(attrs.ReasonKey, string(primary))
	reasons := a.PutEmptySlice(attrs.ReasonsKey)
	for _, f := range r.Findings {
		reasons.AppendEmpty().SetStr(string(f.Reason))
	}
	if info.Side != attrs.SideNone {
		a.PutStr(attrs.ReasonSideKey, string(info.Side))
	}
	a.PutBool(attrs.TLSEstablished, r.Established)
	if r.Version != 0 {
		a.PutStr(attrs.TLSProtocolName, "tls")
		a.PutStr(attrs.TLSProtocolVersion, tlsinspect.VersionName(r.Version))
		a.PutStr(attrs.TLSCipher, tls.CipherSuiteName(r.CipherSuite))
		a.PutBool(attrs.TLSResumed, r.Resumed)
		a.PutStr(attrs.TLSCurve, tlsinspect.CurveName(r.Curve))
		a.PutBool(attrs.HelloRetry, r.HelloRetry)
	}
	if leaf := r.Leaf(); leaf != nil {
		putCertAttrs(a, r.Chain)
		sans := a.PutEmptySlice(attrs.SANs)
		for _, s := range tlsinspect.SANs(leaf) {
			sans.AppendEmpty().SetStr(s)
		}
	}
	a.PutStr(attrs.OCSPStatus, r.OCSP.Status)
	if r.OCSP.Source != "" {
		a.PutStr(attrs.OCSPSource, r.OCSP.Source)
	}
	if r.CRLStatus != "" {
		a.PutStr(attrs.CRLStatus, r.CRLStatus)
	}
	if t.startTLS != "" {
		a.PutStr(attrs.StartTLS, t.startTLS)
	}
	if len(t.pins) > 0 {
		a.PutInt(attrs.PinsConfigured, int64(len(t.pins)))
		ps := a.PutEmptySlice(attrs.Pins)
		for _, p := range t.pins {
			ps.AppendEmpty().SetStr(p)
		}
	}
	a.PutDouble(attrs.ProbeDuration, float64(r.Total.Microseconds())/1000)
	if judged && len(failing) > 0 {
		a.PutStr(attrs.ClientsFailing, clients.Join(failing))
	}
}

// message is the human-readable body: what is wrong and who is hit.
func message(t *probeTarget, r *tlsinspect.Result) string {
	var b strings.Builder
	b.WriteString(r.ServerName)
	if r.Host != r.ServerName {
		b.WriteString(" via " + net.JoinHostPort(r.Host, strconv.Itoa(r.Port)))
	}
	b.WriteString(" [" + r.Profile + "]: ")
	if len(r.Findings) == 0 {
		b.WriteString("ok")
		if leaf := r.Leaf(); leaf != nil {
			b.WriteString(", certificate valid until " + leaf.NotAfter.UTC().Format("2006-01-02"))
		}
		return b.String()
	}
	b.WriteString(r.Findings[0].Detail)
	if len(r.Findings) > 1 {
		b.WriteString("; also: ")
		for i, f := range r.Findings[1:] {
			if i > 0 {
				b.WriteString("; ")
			}
			b.WriteString(string(f.Reason) + " (" + f.Detail + ")")
		}
	}
	return b.String()
}

// metrics records one target's results (t is the probe's snapshot of the
// job's target; failures its counters, read only). owner: this agent is
// the target's owner vantage (or the only one), which alone records what
// does not depend on where the probe ran (recordResults).
func (e *emitter) metrics(failures map[[3]string]int64, t *probeTarget, results []tlsinspect.Result, plan seriesPlan) pmetric.Metrics {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	e.recordResults(pcommon.NewTimestampFromTime(now), now, failures, "", results, plan)
	return e.mb.Emit(metadata.WithResource(e.targetResource(t, "")))
}

// nodeMetrics records a `nodes` round: each node's series under its own
// resource (certpulse.edge.node), then the name's node count and
// consistency under the target's.
func (e *emitter) nodeMetrics(failures map[[3]string]int64, t *probeTarget, outs []nodeOutcome, round *nodesRound, plan seriesPlan) pmetric.Metrics {
	e.mu.Lock()
	defer e.mu.Unlock()
	now := time.Now()
	ts := pcommon.NewTimestampFromTime(now)
	mb := e.mb
	for i := range outs {
		o := &outs[i]
		e.recordResults(ts, now, failures, o.node, o.results, plan)
		for _, s := range o.samples {
			kind := metadata.AttributeResumptionKindNeighbour
			if s.kind == "same_node" {
				kind = metadata.AttributeResumptionKindSameNode
			}
			mb.RecordTlsprobeResumptionSuccessDataPoint(ts, b2i(s.resumed), kind, s.version)
		}
		mb.EmitForResource(metadata.WithResource(e.targetResource(t, o.node)))
	}
	mb.RecordTlsprobeNodesCountDataPoint(ts, int64(round.count))
	mb.RecordTlsprobeNodesConsistentDataPoint(ts, b2i(round.cmp.consistent))
	return mb.Emit(metadata.WithResource(e.targetResource(t, "")))
}

// targetResource is the resource of a target's series, or of one of its
// nodes'.
func (e *emitter) targetResource(t *probeTarget, node string) pcommon.Resource {
	rb := e.mb.NewResourceBuilder()
	rb.SetServerAddress(t.meta.serverName)
	rb.SetServerPort(t.meta.port)
	if node != "" {
		rb.SetCertpulseEdgeNode(node)
	}
	e.routing(t.meta.service, t.meta.environment, t.meta.owner, t.meta.criticality).setResource(rb)
	return rb.Emit()
}

// recordResults records one endpoint's (or node's) results, with the
// failure counters the prober keeps (read, never changed); the caller
// emits them under its resource. What describes the certificate and not
// the probe (time left, not_after, lifetime used, chain length, OCSP and
// CRL status, staple age) is recorded only by the owner vantage: with k
// vantages per target it would be k identical series. e.mu is held.
func (e *emitter) recordResults(ts pcommon.Timestamp, now time.Time, failures map[[3]string]int64, node string, results []tlsinspect.Result, plan seriesPlan) {
	mb := e.mb
	owner, lean := plan.Owner, plan.Lean
	for i := range results {
		r := &results[i]
		p := r.Profile
		failing := !r.Success()
		// Lean: the owner's first profile always; any other only while it
		// fails and for a while after (seriesPlan.keep).
		keep := !lean || (owner && i == 0) || plan.keep(node+"|"+p, failing, now)
		if keep {
			mb.RecordTlsprobeSuccessDataPoint(ts, b2i(r.Success()), p)
		}
		primary := string(r.Primary())
		if !lean || failing || keep && primary != string(attrs.ReasonOK) {
			mb.RecordTlsprobeResultDataPoint(ts, 1, p, primary)
		}
		for k, n := range failures {
			if k[0] == node && k[1] == p && (!lean || failing) {
				mb.RecordTlsprobeFailuresDataPoint(ts, n, p, k[2])
			}
		}
		if !lean {
			mb.RecordTlsprobeDurationDataPoint(ts, r.Connect.Seconds(), p, metadata.AttributePhaseConnect)
			mb.RecordTlsprobeDurationDataPoint(ts, r.Handshake.Seconds(), p, metadata.AttributePhaseHandshake)
			mb.RecordTlsprobeDurationDataPoint(ts, r.OCSPTime.Seconds(), p, metadata.AttributePhaseOcsp)
			mb.RecordTlsprobeDurationDataPoint(ts, r.Total.Seconds(), p, metadata.AttributePhaseTotal)
			if len(r.Chain) > 0 && owner {
				mb.RecordTlsprobeChainLengthDataPoint(ts, int64(len(r.Chain)), p)
			}
			if r.Established {
				mb.RecordTlsprobeTLSInfoDataPoint(ts, 1, p, tlsinspect.VersionName(r.Version), tls.CipherSuiteName(r.CipherSuite), tlsinspect.CurveName(r.Curve))
				mb.RecordTlsprobeTLSHelloRetryDataPoint(ts, b2i(r.HelloRetry), p)
			}
		}
		for pos, c := range r.Chain {
			switch {
			case !owner:
			case !lean:
				e.recordCert(ts, now, c, p, int64(pos), certRole(pos, c))
			case i == 0 && pos == 0: // lean: the leaf's time left
				mb.RecordTlsprobeCertTimeLeftDataPoint(ts, c.NotAfter.Sub(now).Seconds(), p, 0, certRole(pos, c))
			}
		}
	}
	// OCSP and CRL describe the leaf, not a profile: once per probe, by
	// the owner (lean: only while not good).
	if len(results) > 0 && owner {
		if s, ok := metadata.MapAttributeOcspStatus[results[0].OCSP.Status]; ok && (!lean || leanOCSPBad(s)) {
			mb.RecordTlsprobeOcspStatusDataPoint(ts, 1, s)
		}
		if s, ok := metadata.MapAttributeCrlStatus[results[0].CRLStatus]; ok && (!lean || s == metadata.AttributeCrlStatusRevoked) {
			mb.RecordTlsprobeCrlStatusDataPoint(ts, 1, s)
		}
	}
	for i := range results {
		o := results[i].OCSP
		if o.ResponderQueried && (!lean || o.ResponderLatency >= leanSlowResponder) {
			mb.RecordTlsprobeOcspResponderDurationDataPoint(ts, o.ResponderLatency.Seconds())
		}
		if o.Stapled && owner && (!lean || o.StapleAge >= leanOldStaple) {
			mb.RecordTlsprobeOcspStapleAgeDataPoint(ts, o.StapleAge.Seconds())
		}
		if o.ResponderQueried || o.Stapled {
			break
		}
	}
}

// routingKeys are the resource attributes every record and series of a
// target (or certificate file) carries.
type routingKeys struct {
	service, environment, owner, criticality, vantage string
}

func (e *emitter) routing(service, environment, owner, criticality string) routingKeys {
	return routingKeys{service: service, environment: environment, owner: owner, criticality: criticality, vantage: e.vantage}
}

// putAttrs sets the keys on a log resource.
func (k routingKeys) putAttrs(ra pcommon.Map) {
	ra.PutStr(attrs.ServiceName, k.service)
	if k.environment != "" {
		ra.PutStr(attrs.DeploymentEnv, k.environment)
	}
	if k.owner != "" {
		ra.PutStr(attrs.Owner, k.owner)
	}
	ra.PutStr(attrs.Criticality, k.criticality)
	ra.PutStr(attrs.Vantage, k.vantage)
}

// setResource sets the keys on a metrics resource.
func (k routingKeys) setResource(rb *metadata.ResourceBuilder) {
	rb.SetServiceName(k.service)
	if k.environment != "" {
		rb.SetDeploymentEnvironmentName(k.environment)
	}
	if k.owner != "" {
		rb.SetCertpulseOwner(k.owner)
	}
	setCriticality(rb, k.criticality)
	rb.SetCertpulseVantage(k.vantage)
}

// putCertAttrs describes chain[0] and the chain it heads.
func putCertAttrs(a pcommon.Map, chain []*x509.Certificate) {
	c := chain[0]
	a.PutStr(attrs.TLSServerSubject, c.Subject.String())
	a.PutStr(attrs.TLSServerIssuer, c.Issuer.String())
	a.PutStr(attrs.TLSServerNotBefore, c.NotBefore.UTC().Format(time.RFC3339))
	a.PutStr(attrs.TLSServerNotAfter, c.NotAfter.UTC().Format(time.RFC3339))
	a.PutStr(attrs.TLSServerHash, tlsinspect.CertSHA256(c))
	a.PutStr(attrs.ChainSHA256, tlsinspect.ChainSHA256(chain))
	a.PutInt(attrs.ChainLength, int64(len(chain)))
	a.PutStr(attrs.SPKISHA256, tlsinspect.SPKIPin(c))
	a.PutStr(attrs.SANSHA256, tlsinspect.SANSHA256(c))
}

// setSeverity: info when ok, error when failing, warn otherwise.
func setSeverity(lr plog.LogRecord, primary attrs.Reason, failing bool) {
	switch {
	case primary == attrs.ReasonOK:
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
	case failing:
		lr.SetSeverityNumber(plog.SeverityNumberError)
	default:
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
	}
	lr.SetSeverityText(lr.SeverityNumber().String())
}

func setCriticality(rb *metadata.ResourceBuilder, crit string) {
	switch crit {
	case attrs.CriticalityLow:
		rb.SetCertpulseCriticalityLow()
	case attrs.CriticalityHigh:
		rb.SetCertpulseCriticalityHigh()
	case attrs.CriticalityCritical:
		rb.SetCertpulseCriticalityCritical()
	default:
		rb.SetCertpulseCriticalityMedium()
	}
}

func certRole(pos int, c *x509.Certificate) metadata.AttributeCertRole {
	switch {
	case pos == 0:
		return metadata.AttributeCertRoleLeaf
	case string(c.RawIssuer) == string(c.RawSubject):
		return metadata.AttributeCertRoleRoot
	}
	return metadata.AttributeCertRoleIntermediate
}

func b2i(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
