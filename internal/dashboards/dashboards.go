package dashboards

import "strings"

// Datasources: every panel uses one of the two datasource variables.
var (
	mimir = &Datasource{Type: "prometheus", UID: "${mimir}"}
	loki  = &Datasource{Type: "loki", UID: "${loki}"}
)

// Label filters of the routing-key variables (Mimir label names: dots to
// underscores). An "All" selection is ".*", which also matches a missing
// label (cloud_region on targets without one).
const (
	routing = `deployment_environment_name=~"$environment", service_name=~"$service", certpulse_owner=~"$owner", cloud_region=~"$region", certpulse_vantage=~"$vantage"`
	// profiled adds the client profile, for series that carry it.
	profiled = routing + `, certpulse_client_profile=~"$profile"`
	// streams selects Loki streams: service x environment x region.
	streams = `service_name=~"$service", deployment_environment_name=~"$environment"`
)

// sel expands the selector shorthands {F (routing), {P (profiled) and {S
// (Loki streams), alone ({F}) or followed by more matchers ({F, x="y"}).
func sel(q string) string {
	return strings.NewReplacer("{F}", "{"+routing+"}", "{F,", "{"+routing+",", "{P}", "{"+profiled+"}", "{P,", "{"+profiled+",",
		"{S}", "{"+streams+"}", "{S,", "{"+streams+",").Replace(q)
}

// builder lays panels out left to right on the 24-column grid.
type builder struct {
	d          *Dashboard
	x, y, rowH int
}

func newDashboard(uid, title, desc string) *builder {
	return &builder{d: &Dashboard{
		UID: uid, Title: title, Description: desc, Tags: []string{"certpulse", "tls"}, SchemaVersion: 39,
		Time: TimeRange{From: "now-6h", To: "now"}, Refresh: "1m", Editable: true, Timezone: "browser", Style: "dark",
		Templating: Templating{List: variables()}, Links: []any{}, TimePicker: map[string]any{},
		Annotations: Annotations{List: []Annotation{
			{Name: "Annotations & Alerts", BuiltIn: 1, Datasource: &Datasource{Type: "grafana", UID: "-- Grafana --"}, Enable: true, Hide: true, IconColor: "rgba(0, 211, 255, 1)", Type: "dashboard"},
			// Lifecycle events (deployed, renewed, CA change, maintenance)
			// on every time series panel.
			{Name: "certificate lifecycle", Datasource: loki, Enable: true, IconColor: "blue",
				Expr:     sel(`{S} | certpulse_lifecycle_type=~"deployed|renewed|rotated|issued|maintenance_started|maintenance_ended|rotation_planned|remediation"`),
				TitleFmt: "{{certpulse_lifecycle_type}}", TextFormat: "{{service_name}}: {{__line__}}"},
		}},
	}}
}

func variables() []Variable {
	ds := func(name, label, typ string) Variable {
		return Variable{Name: name, Label: label, Type: "datasource", Query: typ, Current: map[string]any{}, Options: []any{}}
	}
	q := func(name, label, label2 string) Variable {
		return Variable{Name: name, Label: label, Type: "query", Datasource: mimir, Query: "label_values(tlsprobe_success, " + label2 + ")",
			Multi: true, IncludeAll: true, AllValue: ".*", Refresh: 2, Sort: 1, Current: map[string]any{"text": "All", "value": "$__all"}, Options: []any{}}
	}
	return []Variable{
		ds("mimir", "Mimir", "prometheus"),
		ds("loki", "Loki", "loki"),
		q("environment", "Environment", "deployment_environment_name"),
		q("service", "Service", "service_name"),
		q("owner", "Owner", "certpulse_owner"),
		q("region", "Region", "cloud_region"),
		q("vantage", "Vantage", "certpulse_vantage"),
		q("profile", "Client profile", "certpulse_client_profile"),
	}
}

