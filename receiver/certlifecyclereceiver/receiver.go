package certlifecyclereceiver // import "github.com/certpulse/certpulse/receiver/certlifecyclereceiver"

import (
	"context"
	"crypto/hmac"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/consumer/consumererror"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/listen"
	"github.com/certpulse/certpulse/internal/signature"
	"github.com/certpulse/certpulse/internal/trigger"
	"github.com/certpulse/certpulse/receiver/certlifecyclereceiver/internal/metadata"
)

type lifecycleReceiver struct {
	cfg       *Config
	settings  receiver.Settings
	next      consumer.Logs
	obs       *receiverhelper.ObsReport
	telemetry *metadata.TelemetryBuilder
	seen      *seenIDs
	lim       limits
	now       func() time.Time

	server *listen.Server
	addr   string // the bound address, once started
	hub    *trigger.Hub
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*lifecycleReceiver, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set})
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &lifecycleReceiver{
		cfg: cfg, settings: set, next: next, obs: obs, telemetry: tb,
		seen: newSeenIDs(cfg.DedupWindow, cfg.DedupMaxEntries),
		lim:  limits{maxField: cfg.MaxFieldLength, maxList: cfg.MaxListLength, maxPEM: cfg.MaxPEMBytes, maxClockSkew: cfg.MaxClockSkew},
		now:  time.Now,
	}, nil
}

// Start listens and serves.
func (r *lifecycleReceiver) Start(ctx context.Context, host component.Host) error {
	if r.cfg.Trigger != nil {
		hub, err := trigger.Find(host.GetExtensions(), *r.cfg.Trigger)
		if err != nil {
			return fmt.Errorf("certlifecycle: %w", err)
		}
		r.hub = hub
	}
	srv, err := listen.Serve(ctx, &r.cfg.ServerConfig, host, r.settings.TelemetrySettings, r.cfg.Path, http.HandlerFunc(r.serveEvents), r.errorHandler)
	if err != nil {
		return fmt.Errorf("certlifecycle: %w", err)
	}
	r.server, r.addr = srv, srv.Addr
	r.settings.Logger.Info("certlifecycle listening", zap.String("endpoint", srv.Addr), zap.String("path", r.cfg.Path), zap.Bool("hmac", r.cfg.HMAC.enabled()))
	return nil
}

// Shutdown stops the server, letting in-flight requests finish within ctx.
func (r *lifecycleReceiver) Shutdown(ctx context.Context) error {
	err := r.server.Shutdown(ctx)
	r.telemetry.Shutdown()
	return err
}

// errorHandler answers confighttp's own rejections (auth, decompression,
// body size) in the receiver's JSON shape.
func (r *lifecycleReceiver) errorHandler(w http.ResponseWriter, req *http.Request, msg string, status int) {
	cause := "malformed"
	switch status {
	case http.StatusUnauthorized, http.StatusForbidden:
		cause = "auth"
	case http.StatusRequestEntityTooLarge:
		cause = "too_large"
	}
	r.rejected(req.Context(), cause, 1)
	writeJSON(w, status, &requestError{Message: msg})
}

func (r *lifecycleReceiver) rejected(ctx context.Context, cause string, events int) {
	r.telemetry.CertlifecycleRequestsRejected.Add(ctx, 1, metric.WithAttributes(attribute.String("cause", cause)))
	if events > 0 {
		r.telemetry.CertlifecycleEvents.Add(ctx, int64(events), metric.WithAttributes(attribute.String("event_type", "unknown"), attribute.String("outcome", "rejected")))
	}
}

func (r *lifecycleReceiver) fail(w http.ResponseWriter, req *http.Request, e *requestError) {
	r.rejected(req.Context(), e.Cause, max(1, len(e.Fields)))
	writeJSON(w, e.Status, e)
}

