package certmanagerprocessor

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"math/big"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"
	"go.opentelemetry.io/collector/pdata/plog"
	"go.opentelemetry.io/collector/processor/processortest"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/tlsinspect"
	"github.com/certpulse/certpulse/processor/certmanagerprocessor/internal/metadata"
)

// watchRecords is a batch as the k8sobjects receiver (watch mode) makes it:
// one record per watch event, the body {type, object}.
func watchRecords(events ...map[string]any) plog.Logs {
	ld := plog.NewLogs()
	sl := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty()
	sl.Scope().SetName("github.com/open-telemetry/opentelemetry-collector-contrib/receiver/k8sobjectsreceiver")
	for _, ev := range events {
		lr := sl.LogRecords().AppendEmpty()
		if err := lr.Body().SetEmptyMap().FromRaw(ev); err != nil {
			panic(err)
		}
	}
	return ld
}

func certificate(typ string, revision int, status map[string]any) map[string]any {
	st := map[string]any{"renewalTime": time.Now().Add(720 * time.Hour).UTC().Format(time.RFC3339)}
	if revision > 0 {
		st["revision"] = revision
	}
	for k, v := range status {
		st[k] = v
	}
	return map[string]any{"type": typ, "object": map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "Certificate",
		"metadata": map[string]any{"name": "web", "namespace": "shop", "uid": "uid-1",
			"ownerReferences": []any{map[string]any{"kind": "Ingress", "name": "storefront"}}},
		"spec":   map[string]any{"secretName": "web-tls", "dnsNames": []any{"shop.example.test"}},
		"status": st,
	}}
}

func request(revision string, leaf *x509.Certificate) map[string]any {
	var pemBytes []byte
	if leaf != nil {
		pemBytes = pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: leaf.Raw})
	}
	return map[string]any{"type": "MODIFIED", "object": map[string]any{
		"apiVersion": "cert-manager.io/v1", "kind": "CertificateRequest",
		"metadata": map[string]any{"name": "web-3", "namespace": "shop", "uid": "uid-cr",
			"annotations": map[string]any{annCertName: "web", annCertRevision: revision}},
		"status": map[string]any{"certificate": base64.StdEncoding.EncodeToString(pemBytes),
			"conditions": []any{map[string]any{"type": "Ready", "status": "True"}}},
	}}
}

