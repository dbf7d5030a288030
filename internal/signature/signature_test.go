package signature

import (
	"net/http"
	"testing"
	"time"
)

// A known vector, computed independently with
// printf '1700000000.{"a":1}' | openssl dgst -sha256 -hmac secret-0123456789
func TestValue(t *testing.T) {
	const want = "sha256=692511b180bbcd561410894fd2bedac27a99690e45169490ea808f433b5d0097"
	if got := Value([]byte("secret-0123456789"), "1700000000", []byte(`{"a":1}`)); got != want {
		t.Fatalf("Value = %s, want %s", got, want)
	}
}

func TestSetSignsWithItsTimestamp(t *testing.T) {
	h := http.Header{}
	Set(h, "X-Sig", []byte("secret-0123456789"), []byte(`{"a":1}`))
	if h.Get(TimestampHeader) == "" || h.Get("X-Sig") != Value([]byte("secret-0123456789"), h.Get(TimestampHeader), []byte(`{"a":1}`)) {
		t.Fatalf("Set: %v", h)
	}
}

func TestAttestation(t *testing.T) {
	at := time.Date(2026, 12, 2, 10, 0, 0, 123456789, time.UTC)
	secret := []byte("trail-secret-0123456789")
	att := Attest(secret, "inc", "inc:1:reload:1", "sent", at)
	if !VerifyAttestation(secret, att, "inc", "inc:1:reload:1", "sent", at) {
		t.Fatal("own attestation refused")
	}
	for name, ok := range map[string]bool{
		"other secret":  VerifyAttestation([]byte("another-secret-0123456"), att, "inc", "inc:1:reload:1", "sent", at),
		"other key":     VerifyAttestation(secret, att, "inc", "inc:1:reload:2", "sent", at),
		"other stage":   VerifyAttestation(secret, att, "inc", "inc:1:reload:1", "failed", at),
		"other time":    VerifyAttestation(secret, att, "inc", "inc:1:reload:1", "sent", at.Add(time.Nanosecond)),
		"other inc":     VerifyAttestation(secret, att, "inc2", "inc:1:reload:1", "sent", at),
		"no secret":     VerifyAttestation(nil, att, "inc", "inc:1:reload:1", "sent", at),
		"none attested": VerifyAttestation(secret, "", "inc", "inc:1:reload:1", "sent", at),
	} {
		if ok {
			t.Errorf("%s: accepted", name)
		}
	}
}
