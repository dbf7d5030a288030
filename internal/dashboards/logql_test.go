package dashboards

import (
	"strings"
	"testing"
)

func TestCheckStreamSelectors(t *testing.T) {
	for _, tc := range []struct {
		expr, err string
	}{
		{`{service_name=~".+"} | certpulse_severity="page"`, ""},
		{`sum by (service_name) (count_over_time({service_name="a", deployment_environment_name!="b"} [5m]))`, ""},
		{`{cloud_region="eu"} | line_format "{{.service_name}}"`, ""},
		{`{certpulse_reason="expired_leaf"}`, "certpulse_reason"},
		{`{service_name="a", server_address="x"} |= "y"`, "server_address"},
		{`count_over_time(x[5m])`, "no stream selector"},
	} {
		err := CheckStreamSelectors(tc.expr)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%s: %v", tc.expr, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%s: error %v, want one naming %q", tc.expr, err, tc.err)
		}
	}
}

// TestLogQLSelectorsMatchStreams: every LogQL expression of the dashboards
// selects streams by labels certpulse's records have in Loki.
func TestLogQLSelectorsMatchStreams(t *testing.T) {
	n := 0
	for _, d := range All() {
		for _, e := range d.LogQL() {
			n++
			if err := CheckStreamSelectors(e.Expr); err != nil {
				t.Errorf("%s / %s: %v", d.UID, e.Where, err)
			}
		}
	}
	if n == 0 {
		t.Fatal("no LogQL expressions")
	}
}