func (r *lifecycleReceiver) serveEvents(w http.ResponseWriter, req *http.Request) {
	if req.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		r.fail(w, req, reject(http.StatusMethodNotAllowed, "method", "use POST"))
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			r.fail(w, req, reject(http.StatusRequestEntityTooLarge, "too_large", "body is larger than %d bytes (max_request_body_size)", mbe.Limit))
			return
		}
		r.fail(w, req, reject(http.StatusBadRequest, "malformed", "reading the body: %v", err))
		return
	}
	now := r.now()
	if r.cfg.HMAC.enabled() {
		if e := r.verifySignature(req.Header, body, now); e != nil {
			r.fail(w, req, e)
			return
		}
	}
	events, perr := parseRequest(req.Header, body, r.lim, r.cfg.MaxEventsPerRequest, now)
	if perr != nil {
		r.fail(w, req, perr)
		return
	}
	dup := make([]bool, len(events))
	keys := make([]string, len(events))
	inRequest := map[string]bool{}
	// A signed request seen before (same signature and timestamp, inside
	// the skew window) is a replay: every event in it is a duplicate.
	replayKey := ""
	if r.cfg.HMAC.enabled() {
		replayKey = "sig/" + req.Header.Get(r.cfg.HMAC.TimestampHeader) + "/" + req.Header.Get(r.cfg.HMAC.SignatureHeader)
	}
	replay := replayKey != "" && r.seen.seen(replayKey, now)
	for i := range events {
		keys[i] = dedupKey(&events[i])
		dup[i] = replay || inRequest[keys[i]] || r.seen.seen(keys[i], now)
		inRequest[keys[i]] = true
	}
	ld := buildLogs(events, dup, now)
	ctx := r.obs.StartLogsOp(req.Context())
	err = r.next.ConsumeLogs(ctx, ld)
	r.obs.EndLogsOp(ctx, metadata.Type.String(), len(events), err)
	if err != nil {
		r.count(req.Context(), events, dup, "refused")
		r.rejected(req.Context(), "pipeline", 0)
		if consumererror.IsPermanent(err) {
			writeJSON(w, http.StatusBadRequest, &requestError{Message: "the pipeline rejected the events permanently: " + err.Error()})
			return
		}
		w.Header().Set("Retry-After", strconv.Itoa(int(max(1, r.cfg.RetryAfter.Seconds()))))
		writeJSON(w, http.StatusServiceUnavailable, &requestError{Message: "the pipeline is not accepting events now; retry after the Retry-After delay: " + err.Error()})
		return
	}
	r.fireTriggers(events, dup)
	// Only delivered ids count as seen: a retry after a 503 is no duplicate.
	if replayKey != "" {
		keys = append(keys, replayKey)
	}
	r.seen.add(keys, now)
	r.count(req.Context(), events, dup, "accepted")
	nDup := 0
	for _, d := range dup {
		if d {
			nDup++
		}
	}
	writeJSON(w, http.StatusOK, map[string]int{"accepted": len(events), "duplicates": nDup})
}

func (r *lifecycleReceiver) count(ctx context.Context, events []Event, dup []bool, outcome string) {
	for i := range events {
		o := outcome
		if outcome == "accepted" && dup[i] {
			o = "duplicate"
		}
		r.telemetry.CertlifecycleEvents.Add(ctx, 1, metric.WithAttributes(attribute.String("event_type", events[i].Type), attribute.String("outcome", o)))
	}
}

// verifySignature checks the timestamped HMAC-SHA256 body signature.
func (r *lifecycleReceiver) verifySignature(h http.Header, body []byte, now time.Time) *requestError {
	c := r.cfg.HMAC
	ts := h.Get(c.TimestampHeader)
	sig := h.Get(c.SignatureHeader)
	if ts == "" || sig == "" {
		return reject(http.StatusUnauthorized, "signature", "headers %s and %s are required", c.TimestampHeader, c.SignatureHeader)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return reject(http.StatusUnauthorized, "signature", "%s must be Unix seconds", c.TimestampHeader)
	}
	if d := now.Sub(time.Unix(sec, 0)); d > c.MaxSkew || d < -c.MaxSkew {
		return reject(http.StatusUnauthorized, "stale_timestamp", "%s is %s away from the receiver's clock (limit %s): rejected as a possible replay", c.TimestampHeader, d.Round(time.Second), c.MaxSkew)
	}
	got, err := hex.DecodeString(strings.TrimPrefix(sig, "sha256="))
	if err != nil || !strings.HasPrefix(sig, "sha256=") {
		return reject(http.StatusUnauthorized, "signature", "%s must be sha256=<hex>", c.SignatureHeader)
	}
	if h.Get("Ce-Specversion") != "" {
		// Binary mode: the event's id, type and source are headers.
		if !hmac.Equal(got, signature.SumWithHeaders([]byte(c.Secret), ts, signature.CanonicalCE(h), body)) {
			return reject(http.StatusUnauthorized, "signature", "%s does not match the ce-* headers and the body (binary mode signs both: see receiver/certlifecyclereceiver/README.md)", c.SignatureHeader)
		}
		return nil
	}
	if !hmac.Equal(got, signature.Sum([]byte(c.Secret), ts, body)) {
		return reject(http.StatusUnauthorized, "signature", "%s does not match the body", c.SignatureHeader)
	}
	return nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// triggerTypes are the lifecycle events after which a service's certificate
// may have changed where it is served: probe it now.
var triggerTypes = map[string]bool{attrs.LifecycleDeployed: true, attrs.LifecycleRenewed: true, attrs.LifecycleRotationPlanned: true, attrs.LifecycleRotated: true, attrs.LifecycleRolledBack: true}

// fireTriggers asks this collector's probes to look at the services of the
// delivered (not duplicate) events now.
func (r *lifecycleReceiver) fireTriggers(events []Event, dup []bool) {
	if r.hub == nil {
		return
	}
	for i := range events {
		ev := &events[i]
		if dup[i] || !triggerTypes[ev.Type] || ev.Data.Service == "" {
			continue
		}
		r.hub.Fire(trigger.Event{Type: ev.Type, Service: ev.Data.Service, Endpoints: ev.Data.Endpoints})
	}
}