// add places a panel w columns wide and h high.
func (b *builder) add(p *Panel, w, h int) {
	if b.x+w > 24 {
		b.x, b.y, b.rowH = 0, b.y+b.rowH, 0
	}
	p.ID = len(b.d.Panels) + 1
	p.GridPos = GridPos{X: b.x, Y: b.y, W: w, H: h}
	if p.FieldConfig == nil {
		p.FieldConfig = map[string]any{"defaults": map[string]any{}, "overrides": []any{}}
	}
	if p.Options == nil {
		p.Options = map[string]any{}
	}
	for i := range p.Targets {
		p.Targets[i].Datasource = p.Datasource
		if p.Targets[i].RefID == "" {
			p.Targets[i].RefID = string(rune('A' + i))
		}
	}
	b.d.Panels = append(b.d.Panels, p)
	b.x += w
	b.rowH = max(b.rowH, h)
}

func unit(u string) map[string]any {
	return map[string]any{"defaults": map[string]any{"unit": u}, "overrides": []any{}}
}

func prom(typ, title, desc, fieldUnit string, targets ...Target) *Panel {
	return &Panel{Type: typ, Title: title, Description: desc, Datasource: mimir, Targets: targets, FieldConfig: unit(fieldUnit)}
}

func logs(title, desc string, expr string) *Panel {
	return &Panel{Type: "logs", Title: title, Description: desc, Datasource: loki, Targets: []Target{{Expr: sel(expr)}},
		Options: map[string]any{"showTime": true, "wrapLogMessage": true, "sortOrder": "Descending", "enableLogDetails": true}}
}

func t(expr, legend string) Target { return Target{Expr: sel(expr), LegendFormat: legend} }

func instant(expr, legend string) Target {
	return Target{Expr: sel(expr), LegendFormat: legend, Instant: true, Format: "table"}
}

// All returns every dashboard.
func All() []*Dashboard {
	return []*Dashboard{fleet(), endpoint(), incidents(), edge()}
}

