package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"text/template"
	"time"

	"github.com/cenkalti/backoff/v5"

	"github.com/certpulse/certpulse/internal/signature"
)

// Headers a webhook receiver can rely on.
const (
	HeaderIdempotencyKey = "Idempotency-Key"
	// HeaderBodySignature is the default header of the body scheme.
	HeaderBodySignature = "X-Hub-Signature-256"
)

// Signature schemes of webhook actions.
const (
	SchemeCertpulse = "certpulse"
	SchemeBody      = "body"
)

// templateData is what a webhook body template sees.
type templateData struct {
	Incident       Incident
	Action         string
	Operation      string
	Attempt        int
	IdempotencyKey string
	Evidence       []string
	DryRun         bool
	// Timestamp is when this try was sent (Unix seconds).
	Timestamp int64
}

// IdempotencyKey names one attempt of one action on one episode of an
// incident: <incident id>:<opened, Unix seconds>:<action>:<attempt>.
// Incident ids repeat when a fault recurs (they are fingerprints), so the
// episode keeps a recurrence's keys apart from the last one's. Without an
// opening instant (an older correlator) the episode is left out.
func IdempotencyKey(incidentID string, opened time.Time, action string, attempt int) string {
	if opened.IsZero() {
		return incidentID + ":" + action + ":" + strconv.Itoa(attempt)
	}
	return incidentID + ":" + strconv.FormatInt(opened.Unix(), 10) + ":" + action + ":" + strconv.Itoa(attempt)
}

func renderBody(a *ActionConfig, d templateData) ([]byte, error) {
	if a.Body == "" {
		return json.Marshal(d)
	}
	t, err := parseBody(a.Name, a.Body)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := t.Execute(&buf, d); err != nil {
		return nil, fmt.Errorf("body template: %w", err)
	}
	return buf.Bytes(), nil
}

// parseBody parses a body template. Its functions: json renders a value as
// JSON (a string with its quotes, escaped), for values in a JSON body.
func parseBody(name, body string) (*template.Template, error) {
	return template.New(name).Option("missingkey=error").Funcs(template.FuncMap{
		"json": func(v any) (string, error) { b, err := json.Marshal(v); return string(b), err },
	}).Parse(body)
}

// errPermanent marks a delivery that must not be retried (4xx).
type errPermanent struct{ error }

// deliverWebhook sends one action, retrying 5xx, 429 and transport errors
// with backoff until the retry budget is spent. The idempotency key and
// body are the same on every try; the signature is renewed per try.
func (r *remediator) deliverWebhook(ctx context.Context, a *ActionConfig, d templateData) (int, error) {
	d.Timestamp = time.Now().Unix()
	body, err := renderBody(a, d)
	if err != nil {
		return 0, errPermanent{err}
	}
	contentType := "application/json"
	for k, v := range a.Headers.Iter {
		if strings.EqualFold(k, "Content-Type") {
			contentType = string(v)
		}
	}
	if strings.Contains(strings.ToLower(contentType), "json") && !json.Valid(body) {
		return 0, errPermanent{errors.New("body is not valid JSON (use {{json .Field}} for values in a JSON body); nothing sent")}
	}
	method := a.Method
	if method == "" {
		method = http.MethodPost
	}
	timeout := a.Timeout
	if timeout == 0 {
		timeout = 10 * time.Second
	}
	var status int
	try := func() (struct{}, error) {
		tctx, cancel := context.WithTimeout(ctx, timeout)
		defer cancel()
		if a.SignatureScheme == SchemeBody {
			// The timestamp is in the signed body: each try is rendered anew.
			d.Timestamp = time.Now().Unix()
			if body, err = renderBody(a, d); err != nil {
				return struct{}{}, backoff.Permanent(errPermanent{err})
			}
		}
		req, err := http.NewRequestWithContext(tctx, method, a.URL, bytes.NewReader(body))
		if err != nil {
			return struct{}{}, backoff.Permanent(err)
		}
		req.Header.Set("Content-Type", contentType)
		req.Header.Set("User-Agent", "certpulse-remediation")
		req.Header.Set(HeaderIdempotencyKey, d.IdempotencyKey)
		switch {
		case a.HMACSecret == "":
		case a.SignatureScheme == SchemeBody:
			req.Header.Set(cmp.Or(a.SignatureHeader, HeaderBodySignature), signature.BodyValue([]byte(a.HMACSecret), body))
		default:
			signature.Set(req.Header, a.SignatureHeader, []byte(a.HMACSecret), body)
		}
		resp, err := r.clientFor(a).Do(req) // confighttp: tls, proxy, auth, headers
		if err != nil {
			return struct{}{}, err
		}
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
		resp.Body.Close()
		status = resp.StatusCode
		switch {
		case status >= 200 && status < 300:
			return struct{}{}, nil
		case status == http.StatusTooManyRequests || status >= 500:
			return struct{}{}, fmt.Errorf("HTTP %d", status)
		}
		return struct{}{}, backoff.Permanent(errPermanent{fmt.Errorf("HTTP %d", status)})
	}
	rc := r.cfg.ActionRetry
	if !rc.Enabled {
		_, err = try()
		return status, unwrapPermanent(err)
	}
	eb := backoff.NewExponentialBackOff()
	eb.InitialInterval, eb.MaxInterval, eb.Multiplier, eb.RandomizationFactor = rc.InitialInterval, rc.MaxInterval, rc.Multiplier, rc.RandomizationFactor
	_, err = backoff.Retry(ctx, try, backoff.WithBackOff(eb), backoff.WithMaxElapsedTime(rc.MaxElapsedTime))
	return status, unwrapPermanent(err)
}

func unwrapPermanent(err error) error {
	var pe *backoff.PermanentError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
