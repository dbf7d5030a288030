package tlsinspect

import (
	"crypto/x509"
	"errors"
	"math/big"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// The revocation judgement is pure: evidence in, status and findings out.
func TestJudgeRevocation(t *testing.T) {
	leaf := &x509.Certificate{SerialNumber: big.NewInt(0x2a), OCSPServer: []string{"http://ocsp.example"}}
	now := time.Now()
	revokedCRL := &crlEvidence{url: "http://crl.example", entry: crlEntry{revoked: map[string]time.Time{"2a": now}}}
	for _, tc := range []struct {
		name      string
		ev        revocationEvidence
		ocsp, crl string
		reasons   []attrs.Reason
		queried   bool
	}{
		{name: "nothing asked", ocsp: attrs.OCSPNotChecked, crl: CRLNotChecked},
		{name: "responder good", ev: revocationEvidence{ocsp: &ocspAnswer{status: attrs.OCSPGood}}, ocsp: attrs.OCSPGood, crl: CRLNotChecked, queried: true},
		{name: "responder timeout", ev: revocationEvidence{ocsp: &ocspAnswer{status: attrs.OCSPTimeout, detail: "slow"}}, ocsp: attrs.OCSPTimeout, crl: CRLNotChecked, reasons: []attrs.Reason{attrs.ReasonOCSPTimeout}, queried: true},
		{name: "revoked in the CRL only", ev: revocationEvidence{ocsp: &ocspAnswer{status: attrs.OCSPGood}, crl: revokedCRL}, ocsp: attrs.OCSPGood, crl: CRLRevoked, reasons: []attrs.Reason{attrs.ReasonRevoked}, queried: true},
		{name: "revoked by both: reported once", ev: revocationEvidence{ocsp: &ocspAnswer{status: attrs.OCSPRevoked, revoked: now}, crl: revokedCRL}, ocsp: attrs.OCSPRevoked, crl: CRLRevoked, reasons: []attrs.Reason{attrs.ReasonRevoked}, queried: true},
		{name: "CRL not fetched: no reason", ev: revocationEvidence{crl: &crlEvidence{entry: crlEntry{err: "timeout"}}}, ocsp: attrs.OCSPNotChecked, crl: CRLError},
	} {
		res, crl, fs := judgeRevocation(nil, tc.ev, leaf, &x509.Certificate{}, now, time.Hour)
		if res.Status != tc.ocsp || crl != tc.crl || res.ResponderQueried != tc.queried || len(fs) != len(tc.reasons) {
			t.Errorf("%s: ocsp %s crl %s queried %v findings %v", tc.name, res.Status, crl, res.ResponderQueried, fs)
			continue
		}
		for i, r := range tc.reasons {
			if fs[i].Reason != r {
				t.Errorf("%s: finding %d %s, want %s", tc.name, i, fs[i].Reason, r)
			}
		}
	}
}

// judgeTrust asks for the AIA evidence only when it would use it.
func TestJudgeTrustAsksForAIA(t *testing.T) {
	leaf := &x509.Certificate{SerialNumber: big.NewInt(1), Raw: []byte{1}, RawIssuer: []byte("issuer"), RawSubject: []byte("leaf"), NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour)}
	_, fs, want := judgeTrust([]*x509.Certificate{leaf}, nil, x509.NewCertPool(), time.Now())
	if !want || fs != nil {
		t.Fatalf("an unknown authority: wantAIA %v findings %v, want the evidence asked for", want, fs)
	}
	_, fs, want = judgeTrust([]*x509.Certificate{leaf}, &aiaEvidence{err: errors.New("AIA fetching is disabled")}, x509.NewCertPool(), time.Now())
	if want || len(fs) != 1 || fs[0].Reason != attrs.ReasonMissingIntermediate {
		t.Fatalf("with the evidence (nothing fetched): wantAIA %v findings %v, want missing_intermediate", want, fs)
	}
}
