package tlsinspect

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// CRL status values.
const (
	CRLGood       = "good"
	CRLRevoked    = "revoked"
	CRLError      = "error"
	CRLNotChecked = "not_checked"
)

type crlEntry struct {
	revoked map[string]time.Time // serial (hex) -> revocation time
	err     string
}

// crlCacheBytes bounds the memory of parsed CRLs (a CRL may list
// hundreds of thousands of serials).
const crlCacheBytes = 64 << 20

// size estimates the entry's memory: each listed serial costs its hex
// string, its time and the map's overhead.
func (e crlEntry) size() int64 {
	n := int64(64 + len(e.err))
	for k := range e.revoked {
		n += int64(len(k)) + 24 + 48
	}
	return n
}

// crlEvidence is the CRL of the leaf's first http(s) distribution point,
// as fetched (or why it could not be).
type crlEvidence struct {
	url   string
	entry crlEntry
}

// fetchCRLOf fetches (cached, deduplicated) the CRL of leaf's first
// http(s) distribution point when CRLs are enabled and the issuer is
// known; nil otherwise.
func (in *Inspector) fetchCRLOf(ctx context.Context, leaf, issuer *x509.Certificate) *crlEvidence {
	if !in.opts.CRL.Enabled || issuer == nil {
		return nil
	}
	var url string
	for _, u := range leaf.CRLDistributionPoints {
		if strings.HasPrefix(u, "http://") || strings.HasPrefix(u, "https://") {
			url = u
			break
		}
	}
	if url == "" {
		return nil
	}
	key := url + "|" + ocspKey(issuer, issuer)
	now := in.opts.Now()
	e, ok := in.crlCache.get(key, now)
	if !ok {
		v, _, _ := in.flight.Do("crl/"+key, func() (any, error) {
			e, exp := in.fetchCRL(ctx, url, issuer)
			in.crlCache.put(key, e, exp, in.opts.Now())
			return e, nil
		})
		e = v.(crlEntry)
	}
	return &crlEvidence{url: url, entry: e}
}

// judgeCRL looks leaf up in the fetched CRL (nil: not checked). Pure.
func judgeCRL(ev *crlEvidence, leaf *x509.Certificate) (string, []Finding) {
	if ev == nil {
		return CRLNotChecked, nil
	}
	if ev.entry.err != "" {
		// No reason code: a CRL that cannot be fetched is reported in the
		// record (certpulse.crl.status=error) without failing the probe.
		return CRLError, nil
	}
	if at, ok := ev.entry.revoked[leaf.SerialNumber.Text(16)]; ok {
		return CRLRevoked, []Finding{{attrs.ReasonRevoked, fmt.Sprintf("leaf %s is listed as revoked since %s in the CRL %s", Name(leaf), at.UTC().Format(time.RFC3339), ev.url)}}
	}
	return CRLGood, nil
}

func (in *Inspector) fetchCRL(ctx context.Context, url string, issuer *x509.Certificate) (crlEntry, time.Time) {
	now := in.opts.Now()
	errExp := now.Add(min(in.opts.CRL.CacheTTL, time.Minute))
	data, err := in.httpFetch(ctx, url, nil, "", in.opts.CRL.Timeout, in.opts.CRL.MaxBytes)
	if ctx.Err() != nil {
		errExp = time.Time{} // the probe's deadline or shutdown: cache nothing
	}
	if d := deniedFetch(err); d != nil {
		return crlEntry{err: "CRL " + url + " not fetched: " + d.Error()}, errExp
	}
	if err != nil {
		return crlEntry{err: err.Error()}, errExp
	}
	if b, _ := pem.Decode(data); b != nil {
		data = b.Bytes
	}
	rl, err := x509.ParseRevocationList(data)
	if err != nil {
		return crlEntry{err: "bad CRL: " + err.Error()}, errExp
	}
	if err := rl.CheckSignatureFrom(issuer); err != nil {
		return crlEntry{err: "CRL signature: " + err.Error()}, errExp
	}
	e := crlEntry{revoked: make(map[string]time.Time, len(rl.RevokedCertificateEntries))}
	for _, r := range rl.RevokedCertificateEntries {
		e.revoked[(*big.Int)(r.SerialNumber).Text(16)] = r.RevocationTime
	}
	exp := now.Add(in.opts.CRL.CacheTTL)
	if !rl.NextUpdate.IsZero() && rl.NextUpdate.Before(exp) {
		exp = rl.NextUpdate
	}
	return e, exp
}