// fleet: what failed, where, and what is already being done about it.
func fleet() *Dashboard {
	b := newDashboard("certpulse-fleet", "certpulse: TLS fleet overview",
		"Inventory, expiry horizon, validation SLO, OCSP, chains and pins, failures by reason, region, vantage and client profile, TLS mix, and current incidents.")
	leafLeft := `min by (service_name, server_address, server_port) (tlsprobe_cert_time_left{F, certpulse_cert_role="leaf"})`
	b.add(prom("stat", "Endpoints", "Endpoints probed (host:port).", "none", instant(`count(count by (server_address, server_port) (tlsprobe_success{F}))`, "")), 4, 4)
	b.add(prom("stat", "Certificates", "Certificates presented by the endpoints.", "none", instant(`count(count by (server_address, server_port, certpulse_cert_position) (tlsprobe_cert_time_left{F}))`, "")), 4, 4)
	b.add(prom("stat", "Services", "", "none", instant(`count(count by (service_name) (tlsprobe_success{F}))`, "")), 4, 4)
	b.add(prom("stat", "Validation success (30d)", "Share of validated probes; the SLO is 99.99%.", "percentunit", instant(`avg(avg_over_time(tlsprobe_success{P}[30d]))`, "")), 6, 4)
	b.add(prom("stat", "Error budget left (30d)", "1 - (failed share / 0.01%).", "percentunit", instant(`1 - (1 - avg(avg_over_time(tlsprobe_success{P}[30d]))) / (1 - 0.9999)`, "")), 6, 4)

	b.add(prom("bargauge", "Expiry horizon (leaves)", "Leaf certificates by tier: 3d page, 7d alert, 14d and 30d ticket.", "none",
		instant(`count(`+leafLeft+` <= 3 * 86400) or vector(0)`, "< 3d (page)"),
		instant(`count(`+leafLeft+` <= 7 * 86400 and `+leafLeft+` > 3 * 86400) or vector(0)`, "3-7d (alert)"),
		instant(`count(`+leafLeft+` <= 14 * 86400 and `+leafLeft+` > 7 * 86400) or vector(0)`, "7-14d (ticket)"),
		instant(`count(`+leafLeft+` <= 30 * 86400 and `+leafLeft+` > 14 * 86400) or vector(0)`, "14-30d (ticket)")), 8, 8)
	b.add(prom("table", "Expiring soonest", "Leaves by time left, with notAfter.", "s",
		instant(`bottomk(20, `+leafLeft+`)`, "")), 16, 8)

	b.add(prom("timeseries", "Validation success ratio and burn", "Success ratio over 1h, and the error budget burn rate (1 = the budget lasts 30 days).", "percentunit",
		t(`avg(avg_over_time(tlsprobe_success{P}[1h]))`, "success (1h)"),
		t(`(1 - avg(avg_over_time(tlsprobe_success{P}[1h]))) / (1 - 0.9999)`, "burn rate")), 12, 8)
	b.add(prom("timeseries", "Failures by reason", "Current primary reason of failing results, by reason.", "none",
		t(`sum by (certpulse_reason) (tlsprobe_result{P, certpulse_reason!="ok"})`, "{{certpulse_reason}}")), 12, 8)

	b.add(prom("timeseries", "Failing by region and vantage", "", "none",
		t(`sum by (cloud_region, certpulse_vantage) (1 - tlsprobe_success{P})`, "{{cloud_region}} {{certpulse_vantage}}")), 8, 8)
	b.add(prom("timeseries", "Failing by client profile", "", "none",
		t(`sum by (certpulse_client_profile) (1 - tlsprobe_success{P})`, "{{certpulse_client_profile}}")), 8, 8)
	b.add(prom("timeseries", "Chains and pins", "Chain validation problems and pin mismatches.", "none",
		t(`sum by (certpulse_reason) (tlsprobe_result{P, certpulse_reason=~"missing_intermediate|unknown_ca|expired_intermediate|expired_root|bad_chain_order|self_signed|pin_mismatch"})`, "{{certpulse_reason}}")), 8, 8)

	b.add(prom("timeseries", "OCSP responder latency (p95)", "", "s",
		t(`quantile(0.95, tlsprobe_ocsp_responder_duration{F})`, "p95")), 8, 8)
	b.add(prom("timeseries", "OCSP status", "Endpoints by what OCSP said about their leaf.", "none",
		t(`sum by (certpulse_ocsp_status) (tlsprobe_ocsp_status{F})`, "{{certpulse_ocsp_status}}")), 8, 8)
	b.add(prom("timeseries", "Oldest stapled response", "", "s",
		t(`max(tlsprobe_ocsp_staple_age{F})`, "max staple age")), 8, 8)

	b.add(prom("piechart", "TLS versions", "", "none", instant(`sum by (tls_protocol_version) (tlsprobe_tls_info{P})`, "TLS {{tls_protocol_version}}")), 8, 8)
	b.add(prom("piechart", "Cipher suites", "", "none", instant(`sum by (tls_cipher) (tlsprobe_tls_info{P})`, "{{tls_cipher}}")), 8, 8)
	b.add(prom("piechart", "Key exchange groups", "X25519MLKEM768 is post-quantum hybrid.", "none", instant(`sum by (tls_curve) (tlsprobe_tls_info{P})`, "{{tls_curve}}")), 8, 8)

	b.add(logs("Current incidents", "Incident transitions, newest first, with severity and remediation state.",
		`{S} | certpulse_incident_state=~"opened|escalated|updated|suppressed|resolved"`), 24, 10)
	return b.d
}

