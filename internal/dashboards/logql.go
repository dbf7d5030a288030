package dashboards

import (
	"fmt"
	"regexp"
)

// LokiStreamLabels are the only stream labels certpulse's records produce
// in Loki (the label contract test in testbed/e2e asserts it of the built
// binary's records): a LogQL stream selector on anything else matches
// nothing.
var LokiStreamLabels = map[string]bool{"service_name": true, "deployment_environment_name": true, "cloud_region": true}

var (
	selectorRe = regexp.MustCompile(`\{\s*([a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"[^"]*"(?:\s*,\s*[a-zA-Z_][a-zA-Z0-9_]*\s*(?:=~|!~|!=|=)\s*"[^"]*")*)\s*\}`)
	matcherRe  = regexp.MustCompile(`([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)\s*"[^"]*"`)
)

// CheckStreamSelectors returns an error unless expr has at least one stream
// selector and every selector names only LokiStreamLabels (template text
// such as {{service_name}} is not a selector).
func CheckStreamSelectors(expr string) error {
	sels := selectorRe.FindAllStringSubmatch(expr, -1)
	if len(sels) == 0 {
		return fmt.Errorf("no stream selector in %q", expr)
	}
	for _, s := range sels {
		for _, m := range matcherRe.FindAllStringSubmatch(s[1], -1) {
			if !LokiStreamLabels[m[1]] {
				return fmt.Errorf("stream selector %s uses %s, which is structured metadata, not a stream label: filter it after a pipe", s[0], m[1])
			}
		}
	}
	return nil
}

// LogQLExpr is one LogQL expression of a dashboard and where it is.
type LogQLExpr struct {
	Where, Expr string
}

// LogQL returns the dashboard's LogQL: its annotations' and its Loki panels'
// targets.
func (d *Dashboard) LogQL() []LogQLExpr {
	var out []LogQLExpr
	for _, a := range d.Annotations.List {
		if a.Expr != "" {
			out = append(out, LogQLExpr{"annotation " + a.Name, a.Expr})
		}
	}
	for _, p := range d.Panels {
		if p.Datasource.UID != "${loki}" {
			continue
		}
		for _, tg := range p.Targets {
			out = append(out, LogQLExpr{p.Title, tg.Expr})
		}
	}
	return out
}
