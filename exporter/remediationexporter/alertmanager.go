package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"bytes"
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"
)

// alertFiringFor bounds how long a fired alert lives in Alertmanager
// without a resolution from certpulse.
const alertFiringFor = 24 * time.Hour

// amAlert is an Alertmanager v2 API alert.
type amAlert struct {
	Labels       map[string]string `json:"labels"`
	Annotations  map[string]string `json:"annotations,omitempty"`
	StartsAt     time.Time         `json:"startsAt,omitzero"`
	EndsAt       time.Time         `json:"endsAt,omitzero"`
	GeneratorURL string            `json:"generatorURL,omitempty"`
}

// alertLabels are the incident's routing keys, so Alertmanager's routing,
// grouping and silences apply.
func alertLabels(a *ActionConfig, inc *Incident) map[string]string {
	l := map[string]string{"alertname": "CertpulseIncident", "incident_id": inc.ID, "service": inc.Service, "severity": string(inc.Severity), "reason": string(inc.Reason)}
	for k, v := range map[string]string{"environment": inc.Environment, "owner": inc.Owner, "region": inc.Region, "criticality": inc.Criticality} {
		if v != "" {
			l[k] = v
		}
	}
	for k, v := range a.Labels {
		l[k] = v
	}
	return l
}

// postAlert fires (resolved=false) or resolves the incident's alert.
func (r *remediator) postAlert(ctx context.Context, a *ActionConfig, inc *Incident, resolved bool) error {
	al := amAlert{
		Labels:      alertLabels(a, inc),
		Annotations: map[string]string{"summary": inc.Summary, "impact": fmt.Sprintf("%.3f", inc.Impact), "endpoints": strings.Join(inc.Endpoints, ", ")},
		StartsAt:    inc.Time,
	}
	if resolved {
		al.EndsAt = time.Now()
	} else {
		// Incidents are emitted on transitions only, not re-sent: without
		// endsAt Alertmanager would resolve the alert after its
		// resolve_timeout (5m). It stays firing until resolved, or for
		// alertFiringFor if certpulse never says so.
		al.EndsAt = time.Now().Add(alertFiringFor)
	}
	body, err := json.Marshal([]amAlert{al})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, cmp.Or(a.Timeout, 10*time.Second))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, strings.TrimRight(a.Endpoint, "/")+"/api/v2/alerts", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := r.clientFor(a).Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	msg, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	if resp.StatusCode/100 != 2 {
		return fmt.Errorf("alertmanager: HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
	}
	return nil
}
