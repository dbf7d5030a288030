package certmanagerprocessor // import "github.com/certpulse/certpulse/processor/certmanagerprocessor"

import (
	"crypto/x509"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/tlsinspect"
	"github.com/certpulse/certpulse/processor/certmanagerprocessor/internal/metadata"
)

// Source and format of the events (certpulse.lifecycle.source and .format).
const (
	sourceCertManager = "cert-manager"
	formatK8sObjects  = "k8sobjects"
)

// appendEvents adds one record per event to ld, shaped as the certlifecycle
// receiver shapes a hook sender's events (the correlator reads both alike),
// one resource per event's service.
func (p *certProcessor) appendEvents(ld plog.Logs, evs []lcEvent) {
	observed := pcommon.NewTimestampFromTime(p.now())
	for i := range evs {
		ev := &evs[i]
		rl := ld.ResourceLogs().AppendEmpty()
		ra := rl.Resource().Attributes()
		ra.PutStr(attrs.ServiceName, ev.state.service)
		if p.cfg.Environment != "" {
			ra.PutStr(attrs.DeploymentEnv, p.cfg.Environment)
		}
		ra.PutStr("k8s.namespace.name", ev.state.namespace)
		sl := rl.ScopeLogs().AppendEmpty()
		sl.Scope().SetName(metadata.ScopeName)
		fillRecord(sl.LogRecords().AppendEmpty(), ev, observed, p.cfg.Cluster)
	}
}

func fillRecord(lr plog.LogRecord, ev *lcEvent, observed pcommon.Timestamp, cluster string) {
	lr.SetTimestamp(pcommon.NewTimestampFromTime(ev.at))
	lr.SetObservedTimestamp(observed)
	lr.SetEventName(attrs.EventLifecyclePrefix + ev.typ)
	switch ev.typ {
	case attrs.LifecycleRenewalFailed, attrs.LifecycleRenewalOverdue:
		lr.SetSeverityNumber(plog.SeverityNumberError)
	default:
		lr.SetSeverityNumber(plog.SeverityNumberInfo)
	}
	lr.SetSeverityText(lr.SeverityNumber().String())
	lr.Body().SetStr(ev.message)
	a := lr.Attributes()
	a.PutStr(attrs.LifecycleType, ev.typ)
	a.PutStr(attrs.LifecycleEventID, ev.id)
	a.PutStr(attrs.LifecycleSource, sourceCertManager)
	a.PutStr(attrs.LifecycleFormat, formatK8sObjects)
	a.PutBool(attrs.LifecycleDuplicate, false)
	a.PutStr(attrs.LifecycleMessage, ev.message)
	if cluster != "" {
		a.PutStr(attrs.K8sClusterName, cluster)
	}
	if ev.state.secretName != "" {
		a.PutStr(attrs.LifecycleSecretName, ev.state.secretName)
	}
	notAfter := ev.notAfter
	if c := ev.leaf; c != nil {
		putLeaf(a, c)
		notAfter = c.NotAfter
	}
	if !notAfter.IsZero() {
		a.PutStr(attrs.TLSServerNotAfter, notAfter.UTC().Format(time.RFC3339))
	}
	if len(ev.state.dnsNames) > 0 {
		s := a.PutEmptySlice(attrs.SANs)
		for _, n := range ev.state.dnsNames {
			s.AppendEmpty().SetStr(n)
		}
	}
}

// putLeaf records the issued leaf as certlifecycle records a hook sender's
// certificate: the correlator expects it on the endpoints after a renewal.
func putLeaf(a pcommon.Map, c *x509.Certificate) {
	// The same forms tlsprobe records, so that the correlator matches
	// them against what the endpoints serve.
	a.PutStr(attrs.TLSServerHash, tlsinspect.CertSHA256(c))
	a.PutStr(attrs.SPKISHA256, tlsinspect.SPKIPin(c))
	a.PutStr(attrs.CertSerial, c.SerialNumber.Text(16))
	a.PutStr(attrs.TLSServerSubject, c.Subject.String())
	a.PutStr(attrs.TLSServerIssuer, c.Issuer.String())
	a.PutStr(attrs.TLSServerNotBefore, c.NotBefore.UTC().Format(time.RFC3339))
}