func selfSigned(t *testing.T) *x509.Certificate {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tpl := &x509.Certificate{SerialNumber: big.NewInt(0xbeef), Subject: pkix.Name{CommonName: "shop.example.test"}, DNSNames: []string{"shop.example.test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(90 * 24 * time.Hour)}
	der, err := x509.CreateCertificate(rand.Reader, tpl, tpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	c, _ := x509.ParseCertificate(der)
	return c
}

func newTestProcessor(t *testing.T) (*certProcessor, *consumertest.LogsSink) {
	t.Helper()
	sink := new(consumertest.LogsSink)
	p, err := newProcessor(createDefaultConfig(), processortest.NewNopSettings(metadata.Type), sink)
	if err != nil {
		t.Fatal(err)
	}
	return p, sink
}

func lifecycleOut(sink *consumertest.LogsSink) []logtest.Record {
	var out []logtest.Record
	for _, ld := range sink.AllLogs() {
		for _, r := range logtest.Records(ld) {
			if r.Attr(attrs.LifecycleType) != "" {
				out = append(out, r)
			}
		}
	}
	return out
}

func TestRenewalFromWatchedObjects(t *testing.T) {
	p, sink := newTestProcessor(t)
	ctx := context.Background()
	leaf := selfSigned(t)
	for _, ld := range []plog.Logs{
		watchRecords(certificate("ADDED", 2, nil)), // first sight after a start: nothing
		watchRecords(request("3", leaf)),           // the new leaf, signed
		watchRecords(certificate("MODIFIED", 3, map[string]any{"notAfter": leaf.NotAfter.UTC().Format(time.RFC3339)})),
		watchRecords(certificate("MODIFIED", 3, nil)), // a status touch: nothing new
	} {
		if err := p.consumeLogs(ctx, ld); err != nil {
			t.Fatal(err)
		}
	}
	got := lifecycleOut(sink)
	if len(got) != 1 {
		t.Fatalf("%d lifecycle events, want 1 (renewed): %v", len(got), got)
	}
	r := got[0]
	for k, want := range map[string]string{
		attrs.LifecycleType:       attrs.LifecycleRenewed,
		attrs.LifecycleSource:     sourceCertManager,
		attrs.LifecycleSecretName: "web-tls",
		attrs.TLSServerHash:       tlsinspect.CertSHA256(leaf),
		attrs.CertSerial:          "beef",
		attrs.SANs:                `["shop.example.test"]`,
	} {
		if v := r.Attr(k); v != want {
			t.Errorf("%s = %q, want %q", k, v, want)
		}
	}
	if r.EventName() != attrs.EventLifecyclePrefix+attrs.LifecycleRenewed || r.ResAttr(attrs.ServiceName) != "storefront" {
		t.Errorf("event %s for service %q, want renewed for storefront (the owning Ingress)", r.EventName(), r.ResAttr(attrs.ServiceName))
	}
	// The object records themselves are replaced by the events.
	for _, ld := range sink.AllLogs() {
		for _, rr := range logtest.Records(ld) {
			if rr.Attr(attrs.LifecycleType) == "" {
				t.Errorf("a k8sobjects record was passed on: %v", rr.Body().AsRaw())
			}
		}
	}
}

func TestOtherRecordsPassUntouched(t *testing.T) {
	p, sink := newTestProcessor(t)
	ld := plog.NewLogs()
	lrs := ld.ResourceLogs().AppendEmpty().ScopeLogs().AppendEmpty().LogRecords()
	lrs.AppendEmpty().Body().SetStr("a probe result")
	_ = lrs.AppendEmpty().Body().SetEmptyMap().FromRaw(map[string]any{"type": "ADDED", "object": map[string]any{"apiVersion": "v1", "kind": "Event"}})
	// A cert-manager object that cannot be read is passed on, not lost.
	_ = lrs.AppendEmpty().Body().SetEmptyMap().FromRaw(map[string]any{"type": "ADDED", "object": map[string]any{"apiVersion": "cert-manager.io/v1", "kind": "Certificate", "metadata": map[string]any{"name": "x"}}})
	if err := p.consumeLogs(context.Background(), ld); err != nil {
		t.Fatal(err)
	}
	if n := sink.LogRecordCount(); n != 3 {
		t.Fatalf("%d records passed on, want 3", n)
	}
}

func TestOverdueFromTheClock(t *testing.T) {
	p, sink := newTestProcessor(t)
	past := time.Now().Add(-3 * time.Hour).UTC().Format(time.RFC3339)
	if err := p.consumeLogs(context.Background(), watchRecords(certificate("ADDED", 2, map[string]any{"renewalTime": past}))); err != nil {
		t.Fatal(err)
	}
	got := lifecycleOut(sink)
	if len(got) != 1 || got[0].Attr(attrs.LifecycleType) != attrs.LifecycleRenewalOverdue {
		t.Fatalf("want one renewal_overdue on first sight of a Certificate whose renewalTime passed 3 h ago, got %v", got)
	}
	if evs := p.overdue(time.Now()); len(evs) != 0 {
		t.Errorf("reported again by the periodic check: %v", evs)
	}
}

func TestMaxCertificates(t *testing.T) {
	p, sink := newTestProcessor(t)
	p.cfg.MaxCertificates = 1
	second := certificate("ADDED", 1, nil)
	second["object"].(map[string]any)["metadata"].(map[string]any)["name"] = "other"
	for _, ev := range []map[string]any{certificate("ADDED", 1, nil), second} {
		if err := p.consumeLogs(context.Background(), watchRecords(ev)); err != nil {
			t.Fatal(err)
		}
	}
	if len(p.certs) != 1 || sink.LogRecordCount() != 1 {
		t.Fatalf("tracked %d (want 1); passed on %d records (want the untracked one's)", len(p.certs), sink.LogRecordCount())
	}
}
