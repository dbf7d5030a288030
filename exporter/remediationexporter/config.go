package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"github.com/certpulse/certpulse/internal/listen"
	"github.com/certpulse/certpulse/internal/tlsinspect"

	"errors"
	"fmt"
	"net/url"
	"strings"
	"time"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/config/configretry"
	"go.opentelemetry.io/collector/config/configtls"
	"go.opentelemetry.io/collector/exporter/exporterhelper"

	"github.com/certpulse/certpulse/internal/attrs"
)

// Config is the remediation exporter configuration.
type Config struct {
	// QueueSettings: incidents are queued (persistently with `storage`)
	// before decisions are made.
	QueueSettings configoptional.Optional[exporterhelper.QueueBatchConfig] `mapstructure:"sending_queue"`

	// DryRun makes every decision and audits it, but calls nothing.
	DryRun bool `mapstructure:"dry_run"`
	// Policies: every matching policy notifies (its Alertmanager actions);
	// the first matching policy with webhook actions remediates.
	Policies   []PolicyConfig   `mapstructure:"policies"`
	Guardrails GuardrailsConfig `mapstructure:"guardrails"`
	Verify     VerifyConfig     `mapstructure:"verify"`
	// ActionRetry retries a failing webhook delivery (5xx, timeouts)
	// before giving up with an audit record.
	ActionRetry configretry.BackOffConfig `mapstructure:"action_retry"`
	// Approval serves the approval API and page (confighttp: auth
	// extensions, TLS). Without it, high-risk actions are never run.
	Approval configoptional.Optional[ApprovalConfig] `mapstructure:"approval"`
	// Audit posts every decision as a lifecycle event to a certlifecycle
	// receiver (confighttp client: endpoint, headers, auth).
	Audit configoptional.Optional[AuditConfig] `mapstructure:"audit"`
	// Storage keeps cooldowns, attempts, pending approvals and the brake
	// across restarts.
	Storage *component.ID `mapstructure:"storage"`
	// HandoverHold: an incident this instance has never seen before is
	// acted on no sooner than this after it first arrived, so that the
	// audit trail of another instance that acted on it (a gateway that
	// died, whose Kafka partitions this one took over) arrives first: the
	// attempts recorded there count here (cooldown, attempt cap, next
	// idempotency key). 0 (the default) for a single collector; the
	// gateway tier sets it.
	HandoverHold time.Duration `mapstructure:"handover_hold"`
	// AuditTrail (gateway tier) reads every gateway's audit trail back from
	// Kafka, so attempts made by a gateway that died count on the one that
	// takes over its incidents.
	AuditTrail configoptional.Optional[AuditTrailConfig] `mapstructure:"audit_trail"`
	// TrailSecret (at least 16 bytes), shared by the remediation exporters
	// of a deployment and nothing else, attests every audit event this
	// exporter posts; remediation history (attempts, last action) is only
	// learned from events it attests. Without it nothing is learned from
	// other instances: any lifecycle sender could post `remediation`
	// events and forge attempt counts. Required with audit_trail.
	TrailSecret configopaque.String `mapstructure:"trail_secret"`
	// Trigger names a certpulse_trigger extension: after an action of a
	// policy with verify_after, the incident's endpoints are probed at
	// once by this collector's tlsprobe receivers.
	Trigger *component.ID `mapstructure:"trigger"`

	_ struct{}
}

// PolicyConfig matches incidents and names ordered actions.
type PolicyConfig struct {
	Name         string              `mapstructure:"name"`
	Reasons      []string            `mapstructure:"reasons"`      // empty: any
	MinSeverity  attrs.SeverityLevel `mapstructure:"min_severity"` // default ticket
	Services     []string            `mapstructure:"services"`     // empty: any
	Environments []string            `mapstructure:"environments"`
	Owners       []string            `mapstructure:"owners"`
	// Verify re-probes the incident's endpoints first and acts only if the
	// failure reproduces (default true).
	Verify *bool `mapstructure:"verify"`
	// OnInconclusive: what to do when the verifier itself cannot reach the
	// endpoint (dns_failure, connection_refused, connection_reset,
	// handshake_timeout, not_tls): hold (default: audit inconclusive and do
	// nothing) or act.
	OnInconclusive string `mapstructure:"on_inconclusive"`
	DryRun         bool   `mapstructure:"dry_run"`
	// Risk raises every action of the policy to at least this class.
	Risk    attrs.Risk     `mapstructure:"risk"`
	Actions []ActionConfig `mapstructure:"actions"`
	// VerifyAfter makes the webhook actions steps, tried in order: each
	// attempt runs one step, then waits for the incident to be fixed
	// (every affected endpoint probing healthy) within the timeout. Fixed
	// is audited `fixed`; otherwise `ineffective`, and the next step runs
	// at once, within the attempt cap, the budget and the brake. Without
	// it, an attempt runs every action in order and ends at `sent`.
	VerifyAfter configoptional.Optional[VerifyAfterConfig] `mapstructure:"verify_after"`
}

