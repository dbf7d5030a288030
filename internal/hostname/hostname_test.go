package hostname

import "testing"

func TestMatch(t *testing.T) {
	for _, c := range []struct {
		pattern, name string
		want          bool
	}{
		{"app.test", "app.test", true},
		{"app.test", "APP.test", true},
		{"app.test", "x.app.test", false},
		{"*.app.test", "x.app.test", true},
		{"*.app.test", "y.x.app.test", false},
		{"*.app.test", "app.test", false},
		{"*.app.test", ".app.test", false},
		{"app.test", "", false},
	} {
		if got := Match(c.pattern, c.name); got != c.want {
			t.Errorf("Match(%q, %q) = %v", c.pattern, c.name, got)
		}
	}
}
