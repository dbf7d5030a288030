package k8s

import (
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/logtest"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// TestCertManagerLifecycle installs cert-manager's CRDs in the API server
// and writes its objects and their status as cert-manager would (no
// cert-manager runs: the test is its controller). The agent, with the
// shipped config (k8sobjects/certmanager and the certmanager processor),
// turns them into lifecycle events: issued, renewed with the new leaf,
// renewal_failed and renewal_overdue, which the correlator opens as
// incidents and a renewal resolves; a renewal triggers the service's probes
// at once. TestDiscovery, before it, ran the same config on a cluster
// without the CRDs: the agent started and discovered.
func TestCertManagerLifecycle(t *testing.T) {
	c := getCluster(t)
	bin := need(t, "CERTPULSE_BIN", "the built distribution")
	applyServerSide(t, c, "single-tier", kustomize(t, c, "single-tier"))
	crds := filepath.Join(repo(), "..", "shared", "cert-manager", "crds")
	if _, err := os.Stat(crds); err != nil {
		t.Fatalf("cert-manager CRDs: %v (../shared/cert-manager/crds beside the repository)", err)
	}
	c.kubectlT(t, "apply", "--server-side", "-f", crds)
	c.kubectlT(t, "wait", "--for=condition=Established", "--timeout=60s", "crd/certificates.cert-manager.io", "crd/certificaterequests.cert-manager.io")

	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	dir := t.TempDir()
	roots := filepath.Join(dir, "roots.pem")
	if err := os.WriteFile(roots, faultlab.PEM(lab.Root.Cert), 0o600); err != nil {
		t.Fatal(err)
	}
	// The service's endpoint, probed every 60 s (the shipped interval):
	// a probe between rounds is the renewal's trigger.
	const host = "web.certs.certpulse.test"
	srv := &sniServer{seen: map[string]int{}}
	addr := labIP + ":8444"
	serveTLS(t, addr, srv, map[string]tls.Certificate{host: labCert(t, lab, host)}, host)
	if err := os.WriteFile(filepath.Join(dir, "targets.yaml"), []byte(fmt.Sprintf(
		"targets:\n  - endpoint: %s\n    server_name: %s\n    service: web\n    environment: lab\n", addr, host)), 0o600); err != nil {
		t.Fatal(err)
	}
	// The receiver lists, then watches: a change made before its watch is
	// open is never an event. Wait until the API server holds the agent's
	// watches (the controller manager's garbage collector may hold its own).
	type watched struct{ group, resource string }
	kinds := []watched{{"cert-manager.io", "certificates"}, {"cert-manager.io", "certificaterequests"}}
	base := map[watched]int{}
	for _, k := range kinds {
		base[k] = c.watches(t, k.group, k.resource)
	}
	a := runAgent(t, c, bin, dir, "60s", roots)
	eventually(t, 30*time.Second, func() string {
		a.alive()
		for _, k := range kinds {
			if c.watches(t, k.group, k.resource) <= base[k] {
				return "the agent does not watch " + k.resource + " yet"
			}
		}
		return ""
	})

	ns := "certs"
	applyServerSide(t, c, "certificate", []byte(fmt.Sprintf(`
apiVersion: v1
kind: Namespace
metadata: {name: %[1]s}
---
apiVersion: cert-manager.io/v1
kind: Certificate
metadata:
  name: web
  namespace: %[1]s
  annotations: {certpulse.dev/service: web}
spec:
  secretName: web-tls
  dnsNames: [%[2]s]
  issuerRef: {name: lab, kind: Issuer}
`, ns, host)))

	events := func(typ string) []logtest.Record {
		var out []logtest.Record
		for _, r := range a.sink.ByName()["loki"] {
			if r.EventName() == attrs.EventLifecyclePrefix+typ && r.Attr(attrs.LifecycleSource) == "cert-manager" {
				out = append(out, r)
			}
		}
		return out
	}
	incident := func(reason attrs.Reason, state attrs.State) bool {
		for _, r := range logtest.Named(a.sink.ByName()["loki"], attrs.EventIncident) {
			if r.Attr(attrs.ReasonKey) == string(reason) && r.Attr(attrs.IncidentState) == string(state) && r.ResAttr(attrs.ServiceName) == "web" {
				return true
			}
		}
		return false
	}
	waitEvent := func(typ string, n int) logtest.Record {
		t.Helper()
		eventually(t, 30*time.Second, func() string {
			a.alive()
			if got := len(events(typ)); got < n {
				return fmt.Sprintf("%d %s events from cert-manager objects, want %d", got, typ, n)
			}
			return ""
		})
		return events(typ)[n-1]
	}
	now := time.Now().UTC()
	setStatus := func(status map[string]any) {
		t.Helper()
		b, _ := json.Marshal(map[string]any{"status": status})
		c.kubectlT(t, "patch", "certificate", "web", "-n", ns, "--subresource=status", "--type=merge", "-p", string(b))
	}
	ready := []map[string]any{{"type": "Ready", "status": "True", "reason": "Ready", "message": "Certificate is up to date and has not expired", "lastTransitionTime": now.Format(time.RFC3339)}}
	ts := func(d time.Duration) string { return now.Add(d).Format(time.RFC3339) }

	// 1. First issuance.
	setStatus(map[string]any{"revision": 1, "conditions": ready, "notBefore": ts(-time.Hour), "notAfter": ts(90 * 24 * time.Hour), "renewalTime": ts(60 * 24 * time.Hour)})
	ev := waitEvent(attrs.LifecycleIssued, 1)
	if ev.Attr(attrs.LifecycleSecretName) != "web-tls" || ev.Attr(attrs.SANs) != `["`+host+`"]` || ev.ResAttr(attrs.ServiceName) != "web" {
		t.Errorf("issued: secret %q, SANs %q, service %q", ev.Attr(attrs.LifecycleSecretName), ev.Attr(attrs.SANs), ev.ResAttr(attrs.ServiceName))
	}

	// 2. A failed renewal: cert-manager sets lastFailureTime and Issuing
	// False (Ready stays True: the old certificate is still good).
	setStatus(map[string]any{"lastFailureTime": ts(0), "failedIssuanceAttempts": 1, "conditions": append(ready,
		map[string]any{"type": "Issuing", "status": "False", "reason": "Failed", "message": "The certificate request has failed to complete and will be retried: ACME order failed", "lastTransitionTime": now.Format(time.RFC3339)})})
	if ev := waitEvent(attrs.LifecycleRenewalFailed, 1); !strings.Contains(ev.Attr(attrs.LifecycleMessage), "ACME order failed") {
		t.Errorf("renewal_failed without cert-manager's message: %q", ev.Attr(attrs.LifecycleMessage))
	}

	// 3. renewalTime passed two hours ago, still revision 1: overdue.
	setStatus(map[string]any{"renewalTime": ts(-2 * time.Hour)})
	waitEvent(attrs.LifecycleRenewalOverdue, 1)
	eventually(t, 30*time.Second, func() string {
		for _, reason := range []attrs.Reason{attrs.ReasonRenewalFailed, attrs.ReasonRenewalOverdue} {
			if !incident(reason, attrs.StateOpened) {
				return "no " + string(reason) + " incident opened for web"
			}
		}
		return ""
	})

	// 4. The renewal: the CertificateRequest for revision 2 is signed
	// (its status.certificate), then the Certificate reaches revision 2.
	leaf := labCert(t, lab, host)
	b64 := base64.StdEncoding.EncodeToString(faultlab.PEM(leaf.Leaf, lab.Inter.Cert))
	applyServerSide(t, c, "certificaterequest", []byte(fmt.Sprintf(`
apiVersion: cert-manager.io/v1
kind: CertificateRequest
metadata:
  name: web-2
  namespace: %s
  annotations: {cert-manager.io/certificate-name: web, cert-manager.io/certificate-revision: "2"}
spec:
  request: %s
  issuerRef: {name: lab, kind: Issuer}
`, ns, base64.StdEncoding.EncodeToString([]byte("a CSR")))))
	b, _ := json.Marshal(map[string]any{"status": map[string]any{"certificate": b64, "conditions": []map[string]any{
		{"type": "Approved", "status": "True", "reason": "cert-manager.io", "lastTransitionTime": now.Format(time.RFC3339)},
		{"type": "Ready", "status": "True", "reason": "Issued", "lastTransitionTime": now.Format(time.RFC3339)}}}})
	c.kubectlT(t, "patch", "certificaterequest", "web-2", "-n", ns, "--subresource=status", "--type=merge", "-p", string(b))
	time.Sleep(time.Second) // the request's watch event first, as in a cluster
	before := srv.count(host)
	setStatus(map[string]any{"revision": 2, "lastFailureTime": nil, "failedIssuanceAttempts": nil, "conditions": ready,
		"notAfter": leaf.Leaf.NotAfter.UTC().Format(time.RFC3339), "renewalTime": ts(60 * 24 * time.Hour)})
	ev = waitEvent(attrs.LifecycleRenewed, 1)
	if got, want := ev.Attr(attrs.TLSServerHash), tlsinspect.CertSHA256(leaf.Leaf); got != want {
		t.Errorf("renewed: tls.server.hash.sha256 %q, want the signed leaf's %q", got, want)
	}
	if got, want := ev.Attr(attrs.CertSerial), leaf.Leaf.SerialNumber.Text(16); got != want {
		t.Errorf("renewed: serial %q, want %q", got, want)
	}
	eventually(t, 20*time.Second, func() string {
		if srv.count(host) == before {
			return "the renewal did not trigger a probe of web (60 s interval)"
		}
		for _, reason := range []attrs.Reason{attrs.ReasonRenewalFailed, attrs.ReasonRenewalOverdue} {
			if !incident(reason, attrs.StateResolved) {
				return "the renewal did not resolve the " + string(reason) + " incident"
			}
		}
		return ""
	})

	// 5. Deleted: retired.
	c.kubectlT(t, "delete", "certificate", "web", "-n", ns)
	waitEvent(attrs.LifecycleRetired, 1)
	for _, typ := range []string{attrs.LifecycleIssued, attrs.LifecycleRenewed, attrs.LifecycleRenewalFailed, attrs.LifecycleRenewalOverdue} {
		if n := len(events(typ)); n != 1 {
			t.Errorf("%d %s events, want exactly 1 (status updates that change nothing must not repeat them)", n, typ)
		}
	}
}
