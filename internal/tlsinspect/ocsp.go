package tlsinspect

import (
	"context"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"fmt"
	"time"

	"golang.org/x/crypto/ocsp"

	"github.com/certpulse/certpulse/internal/attrs"
)

// ocspAnswer is a (cached) responder answer.
type ocspAnswer struct {
	status  string
	detail  string
	latency time.Duration
	revoked time.Time
}

func ocspKey(leaf, issuer *x509.Certificate) string {
	sum := sha256.Sum256(issuer.RawSubjectPublicKeyInfo)
	return hex.EncodeToString(sum[:]) + "/" + leaf.SerialNumber.Text(16)
}

// judgeStaple verifies a stapled response and returns its findings. Pure.
func judgeStaple(raw []byte, leaf, issuer *x509.Certificate, now time.Time, maxAge time.Duration, res *OCSPResult) []Finding {
	res.Stapled = true
	if issuer == nil {
		res.Status, res.Source = attrs.OCSPError, "staple"
		return []Finding{{attrs.ReasonOCSPError, "server staples an OCSP response but its issuer is unknown, so it cannot be verified"}}
	}
	r, err := ocsp.ParseResponseForCert(raw, leaf, issuer)
	if err != nil {
		res.Status, res.Source = attrs.OCSPError, "staple"
		return []Finding{{attrs.ReasonOCSPError, "stapled OCSP response is invalid: " + err.Error()}}
	}
	res.Source = "staple"
	res.StapleAge = now.Sub(r.ThisUpdate)
	var out []Finding
	switch r.Status {
	case ocsp.Good:
		res.Status = attrs.OCSPGood
	case ocsp.Revoked:
		res.Status = attrs.OCSPRevoked
		out = append(out, Finding{attrs.ReasonRevoked, fmt.Sprintf("leaf %s was revoked at %s (stapled OCSP response)", Name(leaf), r.RevokedAt.UTC().Format(time.RFC3339))})
	default:
		res.Status = attrs.OCSPUnknown
		out = append(out, Finding{attrs.ReasonOCSPError, "stapled OCSP response says the responder does not know the leaf"})
	}
	switch {
	case !r.NextUpdate.IsZero() && now.After(r.NextUpdate):
		out = append(out, Finding{attrs.ReasonOCSPStaleStaple, fmt.Sprintf("stapled OCSP response expired at %s (nextUpdate); the server is not refreshing its staple", r.NextUpdate.UTC().Format(time.RFC3339))})
	case res.StapleAge > maxAge:
		out = append(out, Finding{attrs.ReasonOCSPStaleStaple, fmt.Sprintf("stapled OCSP response is %s old (limit %s); the server is not refreshing its staple", humanDur(res.StapleAge), humanDur(maxAge))})
	}
	return out
}

// queryResponder asks the leaf's OCSP responder (cached, deduplicated).
func (in *Inspector) queryResponder(ctx context.Context, leaf, issuer *x509.Certificate, now time.Time) ocspAnswer {
	key := ocspKey(leaf, issuer)
	if a, ok := in.ocspCache.get(key, now); ok {
		return a
	}
	v, _, _ := in.flight.Do("ocsp/"+key, func() (any, error) {
		a, expires := in.doQueryResponder(ctx, leaf, issuer)
		in.ocspCache.put(key, a, expires, in.opts.Now())
		return a, nil
	})
	return v.(ocspAnswer)
}

