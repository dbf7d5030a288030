package trigger

import "testing"

func TestClaimsOneOwnerInOrder(t *testing.T) {
	h := NewHub()
	a, b, c := h.Claim("shop:443"), h.Claim("shop:443"), h.Claim("shop:443")
	other := h.Claim("api:443")
	owners := func() [4]bool { return [4]bool{a.Owner(), b.Owner(), c.Owner(), other.Owner()} }
	if got := owners(); got != [4]bool{true, false, false, true} {
		t.Fatalf("owners %v, want the first claimant of each key", got)
	}
	b.Release() // a stand-by leaving changes nothing
	if got := owners(); got != [4]bool{true, false, false, true} {
		t.Fatalf("after a stand-by left: %v", got)
	}
	a.Release()
	if got := owners(); got != [4]bool{false, false, true, true} {
		t.Fatalf("after the owner left: %v, want the next in order to own", got)
	}
	a.Release() // twice: harmless
	c.Release()
	d := h.Claim("shop:443")
	if !d.Owner() {
		t.Fatal("a claim on a key nobody holds owns it")
	}
	if len(h.claims) != 2 {
		t.Errorf("claims table holds %d keys, want 2 (released keys are forgotten)", len(h.claims))
	}
}