// VerifyAfterConfig is how long a step has to fix an incident.
type VerifyAfterConfig struct {
	// Timeout (default 2m) should cover a probe interval or two: fixed is
	// the first healthy result on every affected endpoint.
	Timeout time.Duration `mapstructure:"timeout"`
}

// ActionConfig is one action of a policy.
type ActionConfig struct {
	Name string `mapstructure:"name"`
	// Type is webhook or alertmanager.
	Type string `mapstructure:"type"`
	// Operation says what the action does; it sets the default risk:
	// reload, reissue, bundle_refresh, rollback, freeze, notify are low; trust,
	// pins, delete are high.
	Operation string `mapstructure:"operation"`
	// Risk overrides the operation's default (low or high).
	Risk attrs.Risk `mapstructure:"risk"`

	// The HTTP client of the action (confighttp): tls (CA, mTLS client
	// certificate), proxy_url, auth (any client auth extension), headers,
	// timeout (per try; default 10s). Its endpoint is the Alertmanager
	// base URL (e.g. http://alertmanager:9093); webhooks use url.
	confighttp.ClientConfig `mapstructure:",squash"`

	// webhook
	URL             string              `mapstructure:"url"`
	Method          string              `mapstructure:"method"`
	Body            string              `mapstructure:"body"` // Go template over the incident
	HMACSecret      configopaque.String `mapstructure:"hmac_secret"`
	SignatureHeader string              `mapstructure:"signature_header"`
	// SignatureScheme: "certpulse" (the default: HMAC-SHA256 over
	// timestamp + "." + body, with X-Certpulse-Timestamp) or "body"
	// (HMAC-SHA256 over the body alone, as "sha256=<hex>" in
	// signature_header, default X-Hub-Signature-256: what adnanh/webhook's
	// payload-hmac-sha256 rule and GitHub-style receivers check). With
	// "body" the timestamp and idempotency key must be inside the signed
	// body ({{.Timestamp}}, {{.IdempotencyKey}}), so that the receiver
	// can refuse stale and repeated requests; the body is rendered anew
	// for every try.
	SignatureScheme string `mapstructure:"signature_scheme"`

	// alertmanager
	Labels map[string]string `mapstructure:"labels"`
}

// GuardrailsConfig bounds automation.
type GuardrailsConfig struct {
	// Cooldown between remediation attempts for one incident.
	Cooldown time.Duration `mapstructure:"cooldown"`
	// MaxAttempts per incident.
	MaxAttempts int `mapstructure:"max_attempts"`
	// Budget actions per BudgetWindow across all incidents; one more
	// engages the brake, which halts all automation until an operator
	// releases it.
	Budget       int           `mapstructure:"budget"`
	BudgetWindow time.Duration `mapstructure:"budget_window"`
	// MaxConcurrency bounds actions in flight.
	MaxConcurrency int `mapstructure:"max_concurrency"`
}

// VerifyConfig is how the exporter re-probes before acting.
type VerifyConfig struct {
	// TLS: trust store and client certificate of the verifying probe.
	TLS     configtls.ClientConfig `mapstructure:"tls"`
	Timeout time.Duration          `mapstructure:"timeout"`
	// MaxTargets bounds how many endpoints are re-probed per incident.
	MaxTargets int `mapstructure:"max_targets"`
	// AllowPrivateFetchNetworks: as tlsprobe's, for the verifier's OCSP,
	// CRL and AIA fetches.
	AllowPrivateFetchNetworks []string `mapstructure:"allow_private_fetch_networks"`
}

// ApprovalConfig is the approval server.
type ApprovalConfig struct {
	confighttp.ServerConfig `mapstructure:",squash"`
	// TTL: a pending action not decided within it expires.
	TTL time.Duration `mapstructure:"ttl"`
}

// AuditConfig is where decisions are posted as lifecycle events.
type AuditConfig struct {
	confighttp.ClientConfig `mapstructure:",squash"`
	// HMACSecret signs audit events like certpulse-send does.
	HMACSecret configopaque.String `mapstructure:"hmac_secret"`
	// QueueSize bounds audit events waiting to be posted (default 1000).
	// Posting never holds up a decision: when the queue is full an event
	// is dropped from the post (it stays in the collector log), counted in
	// otelcol_remediation_audit_dropped and logged.
	QueueSize int `mapstructure:"queue_size"`
}

