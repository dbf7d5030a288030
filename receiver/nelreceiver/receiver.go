package nelreceiver // import "github.com/certpulse/certpulse/receiver/nelreceiver"

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"io"
	"mime"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/consumer"
	"go.opentelemetry.io/collector/receiver"
	"go.opentelemetry.io/collector/receiver/receiverhelper"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/metric"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/listen"
	"github.com/certpulse/certpulse/internal/trigger"
	"github.com/certpulse/certpulse/receiver/nelreceiver/internal/metadata"
)

type nelReceiver struct {
	cfg       *Config
	settings  receiver.Settings
	next      consumer.Logs
	obs       *receiverhelper.ObsReport
	telemetry *metadata.TelemetryBuilder
	lim       limits
	repeats   *repeats
	limiter   *rateLimiter
	seed      maphash.Seed
	now       func() time.Time

	hub   *trigger.Hub
	fired map[string]time.Time // service -> last trigger (bounded: configured services)
	fmu   sync.Mutex

	server *listen.Server
	addr   string
}

func newReceiver(cfg *Config, set receiver.Settings, next consumer.Logs) (*nelReceiver, error) {
	obs, err := receiverhelper.NewObsReport(receiverhelper.ObsReportSettings{ReceiverID: set.ID, Transport: "http", ReceiverCreateSettings: set})
	if err != nil {
		return nil, err
	}
	tb, err := metadata.NewTelemetryBuilder(set.TelemetrySettings)
	if err != nil {
		return nil, err
	}
	return &nelReceiver{
		cfg: cfg, settings: set, next: next, obs: obs, telemetry: tb,
		lim:     limits{maxReports: cfg.MaxReportsPerRequest, maxField: cfg.MaxFieldLength, maxAge: cfg.MaxAge},
		repeats: newRepeats(cfg.Dedup.Window, cfg.Dedup.MaxEntries),
		limiter: newRateLimiter(cfg.RateLimit.RequestsPerSecond, cfg.RateLimit.Burst, cfg.RateLimit.MaxClients),
		seed:    maphash.MakeSeed(),
		fired:   map[string]time.Time{},
		now:     time.Now,
	}, nil
}

// Start listens and serves.
func (r *nelReceiver) Start(ctx context.Context, host component.Host) error {
	if r.cfg.Trigger != nil {
		hub, err := trigger.Find(host.GetExtensions(), *r.cfg.Trigger)
		if err != nil {
			return fmt.Errorf("nel: %w", err)
		}
		r.hub = hub
	}
	srv, err := listen.Serve(ctx, &r.cfg.ServerConfig, host, r.settings.TelemetrySettings, r.cfg.Path, http.HandlerFunc(r.serve), r.errorHandler)
	if err != nil {
		return fmt.Errorf("nel: %w", err)
	}
	r.server, r.addr = srv, srv.Addr
	r.settings.Logger.Info("nel listening", zap.String("endpoint", srv.Addr), zap.String("path", r.cfg.Path))
	return nil
}

// Shutdown stops the server, letting in-flight requests finish within ctx.
func (r *nelReceiver) Shutdown(ctx context.Context) error {
	err := r.server.Shutdown(ctx)
	r.telemetry.Shutdown()
	return err
}

func (r *nelReceiver) errorHandler(w http.ResponseWriter, req *http.Request, msg string, status int) {
	cause := "malformed"
	if status == http.StatusRequestEntityTooLarge {
		cause = "too_large"
	}
	r.reject(w, req, status, cause, "%s", msg)
}

// reject answers a refused request with a plain-text reason.
func (r *nelReceiver) reject(w http.ResponseWriter, req *http.Request, status int, cause, format string, args ...any) {
	r.telemetry.NelRequestsRejected.Add(req.Context(), 1, metric.WithAttributes(attribute.String("cause", cause)))
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(status)
	_, _ = fmt.Fprintf(w, "nel: "+format+"\n", args...)
}

// allowOrigin: the request's Origin must be an origin of a configured
// service; it is echoed in Access-Control-Allow-Origin. A request without
// Origin (not from a browser: a test, a relay) is allowed.
func (r *nelReceiver) allowOrigin(w http.ResponseWriter, req *http.Request) bool {
	o := req.Header.Get("Origin")
	if o == "" {
		return true
	}
	u, err := url.Parse(o)
	if err != nil || u.Hostname() == "" || (u.Scheme != "https" && u.Scheme != "http") {
		return false
	}
	if _, ok := r.cfg.serviceFor(strings.ToLower(u.Hostname())); !ok {
		return false
	}
	w.Header().Set("Access-Control-Allow-Origin", o)
	w.Header().Add("Vary", "Origin")
	return true
}

func (r *nelReceiver) serve(w http.ResponseWriter, req *http.Request) {
	switch req.Method {
	case http.MethodOptions:
		r.preflight(w, req)
	case http.MethodPost:
		r.upload(w, req)
	default:
		w.Header().Set("Allow", "POST, OPTIONS")
		r.reject(w, req, http.StatusMethodNotAllowed, "method", "use POST (reports) or OPTIONS (CORS preflight), not %s", req.Method)
	}
}

// preflight answers the CORS preflight browsers send before a
// cross-origin report upload.
func (r *nelReceiver) preflight(w http.ResponseWriter, req *http.Request) {
	if !r.allowOrigin(w, req) {
		r.reject(w, req, http.StatusForbidden, "origin", "origin %q is not an origin of a configured service", req.Header.Get("Origin"))
		return
	}
	if m := req.Header.Get("Access-Control-Request-Method"); m != "" && m != http.MethodPost {
		r.reject(w, req, http.StatusForbidden, "method", "only POST is allowed, not %q", m)
		return
	}
	h := w.Header()
	h.Set("Access-Control-Allow-Methods", "POST, OPTIONS")
	h.Set("Access-Control-Allow-Headers", "Content-Type")
	h.Set("Access-Control-Max-Age", "86400")
	w.WriteHeader(http.StatusNoContent)
}

