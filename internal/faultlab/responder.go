package faultlab

import (
	"crypto"
	"crypto/rand"
	"crypto/sha1" //nolint:gosec // OCSP CertID hashes use SHA-1
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"encoding/base64"
	"io"
	"math/big"
	"net/http"
	"strings"
	"sync"
	"time"

	"golang.org/x/crypto/ocsp"
)

// responder is a real OCSP responder for the lab intermediate.
type responder struct {
	issuer *CA
	mu     sync.Mutex
	status map[string]bool // serial hex -> revoked
}

func newResponder(issuer *CA) *responder {
	return &responder{issuer: issuer, status: map[string]bool{}}
}

func (r *responder) add(c *x509.Certificate, revoked bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.status[c.SerialNumber.Text(16)] = revoked
}

func (r *responder) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	var raw []byte
	var err error
	switch req.Method {
	case http.MethodPost:
		raw, err = io.ReadAll(io.LimitReader(req.Body, 4096))
	case http.MethodGet:
		raw, err = base64.StdEncoding.DecodeString(strings.TrimPrefix(req.URL.Path, "/ocsp/"))
	default:
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	if err != nil {
		http.Error(w, "bad request", http.StatusBadRequest)
		return
	}
	q, err := ocsp.ParseRequest(raw)
	if err != nil {
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(ocsp.MalformedRequestErrorResponse)
		return
	}
	resp, err := r.answer(q, time.Now())
	if err != nil {
		w.Header().Set("Content-Type", "application/ocsp-response")
		_, _ = w.Write(ocsp.InternalErrorErrorResponse)
		return
	}
	w.Header().Set("Content-Type", "application/ocsp-response")
	_, _ = w.Write(resp)
}

func (r *responder) issuerKeyHash(h crypto.Hash) []byte {
	var spki struct {
		Algorithm asn1.RawValue
		PublicKey asn1.BitString
	}
	if _, err := asn1.Unmarshal(r.issuer.Cert.RawSubjectPublicKeyInfo, &spki); err != nil {
		return nil
	}
	switch h {
	case crypto.SHA256:
		s := sha256.Sum256(spki.PublicKey.RightAlign())
		return s[:]
	default:
		s := sha1.Sum(spki.PublicKey.RightAlign()) //nolint:gosec
		return s[:]
	}
}

func (r *responder) answer(q *ocsp.Request, now time.Time) ([]byte, error) {
	tmpl := ocsp.Response{
		SerialNumber: q.SerialNumber,
		ThisUpdate:   now.Add(-time.Hour),
		NextUpdate:   now.Add(24 * time.Hour),
		Status:       ocsp.Unknown,
	}
	if string(q.IssuerKeyHash) == string(r.issuerKeyHash(q.HashAlgorithm)) {
		r.mu.Lock()
		revoked, known := r.status[q.SerialNumber.Text(16)]
		r.mu.Unlock()
		switch {
		case known && revoked:
			tmpl.Status, tmpl.RevokedAt, tmpl.RevocationReason = ocsp.Revoked, now.Add(-2*time.Hour), ocsp.KeyCompromise
		case known:
			tmpl.Status = ocsp.Good
		}
	}
	return ocsp.CreateResponse(r.issuer.Cert, r.issuer.Cert, tmpl, r.issuer.Key)
}

// staple returns a signed good response for c with the given validity.
func (r *responder) staple(c *x509.Certificate, thisUpdate, nextUpdate time.Time) ([]byte, error) {
	return ocsp.CreateResponse(r.issuer.Cert, r.issuer.Cert, ocsp.Response{
		SerialNumber: c.SerialNumber, Status: ocsp.Good, ThisUpdate: thisUpdate, NextUpdate: nextUpdate,
	}, r.issuer.Key)
}

// crl returns a DER CRL listing every revoked serial.
func (r *responder) crl(now time.Time) ([]byte, error) {
	r.mu.Lock()
	var entries []x509.RevocationListEntry
	for s, revoked := range r.status {
		if !revoked {
			continue
		}
		n, _ := new(big.Int).SetString(s, 16)
		entries = append(entries, x509.RevocationListEntry{SerialNumber: n, RevocationTime: now.Add(-2 * time.Hour)})
	}
	r.mu.Unlock()
	return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
		Number:                    big.NewInt(1),
		ThisUpdate:                now.Add(-time.Hour),
		NextUpdate:                now.Add(24 * time.Hour),
		RevokedCertificateEntries: entries,
	}, r.issuer.Cert, r.issuer.Key)
}

func pinOf(spki []byte) string {
	s := sha256.Sum256(spki)
	return base64.StdEncoding.EncodeToString(s[:])
}
