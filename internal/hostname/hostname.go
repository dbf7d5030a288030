// Package hostname matches server names against configured patterns: an
// exact name or "*.example.com" (exactly one label in place of the *).
package hostname // import "github.com/certpulse/certpulse/internal/hostname"

import "strings"

// Match reports whether name matches pattern; both are compared in lower
// case and an empty name matches nothing.
func Match(pattern, name string) bool {
	if name == "" {
		return false
	}
	pattern, name = strings.ToLower(pattern), strings.ToLower(name)
	if rest, ok := strings.CutPrefix(pattern, "*."); ok {
		head, tail, found := strings.Cut(name, ".")
		return found && head != "" && tail == rest
	}
	return pattern == name
}
