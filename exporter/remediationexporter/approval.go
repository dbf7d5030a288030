package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"net/http"
	"sort"
	"strings"
	"time"

	"go.opentelemetry.io/collector/client"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.uber.org/zap"
)

// startApproval serves the approval API and page when configured.
func (r *remediator) startApproval(ctx context.Context, host component.Host) error {
	ac := r.cfg.Approval.Get()
	if ac == nil {
		return nil
	}
	ln, err := ac.ToListener(ctx)
	if err != nil {
		return fmt.Errorf("approval: listen on %s: %w", ac.NetAddr.Endpoint, err)
	}
	r.approvalAddr = ln.Addr().String()
	mux := http.NewServeMux()
	mux.HandleFunc("GET /api/v1/pending", r.apiPending)
	mux.HandleFunc("POST /api/v1/pending/{id}/{verb}", r.apiDecide)
	mux.HandleFunc("GET /api/v1/brake", r.apiBrake)
	mux.HandleFunc("POST /api/v1/brake/{verb}", r.apiBrakeSet)
	mux.HandleFunc("GET /{$}", r.page)
	mux.HandleFunc("POST /ui/decide", r.uiDecide)
	mux.HandleFunc("POST /ui/brake", r.uiBrake)
	// Browsers resend basic credentials on cross-site form posts: refuse
	// cross-origin state changes (CSRF); API clients send no Origin.
	srv, err := ac.ToServer(ctx, host.GetExtensions(), r.settings.TelemetrySettings, http.NewCrossOriginProtection().Handler(mux))
	if err != nil {
		_ = ln.Close()
		return err
	}
	if a := ac.Auth.Get(); a != nil && a.AuthenticatorID.Type().String() == "basicauth" {
		// Without a challenge no browser ever asks for the user and
		// password: the page would be unusable.
		srv.Handler = basicChallenge(srv.Handler)
	}
	r.approval = srv
	r.wg.Add(1)
	go func() {
		defer r.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	r.logger.Info("remediation approval server listening", zap.String("endpoint", r.approvalAddr))
	return nil
}

// basicChallenge adds `WWW-Authenticate: Basic` to the auth extension's 401
// answers, so that a browser asks for the user and password.
func basicChallenge(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		next.ServeHTTP(challengeWriter{w}, req)
	})
}

type challengeWriter struct{ http.ResponseWriter }

func (c challengeWriter) WriteHeader(code int) {
	if code == http.StatusUnauthorized {
		c.Header().Set("WWW-Authenticate", `Basic realm="certpulse approvals", charset="UTF-8"`)
	}
	c.ResponseWriter.WriteHeader(code)
}

// unauthenticated is the identity of a request the server took without
// authentication (only allowed on a loopback address).
const unauthenticated = "unauthenticated (loopback)"

// who is the authenticated identity: the auth extension's "username"
// (basicauth) or "subject" attribute, "authenticated client" when it names
// none (a bearer token), or unauthenticated when the server has no auth
// (loopback only). Never what the caller typed.
func (r *remediator) who(req *http.Request) string {
	if a := r.cfg.Approval.Get(); a == nil || !a.Auth.HasValue() {
		return unauthenticated
	}
	if info := client.FromContext(req.Context()); info.Auth != nil {
		for _, k := range []string{"username", "subject"} {
			if v, ok := info.Auth.GetAttribute(k).(string); ok && v != "" {
				return v
			}
		}
	}
	return "authenticated client"
}

type decisionBody struct {
	By  string `json:"by"`
	Why string `json:"why"`
}

func (r *remediator) readDecision(req *http.Request) (decisionBody, error) {
	var d decisionBody
	req.Body = http.MaxBytesReader(nil, req.Body, 16<<10)
	if strings.HasPrefix(req.Header.Get("Content-Type"), "application/json") {
		if err := json.NewDecoder(req.Body).Decode(&d); err != nil {
			return d, fmt.Errorf("body must be JSON {\"by\": ..., \"why\": ...}: %w", err)
		}
	} else {
		if err := req.ParseForm(); err != nil {
			return d, err
		}
		d.By, d.Why = req.PostForm.Get("by"), req.PostForm.Get("why")
	}
	if len(d.By) > 200 || len(d.Why) > 2000 {
		return d, errors.New("by or why too long")
	}
	// The approver is who authenticated; a typed `by` is only a comment.
	if c := strings.TrimSpace(d.By); c != "" {
		d.Why = strings.TrimSpace(d.Why + " (comment: by " + c + ")")
	}
	d.By = r.who(req)
	return d, nil
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

func (r *remediator) pendingList() []Pending {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]Pending, 0, len(r.st.Pending))
	for _, p := range r.st.Pending {
		out = append(out, *p)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Created.Before(out[j].Created) })
	return out
}

func (r *remediator) apiPending(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"pending": r.pendingList()})
}

func (r *remediator) apiDecide(w http.ResponseWriter, req *http.Request) {
	verb := req.PathValue("verb")
	if verb != "approve" && verb != "deny" {
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "use /approve or /deny"})
		return
	}
	d, err := r.readDecision(req)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	msg, err := r.decide(req.Context(), req.PathValue("id"), verb == "approve", d.By, d.Why)
	if err != nil {
		msg = err.Error()
	}
	writeJSON(w, decisionStatus(err), map[string]string{"result": msg})
}