func createDefaultConfig() *Config {
	retry := configretry.NewDefaultBackOffConfig()
	retry.InitialInterval = 500 * time.Millisecond
	retry.MaxInterval = 5 * time.Second
	retry.MaxElapsedTime = 30 * time.Second
	q := exporterhelper.NewDefaultQueueConfig()
	q.NumConsumers = 1 // decisions in arrival order
	return &Config{
		QueueSettings: configoptional.Some(q),
		Guardrails:    GuardrailsConfig{Cooldown: 30 * time.Minute, MaxAttempts: 3, Budget: 20, BudgetWindow: time.Hour, MaxConcurrency: 4},
		Verify:        VerifyConfig{TLS: configtls.NewDefaultClientConfig(), Timeout: 5 * time.Second, MaxTargets: 5},
		ActionRetry:   retry,
		// Off unless configured; when configured, these defaults fill in.
		Approval: configoptional.Default(ApprovalConfig{ServerConfig: approvalServerDefaults(), TTL: time.Hour}),
		Audit:    configoptional.Default(AuditConfig{ClientConfig: auditClientDefaults(), QueueSize: 1000}),
	}
}

var lowRisk = map[string]bool{"reload": true, "reissue": true, "bundle_refresh": true, "rollback": true, "freeze": true, "notify": true, "": true}
var highRisk = map[string]bool{"trust": true, "pins": true, "delete": true}

// risk returns the effective risk class of action a in policy p.
// risk is the effective risk of an action: the maximum of its operation's,
// its own and its policy's. Nothing lowers a high-risk operation below the
// approval gate.
func risk(p *PolicyConfig, a *ActionConfig) attrs.Risk {
	if highRisk[a.Operation] || a.Risk == attrs.RiskHigh || p.Risk == attrs.RiskHigh {
		return attrs.RiskHigh
	}
	return attrs.RiskLow
}

func (p *PolicyConfig) verify() bool { return p.Verify == nil || *p.Verify }

