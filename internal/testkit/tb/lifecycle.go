package tb

import (
	"bytes"
	"net/http"

	"github.com/certpulse/certpulse/internal/signature"
)

// LifecycleRequest is a lifecycle event POST as the shipped senders make
// it: JSON, the bearer token, the body signed with secret (HMAC-SHA256 with
// its timestamp, the receiver's default headers).
func LifecycleRequest(url, token, secret string, body []byte) (*http.Request, error) {
	req, err := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	signature.Set(req.Header, "", []byte(secret), body)
	return req, nil
}
