package tlsinspect_test

import (
	"context"
	"net/netip"
	"strings"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// TestOneTimeoutBoundsEverything: an OCSP fetch stalled on a tarpit
// responder ends with the probe: when its context ends (shutdown), and at
// the whole-probe timeout even when ocsp.timeout is longer.
func TestOneTimeoutBoundsEverything(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	ep, _ := lab.Endpoint("ocsp-timeout")
	for _, tc := range []struct {
		name              string
		probeTimeout, ctx time.Duration
	}{
		{"context cancelled at 500ms", 10 * time.Second, 500 * time.Millisecond},
		{"timeout 600ms", 600 * time.Millisecond, time.Minute},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := testOptions()
			o.Timeout, o.OCSP.Timeout = tc.probeTimeout, 8*time.Second
			in := tlsinspect.New(o)
			t.Cleanup(in.Close)
			ctx, cancel := context.WithTimeout(context.Background(), tc.ctx)
			defer cancel()
			start := time.Now()
			in.Inspect(ctx, labTarget(lab, ep))
			if d := time.Since(start); d > 3*time.Second {
				t.Fatalf("Inspect took %s: revocation fetches outlive the probe", d.Round(time.Millisecond))
			}
		})
	}
}

// TestPrivateFetchDenied: OCSP, CRL and AIA URLs come from certificates the
// probed server chooses. Without allow_private_fetch_networks, a responder on
// a loopback address is refused at dial time and reported as what it is; with
// the lab's network allowed, the same endpoint is healthy.
func TestPrivateFetchDenied(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	ep, _ := lab.Endpoint("healthy")
	o := testOptions()
	o.AllowPrivateFetch = nil
	in := tlsinspect.New(o)
	t.Cleanup(in.Close)
	r := in.Inspect(context.Background(), labTarget(lab, ep))[0]
	if r.Primary() != attrs.ReasonOCSPError || !strings.Contains(r.Findings[0].Detail, "127.0.0.1 denied by policy") {
		t.Fatalf("loopback OCSP responder: findings %+v, want ocsp_error naming the denied address", r.Findings)
	}
	if r.CRLStatus != tlsinspect.CRLError {
		t.Errorf("loopback CRL: status %q, want error", r.CRLStatus)
	}
	// A missing intermediate cannot be fetched from a loopback AIA URL
	// either: still the server's incomplete chain, and the record says why
	// the issuer could not be fetched.
	mi, _ := lab.Endpoint("missing-intermediate")
	r = in.Inspect(context.Background(), labTarget(lab, mi))[0]
	if r.Primary() != attrs.ReasonMissingIntermediate || !strings.Contains(r.Findings[0].Detail, "denied by policy") {
		t.Errorf("loopback AIA: findings %+v, want missing_intermediate naming the denied fetch", r.Findings)
	}

	o.AllowPrivateFetch = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	allowed := tlsinspect.New(o)
	t.Cleanup(allowed.Close)
	if r := allowed.Inspect(context.Background(), labTarget(lab, ep))[0]; len(r.Findings) != 0 {
		t.Fatalf("with 127.0.0.0/8 allowed: findings %+v", r.Findings)
	}
}