// Validate checks the configuration.
func (cfg *Config) Validate() error {
	var errs []error
	if at := cfg.AuditTrail.Get(); at != nil {
		if err := at.validate(); err != nil {
			errs = append(errs, err)
		}
		if cfg.TrailSecret == "" {
			errs = append(errs, errors.New("audit_trail needs trail_secret: remediation history is only learned from attested events"))
		}
	}
	if cfg.TrailSecret != "" && len(cfg.TrailSecret) < 16 {
		errs = append(errs, errors.New("trail_secret must be at least 16 bytes"))
	}
	if cfg.HandoverHold < 0 || cfg.HandoverHold > 10*time.Minute {
		errs = append(errs, errors.New("handover_hold must be between 0 and 10m"))
	}
	g := cfg.Guardrails
	if g.Cooldown < 0 || g.MaxAttempts < 1 || g.Budget < 1 || g.BudgetWindow <= 0 || g.MaxConcurrency < 1 {
		errs = append(errs, errors.New("guardrails: cooldown >= 0, max_attempts >= 1, budget >= 1, budget_window > 0, max_concurrency >= 1"))
	}
	if cfg.Verify.Timeout <= 0 || cfg.Verify.MaxTargets < 1 {
		errs = append(errs, errors.New("verify: timeout must be positive and max_targets >= 1"))
	}
	if _, err := tlsinspect.ParseNetworks(cfg.Verify.AllowPrivateFetchNetworks); err != nil {
		errs = append(errs, fmt.Errorf("verify: %w", err))
	}
	if a := cfg.Approval.Get(); a != nil && a.TTL <= 0 {
		errs = append(errs, errors.New("approval.ttl must be positive"))
	}
	if a := cfg.Approval.Get(); a != nil && !a.Auth.HasValue() && !listen.LoopbackOnly(a.NetAddr.Endpoint) {
		errs = append(errs, fmt.Errorf("approval.auth is required when listening on %s (only a loopback address may go without)", a.NetAddr.Endpoint))
	}
	if a := cfg.Audit.Get(); a != nil && a.QueueSize < 0 {
		errs = append(errs, errors.New("audit.queue_size must not be negative (0: the default, 1000)"))
	}
	if a := cfg.Audit.Get(); a != nil {
		if u, err := url.Parse(a.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			errs = append(errs, fmt.Errorf("audit.endpoint %q must be the certlifecycle receiver's URL, e.g. http://127.0.0.1:4380/v1/lifecycle", a.Endpoint))
		}
	}
	names := map[string]bool{}
	for i, p := range cfg.Policies {
		where := fmt.Sprintf("policies[%d] (%s)", i, p.Name)
		if p.Name == "" {
			errs = append(errs, fmt.Errorf("policies[%d]: name is required", i))
		} else if names[p.Name] {
			errs = append(errs, fmt.Errorf("%s: duplicate policy name", where))
		}
		names[p.Name] = true
		if p.MinSeverity != "" && attrs.SeverityRank(p.MinSeverity) == 0 && p.MinSeverity != attrs.SeverityInfo {
			errs = append(errs, fmt.Errorf("%s: min_severity %q must be info, ticket, alert or page", where, p.MinSeverity))
		}
		if p.Risk != "" && p.Risk != attrs.RiskLow && p.Risk != attrs.RiskHigh {
			errs = append(errs, fmt.Errorf("%s: risk must be low or high", where))
		}
		if p.OnInconclusive != "" && p.OnInconclusive != "hold" && p.OnInconclusive != "act" {
			errs = append(errs, fmt.Errorf("%s: on_inconclusive must be hold or act", where))
		}
		if len(p.Actions) == 0 {
			errs = append(errs, fmt.Errorf("%s: at least one action is required", where))
		}
		if va := p.VerifyAfter.Get(); va != nil && (va.Timeout < time.Second || va.Timeout > time.Hour) {
			errs = append(errs, fmt.Errorf("%s: verify_after.timeout must be between 1s and 1h", where))
		}
		anames := map[string]bool{}
		for j, a := range p.Actions {
			aw := fmt.Sprintf("%s.actions[%d] (%s)", where, j, a.Name)
			if a.Name == "" || anames[a.Name] {
				errs = append(errs, fmt.Errorf("%s: a unique name is required", aw))
			}
			anames[a.Name] = true
			if a.Risk != "" && a.Risk != attrs.RiskLow && a.Risk != attrs.RiskHigh {
				errs = append(errs, fmt.Errorf("%s: risk must be low or high", aw))
			}
			if highRisk[a.Operation] && (a.Risk == attrs.RiskLow || p.Risk == attrs.RiskLow) {
				errs = append(errs, fmt.Errorf("%s: risk \"low\" cannot lower operation %q, which is high-risk (trust, pins, delete need approval)", aw, a.Operation))
			}
			if !lowRisk[a.Operation] && !highRisk[a.Operation] {
				errs = append(errs, fmt.Errorf("%s: operation %q must be one of reload, reissue, bundle_refresh, rollback, freeze, notify, trust, pins, delete", aw, a.Operation))
			}
			switch a.Type {
			case "webhook":
				if u, err := url.Parse(a.URL); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					errs = append(errs, fmt.Errorf("%s: url %q must be an absolute http(s) URL", aw, a.URL))
				}
				if a.Body != "" {
					if _, err := parseBody(a.Name, a.Body); err != nil {
						errs = append(errs, fmt.Errorf("%s: body template: %w", aw, err))
					}
				}
				if a.Timeout < 0 {
					errs = append(errs, fmt.Errorf("%s: timeout must not be negative", aw))
				}
				switch a.SignatureScheme {
				case "", SchemeCertpulse:
				case SchemeBody:
					if a.HMACSecret == "" {
						errs = append(errs, fmt.Errorf("%s: signature_scheme body needs hmac_secret", aw))
					}
					if a.Body != "" && (!strings.Contains(a.Body, ".Timestamp") || !strings.Contains(a.Body, ".IdempotencyKey")) {
						errs = append(errs, fmt.Errorf("%s: with signature_scheme body, the body must carry {{.Timestamp}} and {{.IdempotencyKey}} (the signature covers the body alone: without them a captured request replays)", aw))
					}
				default:
					errs = append(errs, fmt.Errorf("%s: signature_scheme %q must be certpulse or body", aw, a.SignatureScheme))
				}
			case "alertmanager":
				if u, err := url.Parse(a.Endpoint); err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
					errs = append(errs, fmt.Errorf("%s: endpoint %q must be the Alertmanager base URL", aw, a.Endpoint))
				}
			default:
				errs = append(errs, fmt.Errorf("%s: type %q must be webhook or alertmanager", aw, a.Type))
			}
		}
	}
	return errors.Join(errs...)
}

func approvalServerDefaults() confighttp.ServerConfig {
	s := confighttp.NewDefaultServerConfig()
	s.NetAddr.Endpoint = "127.0.0.1:4381"
	return s
}

func auditClientDefaults() confighttp.ClientConfig {
	c := confighttp.NewDefaultClientConfig()
	c.Timeout = 5 * time.Second
	return c
}