// endpoint: one endpoint in detail.
func endpoint() *Dashboard {
	b := newDashboard("certpulse-endpoint", "certpulse: endpoint detail",
		"Every certificate of the chain, phase durations, reason history, OCSP and CRL, and chain changes from the probe records.")
	b.d.Templating.List = append(b.d.Templating.List, Variable{Name: "endpoint", Label: "Endpoint", Type: "query", Datasource: mimir,
		Query: `label_values(tlsprobe_success{service_name=~"$service"}, server_address)`, Refresh: 2, Sort: 1, Current: map[string]any{}, Options: []any{}})
	ep := `server_address="$endpoint"`
	b.add(prom("table", "Chain: time left and notAfter", "Every presented certificate by position and role.", "s",
		instant(`tlsprobe_cert_time_left{F, `+ep+`}`, ""),
		instant(`tlsprobe_cert_not_after{F, `+ep+`} * 1000`, "")), 12, 8)
	b.add(prom("timeseries", "Lifetime used", "Share of each certificate's validity period that has passed.", "percentunit",
		t(`tlsprobe_cert_lifetime_used{P, `+ep+`}`, "{{certpulse_cert_role}} {{certpulse_cert_position}} [{{certpulse_client_profile}}]")), 12, 8)
	b.add(prom("timeseries", "Phase durations", "", "s",
		t(`avg by (certpulse_phase) (tlsprobe_duration{P, `+ep+`})`, "{{certpulse_phase}}")), 12, 8)
	b.add(prom("timeseries", "Reason history", "", "none",
		t(`sum by (certpulse_reason, certpulse_client_profile) (tlsprobe_result{P, `+ep+`})`, "{{certpulse_reason}} [{{certpulse_client_profile}}]")), 12, 8)
	b.add(prom("timeseries", "OCSP and CRL status", "", "none",
		t(`sum by (certpulse_ocsp_status) (tlsprobe_ocsp_status{F, `+ep+`})`, "OCSP {{certpulse_ocsp_status}}"),
		t(`sum by (certpulse_crl_status) (tlsprobe_crl_status{F, `+ep+`})`, "CRL {{certpulse_crl_status}}")), 12, 8)
	b.add(prom("timeseries", "TLS negotiated", "", "none",
		t(`sum by (tls_protocol_version, tls_cipher, tls_curve) (tlsprobe_tls_info{P, `+ep+`})`, "{{tls_protocol_version}} {{tls_cipher}} {{tls_curve}}")), 12, 8)
	b.add(logs("Probe results (chain fingerprint, reasons)", "Each probe record: the chain fingerprint changes when the served chain changes.",
		`{S} | server_address="$endpoint" | certpulse_chain_sha256!=""`), 24, 10)
	return b.d
}

