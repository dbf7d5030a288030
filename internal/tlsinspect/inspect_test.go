package tlsinspect_test

import (
	"context"
	"crypto/tls"
	"net/netip"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func labTarget(lab *faultlab.Lab, ep faultlab.Endpoint) tlsinspect.Target {
	p := tlsinspect.Profile{Name: "lab", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, Roots: lab.RootPool()}
	if ep.Profile == faultlab.MTLSProfile {
		p.Name = ep.Profile
		p.TLS.Certificates = []tls.Certificate{lab.ClientTLSCertificate()}
	}
	return tlsinspect.Target{Endpoint: ep.Address, ServerName: ep.ServerName, StartTLS: ep.StartTLS, Pins: ep.Pins, Profiles: []tlsinspect.Profile{p}}
}

func testOptions() tlsinspect.Options {
	o := tlsinspect.DefaultOptions()
	o.AllowPrivateFetch = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")} // the lab's responders
	o.Timeout = 2 * time.Second
	o.OCSP.Timeout = 500 * time.Millisecond
	return o
}

// TestLabReasons probes every lab endpoint and checks the primary reason,
// and that healthy endpoints have no finding at all.
func TestLabReasons(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	in := tlsinspect.New(testOptions())
	t.Cleanup(in.Close)
	for _, ep := range lab.Endpoints {
		t.Run(ep.Name, func(t *testing.T) {
			t.Parallel()
			res := in.Inspect(context.Background(), labTarget(lab, ep))
			if len(res) != 1 {
				t.Fatalf("got %d results", len(res))
			}
			r := res[0]
			if got := r.Primary(); got != ep.Want {
				t.Fatalf("primary reason = %s, want %s; findings: %+v", got, ep.Want, r.Findings)
			}
			if ep.Want == attrs.ReasonOK {
				if len(r.Findings) != 0 || !r.Success() || !r.Established {
					t.Fatalf("healthy endpoint has findings %+v (established=%v)", r.Findings, r.Established)
				}
				if r.OCSP.Status != attrs.OCSPGood {
					t.Fatalf("healthy endpoint OCSP status %q", r.OCSP.Status)
				}
			}
			if ep.Want != attrs.ReasonOK && r.Findings[0].Detail == "" {
				t.Fatal("finding without detail")
			}
		})
	}
}

func TestChainCapturedWhenValidationFails(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	in := tlsinspect.New(testOptions())
	defer in.Close()
	for _, name := range []string{"expired-leaf", "unknown-ca", "self-signed", "tls11-only", "hostname-mismatch"} {
		ep, _ := lab.Endpoint(name)
		r := in.Inspect(context.Background(), labTarget(lab, ep))[0]
		if len(r.Chain) == 0 {
			t.Errorf("%s: chain not captured", name)
		}
		if r.Success() {
			t.Errorf("%s: reported success", name)
		}
	}
	// The oversized chain is truncated to the bound.
	ep, _ := lab.Endpoint("oversized-chain")
	r := in.Inspect(context.Background(), labTarget(lab, ep))[0]
	if !r.ChainTruncated || len(r.Chain) != in.Options().MaxChainCerts {
		t.Errorf("oversized chain: truncated=%v len=%d", r.ChainTruncated, len(r.Chain))
	}
}

func TestProfilesYieldOwnResults(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	in := tlsinspect.New(testOptions())
	defer in.Close()
	ep, _ := lab.Endpoint("healthy")
	tg := labTarget(lab, ep)
	tg.Profiles = append(tg.Profiles,
		tlsinspect.Profile{Name: "system-only", TLS: &tls.Config{MinVersion: tls.VersionTLS12}, Roots: nil},
		tlsinspect.Profile{Name: "tls13-only", TLS: &tls.Config{MinVersion: tls.VersionTLS13}, Roots: lab.RootPool()},
		tlsinspect.Profile{Name: "rsa-only-ciphers", TLS: &tls.Config{MinVersion: tls.VersionTLS12, MaxVersion: tls.VersionTLS12, CipherSuites: []uint16{tls.TLS_ECDHE_RSA_WITH_AES_128_GCM_SHA256}}, Roots: lab.RootPool()},
	)
	res := in.Inspect(context.Background(), tg)
	want := []attrs.Reason{attrs.ReasonOK, attrs.ReasonUnknownCA, attrs.ReasonOK, attrs.ReasonCipherMismatch}
	for i, r := range res {
		if r.Primary() != want[i] {
			t.Errorf("profile %s: %s, want %s (%+v)", r.Profile, r.Primary(), want[i], r.Findings)
		}
	}
	// The TLS 1.1 server under a profile that allows 1.0+ is fine.
	ep, _ = lab.Endpoint("tls11-only")
	tg = labTarget(lab, ep)
	tg.Profiles[0].TLS.MinVersion = tls.VersionTLS10
	if r := in.Inspect(context.Background(), tg)[0]; r.Primary() != attrs.ReasonOK || r.Version != tls.VersionTLS11 {
		t.Errorf("legacy profile against tls11-only: %s %x %+v", r.Primary(), r.Version, r.Findings)
	}
}

func TestContextCancelStopsProbe(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	o := testOptions()
	o.Timeout = time.Minute
	in := tlsinspect.New(o)
	defer in.Close()
	ep, _ := lab.Endpoint("tarpit")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	start := time.Now()
	r := in.Inspect(ctx, labTarget(lab, ep))[0]
	if r.Primary() != attrs.ReasonHandshakeTimeout {
		t.Fatalf("got %s", r.Primary())
	}
	if time.Since(start) > 30*time.Second {
		t.Fatal("probe ignored context cancellation")
	}
}

// TestKeyExchangeAndHelloRetry: the negotiated group and whether the server
// asked for another key share, under Go's default groups and under a
// post-quantum-only profile (Go sends a key share for its first group only).
func TestKeyExchangeAndHelloRetry(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	defer lab.Close()
	in := tlsinspect.New(testOptions())
	defer in.Close()
	pq := []tls.CurveID{tls.X25519MLKEM768}
	for _, tc := range []struct {
		endpoint   string
		curves     []tls.CurveID
		want       attrs.Reason
		curve      tls.CurveID
		helloRetry bool
		detail     string
	}{
		{"healthy", nil, attrs.ReasonOK, tls.X25519MLKEM768, false, ""},
		{"hello-retry", nil, attrs.ReasonOK, tls.CurveP384, true, ""},
		{"healthy", pq, attrs.ReasonOK, tls.X25519MLKEM768, false, ""},
		{"hello-retry", pq, attrs.ReasonCipherMismatch, 0, false, "no key exchange group in common: the server picks P384, this client profile offers only X25519MLKEM768"},
		{"hello-retry", []tls.CurveID{tls.X25519, tls.CurveP384}, attrs.ReasonOK, tls.CurveP384, true, ""},
	} {
		ep, _ := lab.Endpoint(tc.endpoint)
		target := labTarget(lab, ep)
		target.Profiles[0].TLS.CurvePreferences = tc.curves
		r := in.Inspect(context.Background(), target)[0]
		if r.Primary() != tc.want || (tc.want == attrs.ReasonOK && (r.Curve != tc.curve || r.HelloRetry != tc.helloRetry)) {
			t.Errorf("%s with groups %v: reason %s, curve %v, hello retry %v; want %s, %v, %v (findings %+v)", tc.endpoint, tc.curves, r.Primary(), r.Curve, r.HelloRetry, tc.want, tc.curve, tc.helloRetry, r.Findings)
		}
		if tc.detail != "" && (len(r.Findings) == 0 || r.Findings[0].Detail != tc.detail) {
			t.Errorf("%s with groups %v: detail %+v, want %q", tc.endpoint, tc.curves, r.Findings, tc.detail)
		}
	}
}

// TestLeafOnlyWithFetchRefused: a server on an internal PKI sends only its
// leaf, and the default fetch policy refuses the AIA fetch to a private
// address. The chain is incomplete whatever AIA says: a server fault
// (missing_intermediate), not the client's trust store (unknown_ca), with
// the refused fetch in the detail.
func TestLeafOnlyWithFetchRefused(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	o := testOptions()
	o.AllowPrivateFetch = nil // the default
	in := tlsinspect.New(o)
	t.Cleanup(in.Close)
	for _, ep := range lab.Endpoints {
		if ep.Name != "missing-intermediate" {
			continue
		}
		r := in.Inspect(context.Background(), labTarget(lab, ep))[0]
		if got := r.Primary(); got != attrs.ReasonMissingIntermediate {
			t.Fatalf("primary reason = %s, want missing_intermediate; findings: %+v", got, r.Findings)
		}
		if d := r.Findings[0].Detail; !strings.Contains(d, "could not be fetched") {
			t.Errorf("detail does not say the issuer could not be fetched: %s", d)
		}
		return
	}
	t.Fatal("no missing-intermediate endpoint in the lab")
}

// AddFinding keeps the one precedence rule: a finding derived after the
// inspection lands by rank, and a repeated code is kept once.
func TestAddFindingPrecedence(t *testing.T) {
	r := tlsinspect.Result{Findings: []tlsinspect.Finding{{Reason: attrs.ReasonExpiringSoon}}}
	r.AddFinding(tlsinspect.Finding{Reason: attrs.ReasonResumptionFailed, Detail: "node a"})
	r.AddFinding(tlsinspect.Finding{Reason: attrs.ReasonExpiredLeaf})
	r.AddFinding(tlsinspect.Finding{Reason: attrs.ReasonResumptionFailed, Detail: "node b"})
	var got []attrs.Reason
	for _, f := range r.Findings {
		got = append(got, f.Reason)
	}
	for i := 1; i < len(got); i++ {
		if attrs.Rank(got[i-1]) > attrs.Rank(got[i]) {
			t.Errorf("findings %v not by rank", got)
		}
	}
	if len(got) != 3 {
		t.Errorf("findings %v, want each code once", got)
	}
	if r.Primary() != attrs.ReasonExpiredLeaf {
		t.Errorf("primary %s, want expired_leaf", r.Primary())
	}
}
