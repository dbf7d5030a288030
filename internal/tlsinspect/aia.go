package tlsinspect

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"time"

	"github.com/certpulse/certpulse/internal/certpem"
)

const maxAIADepth = 3

type aiaEntry struct {
	certs []*x509.Certificate
	err   string
}

// completeViaAIA follows caIssuers URLs from the last presented certificate
// that lacks its issuer, up to maxAIADepth hops, and returns what it fetched.
func (in *Inspector) completeViaAIA(ctx context.Context, chain []*x509.Certificate) ([]*x509.Certificate, error) {
	if !in.opts.AIA.Enabled {
		return nil, errors.New("AIA fetching is disabled")
	}
	have := func(c *x509.Certificate, pool []*x509.Certificate) bool {
		for _, p := range pool {
			if bytes.Equal(p.RawSubject, c.RawIssuer) {
				return true
			}
		}
		return false
	}
	var fetched []*x509.Certificate
	cur := chain[0]
	for _, c := range chain {
		if !have(c, chain) && !isSelfSigned(c) {
			cur = c
			break
		}
	}
	for depth := 0; depth < maxAIADepth; depth++ {
		if isSelfSigned(cur) || len(cur.IssuingCertificateURL) == 0 {
			break
		}
		certs, err := in.fetchIssuer(ctx, cur.IssuingCertificateURL[0])
		if err != nil {
			if len(fetched) == 0 {
				return nil, err
			}
			break
		}
		var next *x509.Certificate
		for _, c := range certs {
			if bytes.Equal(c.RawSubject, cur.RawIssuer) {
				next = c
			}
			fetched = append(fetched, c)
		}
		if next == nil {
			break
		}
		cur = next
	}
	if len(fetched) == 0 {
		return nil, errors.New("caIssuers URL gave no certificate")
	}
	return fetched, nil
}

func (in *Inspector) fetchIssuer(ctx context.Context, url string) ([]*x509.Certificate, error) {
	now := in.opts.Now()
	if e, ok := in.aiaCache.get(url, now); ok {
		if e.err != "" {
			return nil, errors.New(e.err)
		}
		return e.certs, nil
	}
	v, _, _ := in.flight.Do("aia/"+url, func() (any, error) {
		e := aiaEntry{}
		exp := in.opts.Now().Add(in.opts.AIA.CacheTTL)
		data, err := in.httpFetch(ctx, url, nil, "", in.opts.AIA.Timeout, in.opts.AIA.MaxBytes)
		if err == nil {
			e.certs, err = certpem.Parse(data)
		}
		if d := deniedFetch(err); d != nil {
			err = d
		}
		if err != nil {
			e.err = "caIssuers " + url + ": " + err.Error()
			exp = in.opts.Now().Add(min(in.opts.AIA.CacheTTL, time.Minute))
			if ctx.Err() != nil {
				exp = time.Time{} // the probe's deadline or shutdown: cache nothing
			}
		}
		in.aiaCache.put(url, e, exp, in.opts.Now())
		return e, nil
	})
	e := v.(aiaEntry)
	if e.err != "" {
		return nil, errors.New(e.err)
	}
	return e.certs, nil
}
