package signature

import (
	"net/http"
	"testing"
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
