package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

import (
	"encoding/base64"
	"encoding/hex"
	"strings"
)

// Fingerprints are SHA-256 in hex (64 characters) in memory and in
// records: the chain's in lowercase, the leaf's in uppercase
// (tls.server.hash.sha256). The persisted state writes them in base64
// behind a mark, "~" for lowercase and "!" for uppercase (44 characters):
// 40 of an endpoint's bytes, a smaller file and fewer of its pages mapped
// by the agent. Any other string is written as it is, with a "~" before it
// when it begins with a mark (a record's attribute is the sender's
// choice), so that every string reads back as written (FuzzPackFP).

const (
	markLower  = '~'
	markUpper  = '!'
	markEscape = '~'
)

var packedEnc = base64.RawURLEncoding.Strict() // one spelling of each fingerprint

// packFP is fp as persisted.
func packFP(fp string) string {
	if len(fp) == 64 {
		if mark, ok := hexCase(fp); ok {
			var raw [32]byte
			if _, err := hex.Decode(raw[:], []byte(strings.ToLower(fp))); err == nil {
				return string(mark) + packedEnc.EncodeToString(raw[:])
			}
		}
	}
	if marked(fp) {
		return string(markEscape) + fp
	}
	return fp
}

// unpackFP is the string packFP wrote as s; a string packFP cannot have
// written is returned as it is (state from an earlier version holds the
// hex form).
func unpackFP(s string) string {
	if !marked(s) {
		return s
	}
	rest := s[1:]
	if s[0] == markEscape && marked(rest) {
		return rest
	}
	var raw [32]byte
	if len(rest) != packedEnc.EncodedLen(len(raw)) {
		return s
	}
	if n, err := packedEnc.Decode(raw[:], []byte(rest)); err != nil || n != len(raw) {
		return s
	}
	if s[0] == markUpper {
		return strings.ToUpper(hex.EncodeToString(raw[:]))
	}
	return hex.EncodeToString(raw[:])
}

func marked(s string) bool {
	return s != "" && (s[0] == markLower || s[0] == markUpper)
}

// hexCase: s is hex in one case only, and which (its mark).
func hexCase(s string) (byte, bool) {
	lower, upper := false, false
	for i := 0; i < len(s); i++ {
		switch c := s[i]; {
		case c >= '0' && c <= '9':
		case c >= 'a' && c <= 'f':
			lower = true
		case c >= 'A' && c <= 'F':
			upper = true
		default:
			return 0, false
		}
	}
	switch {
	case lower && upper:
		return 0, false
	case upper:
		return markUpper, true
	default: // lowercase, or digits only (either case: lowercase)
		return markLower, true
	}
}