func (in *Inspector) doQueryResponder(ctx context.Context, leaf, issuer *x509.Certificate) (ocspAnswer, time.Time) {
	url := leaf.OCSPServer[0]
	req, err := ocsp.CreateRequest(leaf, issuer, &ocsp.RequestOptions{Hash: 0})
	if err != nil {
		return ocspAnswer{status: attrs.OCSPError, detail: "cannot build OCSP request: " + err.Error()}, time.Time{}
	}
	start := time.Now()
	body, err := in.httpFetch(ctx, url, req, "application/ocsp-request", in.opts.OCSP.Timeout, in.opts.OCSP.MaxBytes)
	lat := time.Since(start)
	now := in.opts.Now()
	// Failures are cached briefly so one dead responder does not add its
	// timeout to every probe of every endpoint it serves.
	errExpiry := now.Add(min(in.opts.OCSP.CacheTTL, 30*time.Second))
	if ctx.Err() != nil {
		// The probe's own deadline or shutdown, not the responder's
		// fault: report it, cache nothing.
		errExpiry = time.Time{}
	}
	if err != nil {
		if d := deniedFetch(err); d != nil {
			return ocspAnswer{status: attrs.OCSPError, latency: lat, detail: fmt.Sprintf("OCSP responder %s not queried: responder %v", url, d)}, errExpiry
		}
		if isTimeout(err) {
			return ocspAnswer{status: attrs.OCSPTimeout, latency: lat, detail: fmt.Sprintf("OCSP responder %s did not answer within %s", url, in.opts.OCSP.Timeout)}, errExpiry
		}
		return ocspAnswer{status: attrs.OCSPError, latency: lat, detail: fmt.Sprintf("OCSP responder %s failed: %v", url, err)}, errExpiry
	}
	r, err := ocsp.ParseResponseForCert(body, leaf, issuer)
	if err != nil {
		return ocspAnswer{status: attrs.OCSPError, latency: lat, detail: fmt.Sprintf("OCSP responder %s sent an invalid answer: %v", url, err)}, errExpiry
	}
	expires := now.Add(in.opts.OCSP.CacheTTL)
	if !r.NextUpdate.IsZero() && r.NextUpdate.Before(expires) {
		expires = r.NextUpdate
	}
	switch r.Status {
	case ocsp.Good:
		return ocspAnswer{status: attrs.OCSPGood, latency: lat}, expires
	case ocsp.Revoked:
		return ocspAnswer{status: attrs.OCSPRevoked, latency: lat, revoked: r.RevokedAt}, expires
	}
	return ocspAnswer{status: attrs.OCSPUnknown, latency: lat, detail: fmt.Sprintf("OCSP responder %s does not know the leaf (status unknown)", url)}, expires
}

// fetchOCSP asks the leaf's responder when the options say to and it can
// be asked (a responder URL, a known issuer); nil otherwise.
func (in *Inspector) fetchOCSP(ctx context.Context, leaf, issuer *x509.Certificate, now time.Time) *ocspAnswer {
	if !in.opts.OCSP.CheckResponder || len(leaf.OCSPServer) == 0 || issuer == nil {
		return nil
	}
	a := in.queryResponder(ctx, leaf, issuer, now)
	return &a
}

// judgeOCSP judges the staple and the responder's answer (nil: not
// asked). Pure.
func judgeOCSP(staple []byte, answer *ocspAnswer, leaf, issuer *x509.Certificate, now time.Time, maxStapleAge time.Duration) (OCSPResult, []Finding) {
	res := OCSPResult{Status: attrs.OCSPNotChecked}
	var out []Finding
	if len(staple) > 0 {
		out = append(out, judgeStaple(staple, leaf, issuer, now, maxStapleAge, &res)...)
	}
	if answer == nil {
		return res, out
	}
	a := *answer
	res.ResponderQueried = true
	res.ResponderLatency = a.latency
	// The responder's word wins over the staple's except that a revoked
	// staple stays revoked.
	if res.Status != attrs.OCSPRevoked {
		res.Status, res.Source = a.status, "responder"
	}
	switch a.status {
	case attrs.OCSPRevoked:
		if res.Source != "staple" || !hasReason(out, attrs.ReasonRevoked) {
			res.Status, res.Source = attrs.OCSPRevoked, "responder"
			out = append(out, Finding{attrs.ReasonRevoked, fmt.Sprintf("leaf %s was revoked at %s (OCSP responder %s)", Name(leaf), a.revoked.UTC().Format(time.RFC3339), leaf.OCSPServer[0])})
		}
	case attrs.OCSPTimeout:
		out = append(out, Finding{attrs.ReasonOCSPTimeout, a.detail})
	case attrs.OCSPError, attrs.OCSPUnknown:
		out = append(out, Finding{attrs.ReasonOCSPError, a.detail})
	}
	return res, out
}

func hasReason(fs []Finding, r attrs.Reason) bool {
	for _, f := range fs {
		if f.Reason == r {
			return true
		}
	}
	return false
}
