package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"strconv"
	"strings"
	"time"

	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// targetSpec is how a target is probed, apart from its name.
type targetSpec struct {
	startTLS string
	pins     []string
	// profiles are the resolved client profiles (profileSet.resolve:
	// targets with the same names and ca_file share the slice).
	profiles []tlsinspect.Profile
	interval time.Duration
	fromFile bool
}

// inspectTarget is what the inspector dials for t.
func (t *probeTarget) inspectTarget() tlsinspect.Target {
	return tlsinspect.Target{Endpoint: t.meta.endpoint, ServerName: t.meta.serverName, StartTLS: t.startTLS, Pins: t.pins, Profiles: t.profiles}
}

// targetPool keeps one targetSpec and one targetLabels for all the
// targets of one load that have the same: a targets file of 100,000 names
// on one endpoint holds a handful of each, not 100,000 (about 150 bytes a
// target). It lives for one load; targets kept from an earlier load keep
// their own values, which are never modified.
type targetPool struct {
	specs   map[specKey]*targetSpec
	labeled map[targetLabels]*targetLabels
}

// specKey identifies a targetSpec: the profiles by their shared slice.
type specKey struct {
	startTLS string
	pins     string
	profiles *tlsinspect.Profile
	n        int
	interval time.Duration
	fromFile bool
}

func (p *targetPool) spec(s targetSpec) *targetSpec {
	k := specKey{startTLS: s.startTLS, pins: pinsKey(s.pins), n: len(s.profiles), interval: s.interval, fromFile: s.fromFile}
	if len(s.profiles) > 0 {
		k.profiles = &s.profiles[0]
	}
	if v, ok := p.specs[k]; ok {
		return v
	}
	if p.specs == nil {
		p.specs = map[specKey]*targetSpec{}
	}
	v := &s
	p.specs[k] = v
	return v
}

// pinsKey is the pins as one string, each quoted: no two lists share one.
func pinsKey(pins []string) string {
	var b strings.Builder
	for _, p := range pins {
		b.WriteString(strconv.Quote(p))
	}
	return b.String()
}

func (p *targetPool) labels(l *targetLabels) *targetLabels {
	if v, ok := p.labeled[*l]; ok {
		return v
	}
	if p.labeled == nil {
		p.labeled = map[targetLabels]*targetLabels{}
	}
	p.labeled[*l] = l
	return l
}
