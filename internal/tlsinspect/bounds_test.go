package tlsinspect_test

import (
	"context"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// TestCancelBoundsRevocationFetches: cancelling the probe's context (as
// shutdown does) ends an OCSP fetch stalled on a tarpit responder at once,
// instead of after the OCSP timeout.
func TestCancelBoundsRevocationFetches(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	ep, _ := lab.Endpoint("ocsp-timeout")
	o := testOptions()
	o.Timeout, o.OCSP.Timeout = 10*time.Second, 8*time.Second
	in := tlsinspect.New(o)
	t.Cleanup(in.Close)
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	start := time.Now()
	in.Inspect(ctx, labTarget(lab, ep))
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Inspect ran %s after its context ended at 500ms: revocation fetches ignore the probe's context", d.Round(time.Millisecond))
	}
}

// TestTimeoutBoundsRevocationFetches: one `timeout` bounds the whole probe,
// OCSP included, even when ocsp.timeout is longer.
func TestTimeoutBoundsRevocationFetches(t *testing.T) {
	lab, err := faultlab.Start()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(lab.Close)
	ep, _ := lab.Endpoint("ocsp-timeout")
	o := testOptions()
	o.Timeout, o.OCSP.Timeout = 600*time.Millisecond, 8*time.Second
	in := tlsinspect.New(o)
	t.Cleanup(in.Close)
	start := time.Now()
	in.Inspect(context.Background(), labTarget(lab, ep))
	if d := time.Since(start); d > 3*time.Second {
		t.Fatalf("Inspect took %s with timeout 600ms", d.Round(time.Millisecond))
	}
}
