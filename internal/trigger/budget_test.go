package trigger

import "testing"

// TestHubBudgetIsPerCollector: every receiver on one hub (receiver_creator
// starts one per discovered target) draws from one budget, so the extra
// probes a collector adds do not grow with the number of targets.
func TestHubBudgetIsPerCollector(t *testing.T) {
	h := NewHub()
	a, b := h.Budget(1, 3), h.Budget(1, 3)
	if a != b {
		t.Fatal("two receivers with the same settings got two budgets")
	}
	allowed := 0
	for i := 0; i < 10; i++ {
		if a.Allow() {
			allowed++
		}
		if b.Allow() {
			allowed++
		}
	}
	if allowed != 3 {
		t.Errorf("%d extra probes allowed across two receivers, want the burst of 3", allowed)
	}
	if NewHub().Budget(1, 3) == a {
		t.Error("another collector's hub shares the budget")
	}
}