// incidents: what is open, and what is already being done about it.
func incidents() *Dashboard {
	b := newDashboard("certpulse-incidents", "certpulse: incidents and remediation",
		"Open incidents, their timeline, remediation decisions and the audit trail, approvals pending and the brake.")
	open := `certpulse_incidents_open{deployment_environment_name=~"$environment", service_name=~"$service", certpulse_owner=~"$owner"}`
	b.add(prom("stat", "Open incidents", "The correlator's snapshot (every open_incidents_interval), in Mimir.", "none", instant(`sum(`+open+`) or vector(0)`, "")), 4, 6)
	b.add(prom("stat", "Remediation brake", "1: engaged (automation halted until an operator releases it), 0: released; from the latest brake audit event.", "none",
		instant(`max(certpulse_remediation_brake) or vector(0)`, "")), 4, 6)
	b.add(prom("bargauge", "Open incidents by severity and remediation", "Remediation: none, running (an attempt under way) or awaiting_approval.", "none",
		instant(`sum by (certpulse_severity, certpulse_incident_remediation) (`+open+`)`, "{{certpulse_severity}} / {{certpulse_incident_remediation}}")), 7, 6)
	b.add(prom("table", "Open incidents by service and reason", "", "none",
		instant(`sum by (service_name, deployment_environment_name, certpulse_owner, certpulse_reason, certpulse_severity) (`+open+`) > 0`, "")), 9, 6)
	// Time to detect, act and fix (signaltometrics/incidents, on each
	// resolved incident): MTTD and MTTR by reason, with automation and
	// without (remediation in dry-run counts as without).
	mean := func(m string) string {
		by := `certpulse_reason, certpulse_incident_automated`
		if m == "time_to_act" {
			by = `certpulse_reason`
		}
		h := `certpulse_incident_` + m + `%s{service_name=~"$service"}`
		// The filter is on the count: a reason with no incident in the
		// range shows nothing, and one whose incidents took 0 s shows 0.
		return rangeIncrease(strings.Replace(h, "%s", "_sum", 1), by) + ` / (` + rangeIncrease(strings.Replace(h, "%s", "_count", 1), by) + ` > 0)`
	}
	b.add(prom("bargauge", "MTTD by reason", "Mean time from the fault's start (its first failing probe, or the deploy before it) to the incident opening, over the range; automated=true: remediation acted.", "s",
		instant(mean("time_to_detect"), "{{certpulse_reason}} automated={{certpulse_incident_automated}}")), 6, 7)
	b.add(prom("bargauge", "Mean time to act by reason", "From the incident opening to the first remediation action sent (incidents remediation acted on), over the range.", "s",
		instant(mean("time_to_act"), "{{certpulse_reason}}")), 6, 7)
	b.add(prom("bargauge", "MTTR (fault to fixed) by reason", "Mean time from the fault's start to every affected endpoint healthy again, over the range, with automation (true) and without (false: no policy, dry-run or a person fixed it).", "s",
		instant(mean("time_to_fix"), "{{certpulse_reason}} automated={{certpulse_incident_automated}}")), 6, 7)
	b.add(prom("bargauge", "Time to fix, p95, with and without automation", "95th percentile of fault to fixed over the range (histogram buckets).", "s",
		instant(`histogram_quantile(0.95, `+rangeIncrease(`certpulse_incident_time_to_fix_bucket{service_name=~"$service"}`, `le, certpulse_incident_automated`)+`)`, "automated={{certpulse_incident_automated}}")), 6, 7)
	b.add(&Panel{Type: "timeseries", Title: "Incident transitions by severity", Datasource: loki, FieldConfig: unit("none"),
		Targets: []Target{{Expr: sel(`sum by (certpulse_severity) (count_over_time({S} | certpulse_incident_state=~"opened|escalated" [$__auto]))`), LegendFormat: "{{certpulse_severity}}"}}}, 12, 8)
	b.add(&Panel{Type: "timeseries", Title: "Remediation decisions by outcome", Datasource: loki, FieldConfig: unit("none"),
		Targets: []Target{{Expr: sel(`sum by (certpulse_lifecycle_pipeline_stage) (count_over_time({S} | certpulse_lifecycle_type="remediation" [$__auto]))`), LegendFormat: "{{certpulse_lifecycle_pipeline_stage}}"}}}, 12, 8)
	b.add(logs("Incident timeline", "Every transition: opened, updated, escalated, suppressed (by what), resolved (healthy or expired).",
		`{S} | certpulse_incident_state!=""`), 12, 12)
	b.add(logs("Remediation audit trail", "Every decision: verified with evidence, dry_run, awaiting_approval, approved/denied (by whom), sent, failed, brake.",
		`{S} | certpulse_lifecycle_type="remediation"`), 12, 12)
	b.add(logs("Awaiting approval and the brake", "Held actions and brake changes; approve on the remediation exporter's approval page.",
		`{S} | certpulse_lifecycle_type="remediation" | certpulse_lifecycle_pipeline_stage=~"awaiting_approval|approved|denied|expired|brake_engaged|brake_released"`), 24, 8)
	return b.d
}

