package remediationexporter // import "github.com/certpulse/certpulse/exporter/remediationexporter"

import (
	"cmp"
	"context"
	"fmt"
	"strings"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// verify re-probes the incident's endpoints from this collector with the
// shared inspection library. reproduced is true when any endpoint still
// fails; evidence says what each probe saw.
func (r *remediator) verify(ctx context.Context, inc *Incident) (reproduced bool, evidence []string) {
	targets := inc.Targets
	if len(targets) == 0 {
		for _, e := range inc.Endpoints {
			targets = append(targets, "@"+e)
		}
	}
	if len(targets) > r.cfg.Verify.MaxTargets {
		targets = targets[:r.cfg.Verify.MaxTargets]
	}
	if len(targets) == 0 {
		return false, []string{"no endpoint to re-probe"}
	}
	for _, t := range targets {
		sni, dial, _ := strings.Cut(t, "@")
		p := tlsinspect.Profile{Name: "verify", TLS: r.verifyTLS.Clone(), Roots: r.verifyTLS.RootCAs}
		res := r.inspector.Inspect(ctx, tlsinspect.Target{Endpoint: dial, ServerName: sni, Profiles: []tlsinspect.Profile{p}})[0]
		primary := res.Primary()
		line := fmt.Sprintf("%s via %s: %s", cmp.Or(sni, dial), dial, primary)
		if len(res.Findings) > 0 {
			line += " (" + res.Findings[0].Detail + ")"
		}
		evidence = append(evidence, line)
		if info, _ := attrs.Info(primary); primary != attrs.ReasonOK && (info.Failing || string(primary) == inc.Reason || string(primary) == inc.ProbeReason) {
			reproduced = true
		}
	}
	return reproduced, evidence
}
