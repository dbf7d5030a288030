package dashboards

import "strings"

// Substitute replaces the dashboards' Grafana variables in expr the way
// Grafana would with every variable at "All" (.*), the interval macros at
// fixed durations and $endpoint at the given server address: what the checks
// outside Grafana (parsers, a real Prometheus) run.
func Substitute(expr, endpoint string) string {
	return strings.NewReplacer("$__auto", "5m", "$__interval", "1m", "$__rate_interval", "1m", "$__range", "1h",
		"$environment", ".*", "$service", ".*", "$owner", ".*", "$region", ".*", "$vantage", ".*", "$profile", ".*",
		"$endpoint", endpoint).Replace(expr)
}
