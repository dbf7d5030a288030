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
// verifyOutcome is what an independent re-probe says about an incident.
type verifyOutcome uint8

const (
	notReproduced verifyOutcome = iota
	inconclusive                // the verifier could not reach any endpoint
	reproduced
)

// judgeVerify decides from the re-probe's primary reasons: reproduced when
// one target shows the incident's reason (or probe reason); inconclusive
// when none does and at least one failed on the network (this collector
// cannot tell); otherwise not reproduced.
func judgeVerify(inc *Incident, primaries []attrs.Reason) verifyOutcome {
	out := notReproduced
	for _, p := range primaries {
		if p != attrs.ReasonOK && (p == inc.Reason || p == inc.ProbeReason) {
			return reproduced
		}
		if info, _ := attrs.Info(p); info.Side == attrs.SideNetwork && info.Failing {
			out = inconclusive
		}
	}
	return out
}

func (r *remediator) verify(ctx context.Context, inc *Incident) (verifyOutcome, []string) {
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
		return notReproduced, []string{"no endpoint to re-probe"}
	}
	var evidence []string
	var primaries []attrs.Reason
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
		primaries = append(primaries, primary)
	}
	return judgeVerify(inc, primaries), evidence
}
