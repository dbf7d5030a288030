package certlifecyclereceiver // import "github.com/certpulse/certpulse/receiver/certlifecyclereceiver"

import (
	"fmt"
	"strings"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/receiver/certlifecyclereceiver/internal/metadata"
)

// buildLogs turns events into one log record each, grouped into one resource
// per routing key set (service, environment, region).
func buildLogs(events []Event, dup []bool, received time.Time) plog.Logs {
	ld := plog.NewLogs()
	groups := map[[3]string]plog.LogRecordSlice{}
	observed := pcommon.NewTimestampFromTime(received)
	for i := range events {
		e := &events[i]
		k := [3]string{e.Data.Service, e.Data.Environment, e.Data.Region}
		lrs, ok := groups[k]
		if !ok {
			rl := ld.ResourceLogs().AppendEmpty()
			ra := rl.Resource().Attributes()
			ra.PutStr(attrs.ServiceName, e.Data.Service)
			if e.Data.Environment != "" {
				ra.PutStr(attrs.DeploymentEnv, e.Data.Environment)
			}
			if e.Data.Region != "" {
				ra.PutStr(attrs.CloudRegion, e.Data.Region)
			}
			sl := rl.ScopeLogs().AppendEmpty()
			sl.Scope().SetName(metadata.ScopeName)
			lrs = sl.LogRecords()
			groups[k] = lrs
		}
		fillRecord(lrs.AppendEmpty(), e, dup[i], observed, received)
	}
	return ld
}

func fillRecord(lr plog.LogRecord, e *Event, dup bool, observed pcommon.Timestamp, received time.Time) {
	t := e.Time
	if t.IsZero() {
		t = received
	}
	lr.SetTimestamp(pcommon.NewTimestampFromTime(t))
	lr.SetObservedTimestamp(observed)
	lr.SetEventName(eventName(e.Type))
	switch e.Type {
	case attrs.LifecycleRenewalFailed, attrs.LifecycleRenewalOverdue, attrs.LifecycleDeployFailed:
		lr.SetSeverityNumber(plog.SeverityNumberError)
	case attrs.LifecycleRevoked:
		lr.SetSeverityNumber(plog.SeverityNumberWarn)
	default:
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
	}
	lr.SetSeverityText(lr.SeverityNumber().String())
	lr.Body().SetStr(summary(e))
	a := lr.Attributes()
	a.PutStr(attrs.LifecycleType, e.Type)
	a.PutStr(attrs.LifecycleEventID, e.ID)
	a.PutStr(attrs.LifecycleSource, e.Source)
	a.PutStr(attrs.LifecycleFormat, e.Format)
	a.PutBool(attrs.LifecycleDuplicate, dup)
	d := &e.Data
	put := func(k, v string) {
		if v != "" {
			a.PutStr(k, v)
		}
	}
	put(attrs.K8sClusterName, d.Cluster)
	put(attrs.LifecycleJobID, d.JobID)
	put(attrs.LifecyclePipelineStage, d.PipelineStage)
	put(attrs.LifecycleArtifactVersion, d.ArtifactVersion)
	put(attrs.LifecycleMessage, d.Message)
	put(attrs.LifecycleIncidentID, d.IncidentID)
	put(attrs.LifecycleAttestation, d.Attestation)
	if len(d.Endpoints) > 0 {
		s := a.PutEmptySlice(attrs.LifecycleEndpoints)
		for _, ep := range d.Endpoints {
			s.AppendEmpty().SetStr(ep)
		}
	}
	if w := d.Window; w != nil {
		if !w.Start.IsZero() {
			a.PutStr(attrs.LifecycleWindowStart, w.Start.UTC().Format(time.RFC3339))
		}
		if !w.End.IsZero() {
			a.PutStr(attrs.LifecycleWindowEnd, w.End.UTC().Format(time.RFC3339))
		}
	}
	if c := d.Certificate; c != nil {
		put(attrs.TLSServerHash, c.SHA256)
		put(attrs.SPKISHA256, c.SPKISHA256)
		put(attrs.CertSerial, c.Serial)
		put(attrs.TLSServerSubject, c.Subject)
		put(attrs.TLSServerIssuer, c.Issuer)
		if !c.NotBefore.IsZero() {
			a.PutStr(attrs.TLSServerNotBefore, c.NotBefore.UTC().Format(time.RFC3339))
		}
		if !c.NotAfter.IsZero() {
			a.PutStr(attrs.TLSServerNotAfter, c.NotAfter.UTC().Format(time.RFC3339))
		}
		if len(c.SANs) > 0 {
			s := a.PutEmptySlice(attrs.SANs)
			for _, n := range c.SANs {
				s.AppendEmpty().SetStr(n)
			}
		}
	}
}

// summary is the human-readable body.
func summary(e *Event) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", e.Data.Service, strings.ReplaceAll(e.Type, "_", " "))
	if c := e.Data.Certificate; c != nil {
		switch {
		case c.Subject != "":
			fmt.Fprintf(&b, ": certificate %s", c.Subject)
		case c.SHA256 != "":
			fmt.Fprintf(&b, ": certificate sha256:%.16s", c.SHA256)
		default:
			fmt.Fprintf(&b, ": certificate spki %.16s", c.SPKISHA256)
		}
		if !c.NotAfter.IsZero() {
			fmt.Fprintf(&b, " (notAfter %s)", c.NotAfter.UTC().Format("2006-01-02"))
		}
	}
	if e.Data.Environment != "" || e.Data.Region != "" {
		fmt.Fprintf(&b, " in %s", strings.Trim(e.Data.Environment+"/"+e.Data.Region, "/"))
	}
	if n := len(e.Data.Endpoints); n > 0 {
		fmt.Fprintf(&b, " on %d endpoint(s)", n)
	}
	if e.Data.ArtifactVersion != "" {
		fmt.Fprintf(&b, ", artifact %s", e.Data.ArtifactVersion)
	}
	if e.Data.JobID != "" {
		fmt.Fprintf(&b, ", job %s", e.Data.JobID)
	}
	if w := e.Data.Window; w != nil && !w.End.IsZero() {
		fmt.Fprintf(&b, ", until %s", w.End.UTC().Format(time.RFC3339))
	}
	if e.Data.Message != "" {
		fmt.Fprintf(&b, ": %s", e.Data.Message)
	}
	return b.String()
}
