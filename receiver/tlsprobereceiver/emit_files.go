package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"crypto/x509"
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/pdata/pmetric"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/tlsinspect"
	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// fileRouting resolves a file entry's routing keys and defaults.
func (e *emitter) fileRouting(fe *fileEntry) routingKeys {
	service, criticality := fe.cfg.Service, fe.cfg.Criticality
	if service == "" {
		service = "node-certificates"
	}
	if criticality == "" {
		criticality = attrs.CriticalityMedium
	}
	return e.routing(service, fe.cfg.Environment, fe.cfg.Owner, criticality)
}

// fileLogs builds one resource per file with one record per certificate
// group (a certificate and the issuers stored after it), or one file_error
// record for a file that could not be read.
func (e *emitter) fileLogs(results []fileResult) plog.Logs {
	ld := plog.NewLogs()
	observed := pcommon.NewTimestampFromTime(time.Now())
	for i := range results {
		fr := &results[i]
		rl := ld.ResourceLogs().AppendEmpty()
		e.fileRouting(fr.entry).putAttrs(rl.Resource().Attributes())
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		if fr.err != nil {
			lr := sl.LogRecords().AppendEmpty()
			fillFileRecord(lr, fr, nil, observed)
			continue
		}
		for j := range fr.groups {
			fillFileRecord(sl.LogRecords().AppendEmpty(), fr, &fr.groups[j], observed)
		}
	}
	return ld
}

func fillFileRecord(lr plog.LogRecord, fr *fileResult, g *fileGroup, observed pcommon.Timestamp) {
	lr.SetTimestamp(observed)
	lr.SetObservedTimestamp(observed)
	lr.SetEventName(attrs.EventFileResult)
	a := lr.Attributes()
	a.PutStr(attrs.FilePath, fr.path)
	if fr.entry.profile != "" {
		a.PutStr(attrs.ClientProfile, fr.entry.profile)
	}
	var findings []tlsinspect.Finding
	if fr.err != nil {
		findings = []tlsinspect.Finding{{Reason: attrs.ReasonFileError, Detail: fr.err.Error()}}
	} else {
		findings = g.findings
	}
	primary := attrs.ReasonOK
	if len(findings) > 0 {
		primary = findings[0].Reason
	}
	info, _ := attrs.Info(primary)
	// An unreadable file is an error, though no client fails because of it.
	setSeverity(lr, primary, info.Failing || primary == attrs.ReasonFileError)
	a.PutStr(attrs.ReasonKey, string(primary))
	reasons := a.PutEmptySlice(attrs.ReasonsKey)
	for _, f := range findings {
		reasons.AppendEmpty().SetStr(string(f.Reason))
	}
	if info.Side != attrs.SideNone {
		a.PutStr(attrs.ReasonSideKey, string(info.Side))
	}
	lr.Body().SetStr(fileMessage(fr, g, findings))
	if g == nil {
		return
	}
	if g.source != "" {
		a.PutStr(attrs.FileSource, g.source)
	}
	a.PutInt(attrs.CertPosition, int64(g.pos))
	a.PutStr(attrs.CertRole, tlsinspect.StoredRole(g.certs[0]))
	putCertAttrs(a, g.certs)
}

// fileMessage is the record body: the file, the certificate and what is wrong.
func fileMessage(fr *fileResult, g *fileGroup, findings []tlsinspect.Finding) string {
	var b strings.Builder
	b.WriteString(fr.path)
	if g != nil && g.source != "" {
		b.WriteString(" [" + g.source + "]")
	}
	if g != nil {
		b.WriteString(" " + tlsinspect.Name(g.certs[0]))
	}
	b.WriteString(": ")
	switch {
	case fr.err != nil:
		b.WriteString(fr.err.Error())
	case len(findings) == 0:
		b.WriteString("ok, valid until " + g.certs[0].NotAfter.UTC().Format("2006-01-02"))
	default:
		b.WriteString(findings[0].Detail)
		for _, f := range findings[1:] {
			b.WriteString("; also: " + string(f.Reason) + " (" + f.Detail + ")")
		}
	}
	if fr.keysSkipped > 0 {
		fmt.Fprintf(&b, " (%d private key block(s) in the file, not read)", fr.keysSkipped)
	}
	if len(fr.problems) > 0 {
		b.WriteString(" (unreadable parts: " + strings.Join(fr.problems, "; ") + ")")
	}
	return b.String()
}

// fileMetrics records, per file: every certificate's time left, lifetime used
// and notAfter (by position in the file), the file's primary reason and
// whether it holds anything failing.
func (e *emitter) fileMetrics(results []fileResult) pmetric.Metrics {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := pmetric.NewMetrics()
	now := time.Now()
	ts := pcommon.NewTimestampFromTime(now)
	for i := range results {
		fr := &results[i]
		p := fr.entry.profile
		for pos, c := range fr.certs {
			e.recordCert(ts, now, c, p, int64(pos), metadata.MapAttributeCertRole[tlsinspect.StoredRole(c)])
		}
		e.mb.RecordTlsprobeResultDataPoint(ts, 1, p, string(fr.primary()))
		if fr.err == nil {
			e.mb.RecordTlsprobeSuccessDataPoint(ts, b2i(fr.success()), p)
		}
		rb := e.mb.NewResourceBuilder()
		rb.SetCertpulseFilePath(fr.path)
		e.fileRouting(fr.entry).setResource(rb)
		e.mb.Emit(metadata.WithResource(rb.Emit())).ResourceMetrics().MoveAndAppendTo(out.ResourceMetrics())
	}
	return out
}

// recordCert records the per-certificate expiry metrics.
func (e *emitter) recordCert(ts pcommon.Timestamp, now time.Time, c *x509.Certificate, profile string, pos int64, role metadata.AttributeCertRole) {
	e.mb.RecordTlsprobeCertTimeLeftDataPoint(ts, c.NotAfter.Sub(now).Seconds(), profile, pos, role)
	e.mb.RecordTlsprobeCertLifetimeUsedDataPoint(ts, lifetimeUsed(c, now), profile, pos, role)
	e.mb.RecordTlsprobeCertNotAfterDataPoint(ts, c.NotAfter.Unix(), profile, pos, role)
}

// lifetimeUsed is the share of c's validity period that has passed, 0..1.
func lifetimeUsed(c *x509.Certificate, now time.Time) float64 {
	total := c.NotAfter.Sub(c.NotBefore)
	if total <= 0 {
		return 1
	}
	return min(max(float64(now.Sub(c.NotBefore))/float64(total), 0), 1)
}