// clientAddress is the rate limit's and dedup's key.
func (r *nelReceiver) clientAddress(req *http.Request) string {
	if h := r.cfg.ClientAddressHeader; h != "" {
		if vs := req.Header.Values(h); len(vs) > 0 {
			parts := strings.Split(vs[len(vs)-1], ",")
			if ip := net.ParseIP(strings.TrimSpace(parts[len(parts)-1])); ip != nil {
				return ip.String()
			}
		}
	}
	host, _, err := net.SplitHostPort(req.RemoteAddr)
	if err != nil {
		return req.RemoteAddr
	}
	return host
}

func (r *nelReceiver) upload(w http.ResponseWriter, req *http.Request) {
	ctx := req.Context()
	if !r.allowOrigin(w, req) {
		r.reject(w, req, http.StatusForbidden, "origin", "origin %q is not an origin of a configured service", req.Header.Get("Origin"))
		return
	}
	client := r.clientAddress(req)
	now := r.now()
	if !r.limiter.allow(client, now) {
		w.Header().Set("Retry-After", "60")
		r.reject(w, req, http.StatusTooManyRequests, "rate_limited", "too many requests from this address (rate_limit)")
		return
	}
	if mt, _, err := mime.ParseMediaType(req.Header.Get("Content-Type")); err != nil || (mt != "application/reports+json" && mt != "application/json") {
		r.reject(w, req, http.StatusUnsupportedMediaType, "content_type", "Content-Type must be application/reports+json, not %q", req.Header.Get("Content-Type"))
		return
	}
	body, err := io.ReadAll(req.Body)
	if err != nil {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			r.reject(w, req, http.StatusRequestEntityTooLarge, "too_large", "body is larger than %d bytes (max_request_body_size)", mbe.Limit)
			return
		}
		r.reject(w, req, http.StatusBadRequest, "malformed", "reading the body: %v", err)
		return
	}
	reports, outcomes, err := parseBatch(body, r.lim)
	if err != nil {
		var tm errTooMany
		if errors.As(err, &tm) {
			r.reject(w, req, http.StatusRequestEntityTooLarge, "too_many_reports", "%v", err)
			return
		}
		r.reject(w, req, http.StatusBadRequest, "malformed", "%v", err)
		return
	}
	keys := make([]uint64, len(reports))
	services := make([]*ServiceConfig, len(reports))
	for i := range reports {
		if outcomes[i] != "" {
			continue
		}
		svc, ok := r.cfg.serviceFor(reports[i].Host)
		if !ok {
			outcomes[i] = outcomeUnknownHost
			continue
		}
		services[i] = svc
		keys[i] = maphash.String(r.seed, client+"\x00"+reports[i].key)
		if r.repeats.check(keys[i], now) {
			outcomes[i] = outcomeDuplicate
		}
	}
	ld, n := buildLogs(reports, outcomes, services, client, r.cfg.IncludeClientAddress, now)
	if n > 0 {
		octx := r.obs.StartLogsOp(ctx)
		err = r.next.ConsumeLogs(octx, ld)
		r.obs.EndLogsOp(octx, metadata.Type.String(), n, err)
		if err != nil {
			for i := range outcomes {
				if outcomes[i] == "" {
					outcomes[i] = outcomeRefused
					r.repeats.forget(keys[i])
				}
			}
			r.count(ctx, outcomes)
			// The browser retries a failed upload (the Reporting API keeps
			// the reports for another attempt).
			w.Header().Set("Retry-After", "10")
			r.reject(w, req, http.StatusServiceUnavailable, "pipeline", "the pipeline is not accepting reports now: %v", err)
			return
		}
	}
	r.count(ctx, outcomes)
	r.fire(reports, outcomes, services, now)
	w.WriteHeader(http.StatusNoContent)
}

// fire asks for the probes of the services real browsers fail on, at most
// once per trigger_interval each.
func (r *nelReceiver) fire(reports []report, outcomes []outcome, services []*ServiceConfig, now time.Time) {
	if r.hub == nil {
		return
	}
	var due []string
	r.fmu.Lock()
	for i := range reports {
		if outcomes[i] != "" || services[i] == nil {
			continue
		}
		if rs := reasonOf(reports[i].Type); rs == "" || rs == attrs.ReasonOK {
			continue
		}
		name := services[i].Name
		if last, ok := r.fired[name]; ok && now.Sub(last) < r.cfg.TriggerInterval {
			continue
		}
		r.fired[name] = now
		due = append(due, name)
	}
	r.fmu.Unlock()
	for _, s := range due {
		n := r.hub.Fire(trigger.Event{Type: trigger.EdgeFailures, Service: s})
		r.settings.Logger.Info("nel: real browsers failing; probing the service now", zap.String("service", s), zap.Int("receivers", n))
	}
}

func (r *nelReceiver) count(ctx context.Context, outcomes []outcome) {
	var by = map[outcome]int64{}
	for _, o := range outcomes {
		by[o]++
	}
	for o, n := range by {
		if o == "" {
			o = outcomeAccepted
		}
		r.telemetry.NelReports.Add(ctx, n, metric.WithAttributes(attribute.String("outcome", string(o))))
	}
}