// edge: what real clients experience at the proxies (the tlsedge connector),
// and which clients a stricter policy would strand.
func edge() *Dashboard {
	b := newDashboard("certpulse-edge", "certpulse: edge (real clients)",
		"Handshakes of real clients at nginx, HAProxy, Caddy and Envoy: success rate, failures by reason, resumption by node, versions and ciphers, inferred HelloRetryRequests, 0-RTT on unsafe methods, the policy what-if, and real users' browsers' failure reports (Network Error Logging).")
	const e = `service_name=~"$service", deployment_environment_name=~"$environment"`
	hs := `tlsedge_handshakes{` + e + `}`
	ok := `tlsedge_handshakes{` + e + `, certpulse_edge_outcome="success"}`
	b.add(prom("stat", "Handshake success (5m)", "Share of real clients' handshakes that completed; below 99.5% the correlator opens handshake_failure_rate.", "percentunit",
		instant(`sum(rate(`+ok+`[5m])) / sum(rate(`+hs+`[5m]))`, "")), 6, 5)
	b.add(prom("stat", "Resumed (5m)", "Share of successful handshakes that resumed a session (above 80% is healthy).", "percentunit",
		instant(`sum(rate(tlsedge_handshakes{`+e+`, certpulse_edge_outcome="success", tls_resumed="true"}[5m])) / sum(rate(`+ok+`[5m]))`, "")), 6, 5)
	b.add(prom("stat", "HelloRetryRequest, inferred (5m)", "TLS 1.3 handshakes whose chosen group is not one the client sent a key share for (above 5%: a key-share mismatch adds a round trip); the exact rate is tlsprobe's certpulse.tls.hello_retry.", "percentunit",
		instant(`sum(rate(tlsedge_hello_retries{`+e+`}[5m])) / sum(rate(tlsedge_handshakes{`+e+`, certpulse_edge_outcome="success", tls_protocol_version="1.3"}[5m]))`, "")), 6, 5)
	b.add(prom("stat", "0-RTT on non-idempotent methods (1h)", "Requests sent as early data with POST, PATCH...: the server must refuse them (425).", "none",
		instant(`sum(increase(tlsedge_early_data_non_idempotent{`+e+`}[1h])) or vector(0)`, "")), 6, 5)

	b.add(prom("timeseries", "Handshake success by service", "", "percentunit",
		t(`sum by (service_name) (rate(`+ok+`[5m])) / sum by (service_name) (rate(`+hs+`[5m]))`, "{{service_name}}")), 12, 8)
	b.add(prom("timeseries", "Failed handshakes by reason", "The proxies' failure reasons as certpulse reason codes (a client's unknown_ca after a deploy: a missing intermediate).", "ops",
		t(`sum by (certpulse_reason) (rate(tlsedge_handshakes{`+e+`, certpulse_edge_outcome="failure"}[5m]))`, "{{certpulse_reason}}")), 12, 8)
	b.add(prom("timeseries", "Resumption by node", "Below 50% on some nodes while others resume: session ticket keys out of sync (resumption_degraded).", "percentunit",
		t(`sum by (certpulse_edge_node) (rate(tlsedge_handshakes{`+e+`, certpulse_edge_outcome="success", tls_resumed="true"}[5m])) / sum by (certpulse_edge_node) (rate(`+ok+`[5m]))`, "{{certpulse_edge_node}}")), 12, 8)
	b.add(prom("timeseries", "Handshakes by node", "", "ops",
		t(`sum by (certpulse_edge_node) (rate(`+hs+`[5m]))`, "{{certpulse_edge_node}}")), 12, 8)
	b.add(prom("piechart", "TLS versions (real clients)", "", "none", instant(`sum by (tls_protocol_version) (increase(`+ok+`[$__range]))`, "TLS {{tls_protocol_version}}")), 8, 8)
	b.add(prom("piechart", "Cipher suites (real clients)", "IANA names.", "none", instant(`topk(10, sum by (tls_cipher) (increase(`+ok+`[$__range])))`, "{{tls_cipher}}")), 8, 8)
	b.add(prom("piechart", "Key exchange groups (real clients)", "Where the proxy logs it (nginx).", "none", instant(`sum by (tls_curve) (increase(tlsedge_handshakes{`+e+`, certpulse_edge_outcome="success", tls_curve!=""}[$__range]))`, "{{tls_curve}}")), 8, 8)

	// The policy what-if: who a stricter policy would strand.
	b.add(prom("bargauge", "Policy what-if: share that would fail", "For each candidate policy (tlsedge policies), the share of successful handshakes in the range it would have failed; undecided ones (offers not logged) are in the denominator.", "percentunit",
		instant(`sum by (certpulse_policy) (increase(tlsedge_policy_would_fail[$__range])) / sum by (certpulse_policy) (increase(tlsedge_policy_handshakes[$__range]))`, "{{certpulse_policy}}")), 12, 8)
	b.add(prom("table", "Policy what-if: who breaks", "Client classes (user agent family, or a fingerprint of what they offered) a policy would strand, and the first rule that breaks them.", "none",
		instant(`sum by (certpulse_policy, certpulse_edge_client_class, tls_protocol_version, certpulse_policy_rule) (increase(tlsedge_policy_would_fail[$__range])) > 0`, "")), 12, 8)

	b.add(prom("timeseries", "Log lines by kind", "Lines read from the proxies' logs: handshake, request, failure, other; unparsed lines are passed on as they are and counted here.", "ops",
		t(`sum by (certpulse_edge_proxy, certpulse_edge_record) (rate(tlsedge_records[5m]))`, "{{certpulse_edge_proxy}} {{certpulse_edge_record}}")), 12, 8)
	b.add(logs("Failed handshakes", "The proxies' own words (certpulse.edge.tls_failure) and the reason code.",
		`{S} | certpulse_edge_outcome="failure"`), 12, 8)
	b.add(logs("Edge incidents", "handshake_failure_rate and resumption_degraded, and probe incidents joined by edge telemetry or browsers' reports.",
		`{S} | certpulse_incident_state!="" | certpulse_reason=~"handshake_failure_rate|resumption_degraded" or certpulse_incident_edge_failure_share!="" or certpulse_clients_failing!=""`), 24, 8)

	// Real users: what browsers reported (Network Error Logging, the nel
	// receiver).
	const n = `certpulse_nel_reports{` + e + `, certpulse_reason!="ok"}`
	b.add(prom("stat", "Real-user failures (1h)", "Failed requests real browsers reported (NEL), all types.", "none",
		instant(`sum(increase(`+n+`[1h])) or vector(0)`, "")), 6, 8)
	b.add(prom("timeseries", "Real-user failures by type", "NEL types (tls.cert.date_invalid, tls.cert.authority_invalid, tls.version_or_cipher_mismatch, tcp.*, dns.*) reported by browsers.", "ops",
		t(`sum by (certpulse_nel_type) (rate(`+n+`[5m]))`, "{{certpulse_nel_type}}")), 9, 8)
	b.add(prom("timeseries", "Real-user failures by browser", "The reporting browser's family (user_agent.name).", "ops",
		t(`sum by (user_agent_name) (rate(`+n+`[5m]))`, "{{user_agent_name}}")), 9, 8)
	b.add(prom("table", "Real-user failures by service, type and browser", "Over the dashboard's range.", "none",
		instant(`sum by (service_name, certpulse_nel_type, certpulse_reason, user_agent_name) (increase(`+n+`[$__range])) > 0`, "")), 12, 8)
	b.add(logs("Browser reports", "Each NEL report: the origin (no path, no user), the type, the reason code, the browser family and major version.",
		`{S} | certpulse_nel_type!=""`), 12, 8)
	return b.d
}

// rangeIncrease is how much the cumulative series sel grew over the
// dashboard's range, summed by the labels by. The time-to histograms get a
// sample only when an incident resolves (deltatocumulative re-exports
// nothing), so increase() over the range sees nothing for a series with
// one sample and misses the first incident of every series; instead: the
// last value in the range minus the last value before it (0 for a series
// that began in the range). A counter reset (the gateway restarted) in the
// range undercounts it.
func rangeIncrease(sel, by string) string {
	sum := func(e string) string { return `sum by (` + by + `) (` + e + `)` }
	return `(` + sum(`last_over_time(`+sel+`[$__range])`) + ` - (` + sum(`last_over_time(`+sel+`[30d] offset $__range)`) +
		` or ` + sum(`last_over_time(`+sel+`[$__range])`) + ` * 0))`
}
