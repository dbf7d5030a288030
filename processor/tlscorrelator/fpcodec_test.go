package tlscorrelator

import (
	"strings"
	"testing"
)

func TestPackFP(t *testing.T) {
	hexFP := strings.Repeat("0f", 32)
	for _, tc := range []struct {
		name, in, packed string
	}{
		{"sha-256 hex", hexFP, "~Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8"},
		{"empty", "", ""},
		{"short", "c1", "c1"},
		{"upper hex", strings.ToUpper(hexFP), "!Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8"},
		{"mixed case stays", "0F" + hexFP[2:], "0F" + hexFP[2:]},
		{"digits only", strings.Repeat("1", 64), "~ERERERERERERERERERERERERERERERERERERERERERE"},
		{"upper mark by the sender", "!abc", "~!abc"},
		{"an upper packed form sent as it is", "!Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8", "~!Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8"},
		{"63 hex", hexFP[:63], hexFP[:63]},
		{"marked by the sender", "~abc", "~~abc"},
		{"marked twice by the sender", "~~", "~~~"},
		{"a packed form sent as it is", "~Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8", "~~Dw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8PDw8"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := packFP(tc.in); got != tc.packed {
				t.Errorf("packFP(%q) = %q, want %q", tc.in, got, tc.packed)
			}
			if got := unpackFP(tc.packed); got != tc.in {
				t.Errorf("unpackFP(%q) = %q, want %q", tc.packed, got, tc.in)
			}
		})
	}
	// What packFP cannot have written is read as it is.
	for _, s := range []string{"~", "!", "~short", "!short", "~" + strings.Repeat("*", 43), "!" + strings.Repeat("*", 43), hexFP} {
		if got := unpackFP(s); got != s {
			t.Errorf("unpackFP(%q) = %q, want it unchanged", s, got)
		}
	}
}

// FuzzPackFP: every string reads back as it was written.
func FuzzPackFP(f *testing.F) {
	for _, s := range []string{"", "~", "!", "~~x", "~!x", strings.Repeat("ab", 32), strings.Repeat("AB", 32), "~" + strings.Repeat("A", 43), "!" + strings.Repeat("A", 43)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got := unpackFP(packFP(s)); got != s {
			t.Fatalf("unpackFP(packFP(%q)) = %q", s, got)
		}
	})
}
