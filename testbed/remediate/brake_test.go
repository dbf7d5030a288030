package remediate

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// TestRemediateBrake: past the budget, the brake. Three endpoints whose CA
// refuses the reissue, with a budget of 2 actions: two reissues run (and
// fail), the third attempt engages the brake instead of running, and
// nothing runs after it: not the third reissue, not the freezes the failed
// reissues' next step would call. The approval API reports the brake, and
// no incident resolves (nothing was fixed).
func TestRemediateBrake(t *testing.T) {
	bin, pebbleBin := needParts(t)
	const budget = 2
	repo, _ := filepath.Abs(filepath.Join("..", ".."))
	s := &scenario{t: t, interval: 5 * time.Second, dir: t.TempDir(), repo: repo, kinds: []faultKind{kRefused}, perKind: 3, budget: budget}
	s.setup(bin, pebbleBin)
	s.warmUp()
	s.injectAll()

	remediation := attrs.EventLifecyclePrefix + attrs.LifecycleRemediation
	var engaged time.Time
	for deadline := time.Now().Add(2*time.Minute + 6*s.interval); engaged.IsZero() && time.Now().Before(deadline); time.Sleep(500 * time.Millisecond) {
		for _, r := range s.byEvent(remediation) {
			if attr(r, attrs.LifecyclePipelineStage) == string(attrs.OutcomeBrakeEngaged) {
				engaged = r.Timestamp().AsTime()
				t.Logf("brake engaged at %s: %s", engaged.Format("15:04:05.000"), attr(r, attrs.LifecycleMessage))
			}
		}
	}
	if engaged.IsZero() {
		t.Fatalf("no brake_engaged audit; decisions: %v", stages(s.byEvent(remediation)))
	}
	// Long enough for a failed reissue's next step (freeze) to be tried.
	time.Sleep(4 * s.interval)

	spent := map[string]bool{}
	for _, r := range s.byEvent(remediation) {
		st := attr(r, attrs.LifecyclePipelineStage)
		key := attr(r, attrs.LifecycleJobID)
		if key == "" || (st != string(attrs.OutcomeSent) && st != string(attrs.OutcomeFailed)) {
			continue
		}
		spent[key] = true
		if r.Timestamp().AsTime().After(engaged) && st == string(attrs.OutcomeSent) {
			t.Errorf("%s sent after the brake engaged (%s)", key, r.Timestamp().AsTime().Format("15:04:05.000"))
		}
	}
	var keys []string
	for k := range spent {
		keys = append(keys, k)
	}
	if len(spent) != budget {
		t.Errorf("%d actions spent (%v), want the budget, %d", len(spent), keys, budget)
	}
	for _, e := range s.eps {
		if _, err := os.Stat(s.path("runbooks", "frozen-"+e.svc)); err == nil {
			t.Errorf("%s frozen: a freeze ran past the budget", e.svc)
		}
		if e.kind == kRefused && s.resolvedHealthy(e) {
			t.Errorf("%s resolved healthy, yet its CA refuses and nothing was fixed", e.svc)
		}
	}
	s.checkRunsOnce()
	s.checkResolvedByHealthy()

	var brake struct {
		Engaged bool   `json:"engaged"`
		Reason  string `json:"reason"`
	}
	if err := s.apiGet("/api/v1/brake", &brake); err != nil {
		t.Fatal(err)
	}
	if !brake.Engaged || !strings.Contains(brake.Reason, "budget") {
		t.Errorf("approval API: brake %+v, want engaged for the budget", brake)
	}
	t.Logf("budget %d: actions spent %v; brake %+v", budget, keys, brake)
}