// decisionStatus is the HTTP status of decide's answer.
func decisionStatus(err error) int {
	switch {
	case err == nil:
		return http.StatusOK
	case errors.Is(err, ErrNoPending):
		return http.StatusNotFound
	case errors.Is(err, ErrExpired):
		return http.StatusGone
	case errors.Is(err, ErrBrakeEngaged), errors.Is(err, ErrIncidentResolved), errors.Is(err, ErrPolicyGone):
		return http.StatusConflict
	case errors.Is(err, ErrNotPersisted):
		return http.StatusServiceUnavailable
	case errors.Is(err, ErrActionFailed):
		return http.StatusBadGateway
	}
	return http.StatusInternalServerError
}

func (r *remediator) brakeState() Brake {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.st.Brake
}

func (r *remediator) apiBrake(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, r.brakeState())
}

func (r *remediator) apiBrakeSet(w http.ResponseWriter, req *http.Request) {
	d, err := r.readDecision(req)
	if err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]string{"error": err.Error()})
		return
	}
	switch req.PathValue("verb") {
	case "release":
		if !r.releaseBrake(req.Context(), d.By, d.Why) {
			writeJSON(w, http.StatusConflict, map[string]string{"error": "the brake is not engaged"})
			return
		}
	case "engage":
		r.mu.Lock()
		r.engageBrakeLocked(req.Context(), "engaged by an operator: "+d.Why, d.By)
		r.saveLocked(req.Context())
		r.mu.Unlock()
	default:
		writeJSON(w, http.StatusNotFound, map[string]string{"error": "use /release or /engage"})
		return
	}
	writeJSON(w, http.StatusOK, r.brakeState())
}

func (r *remediator) uiDecide(w http.ResponseWriter, req *http.Request) {
	d, err := r.readDecision(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	verb := req.PostForm.Get("decision")
	if verb != "approve" && verb != "deny" {
		http.Error(w, "decision must be approve or deny", http.StatusBadRequest)
		return
	}
	msg, err := r.decide(req.Context(), req.PostForm.Get("id"), verb == "approve", d.By, d.Why)
	if err != nil {
		msg = err.Error()
	}
	http.Redirect(w, req, "/?result="+templateEscape(msg), http.StatusSeeOther)
}

func (r *remediator) uiBrake(w http.ResponseWriter, req *http.Request) {
	d, err := r.readDecision(req)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	r.releaseBrake(req.Context(), d.By, d.Why)
	http.Redirect(w, req, "/?result=brake+released", http.StatusSeeOther)
}

func templateEscape(s string) string {
	return strings.ReplaceAll(template.URLQueryEscaper(s), "%20", "+")
}

var pageTmpl = template.Must(template.New("page").Funcs(template.FuncMap{
	"ago": func(t time.Time) string { return time.Since(t).Round(time.Second).String() },
	"in":  func(t time.Time) string { return time.Until(t).Round(time.Second).String() },
}).Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>certpulse remediation approvals</title>
<style>body{font-family:sans-serif;margin:2em}table{border-collapse:collapse}td,th{border:1px solid #ccc;padding:.4em;vertical-align:top}
.brake{padding:.6em;background:#fdd}.ok{padding:.6em;background:#dfd}pre{white-space:pre-wrap;margin:0}</style></head>
<body><h1>certpulse remediation</h1>
<p id="who">Signed in as <b>{{.Who}}</b>; decisions are recorded under this name.</p>
{{if .Result}}<p id="result">{{.Result}}</p>{{end}}
{{if .Brake.Engaged}}<div class="brake" id="brake">Brake engaged since {{.Brake.Since.Format "2006-01-02 15:04:05Z07:00"}}: {{.Brake.Reason}}.
<form method="post" action="/ui/brake"><input name="why" placeholder="why"> <button id="release">Release brake</button></form></div>
{{else}}<div class="ok" id="brake">Automation running (brake released).</div>{{end}}
<h2>Pending approvals</h2>
{{if not .Pending}}<p id="none">Nothing awaits approval.</p>{{else}}
<table id="pending"><tr><th>incident</th><th>action</th><th>evidence</th><th>expires in</th><th>decision</th></tr>
{{range .Pending}}<tr id="p-{{.ID}}"><td><b>{{.Incident.Service}}</b> {{.Incident.Reason}} [{{.Incident.Severity}}]<br><small>{{.Incident.Summary}}</small></td>
<td>{{.Action}} ({{.Operation}}), attempt {{.Attempt}}<br><small>policy {{.Policy}}</small></td>
<td>{{range .Evidence}}<pre>{{.}}</pre>{{end}}</td><td>{{in .Expires}}</td>
<td><form method="post" action="/ui/decide"><input type="hidden" name="id" value="{{.ID}}">
<input name="why" placeholder="why">
<button name="decision" value="approve" class="approve">Approve</button> <button name="decision" value="deny" class="deny">Deny</button></form></td></tr>{{end}}
</table>{{end}}
</body></html>`))

func (r *remediator) page(w http.ResponseWriter, req *http.Request) {
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'")
	_ = pageTmpl.Execute(w, map[string]any{"Pending": r.pendingList(), "Brake": r.brakeState(), "Result": req.URL.Query().Get("result"), "Who": r.who(req)})
}
