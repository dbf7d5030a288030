package tlsedgeconnector

import (
	"errors"
	"strconv"
	"strings"
	"unicode/utf8"
)

// errNotFlat: the line is not one JSON object of scalar values.
var errNotFlat = errors.New("not a flat JSON object")

// maxFlatKeys bounds the keys read from one line (the shipped formats
// write at most 17).
const maxFlatKeys = 64

// scanFlatJSON reads one JSON object whose values are strings, numbers,
// booleans or null (the access-log formats in distributions/edge write
// nothing else) and calls fn for each key and value, numbers and booleans
// as their text and null as "". Strings without escapes are substrings of
// line (no copy); an escaped string is decoded. Anything else (a nested
// object or array, trailing bytes, bad escapes, more than maxFlatKeys
// keys) is errNotFlat: the record is then counted unparsed, as a line the
// JSON parser refused was. It replaces contrib's json_parser for these
// formats: decoding into a map and stanza's entry cost about 11 us a line
// (docs/performance.md), this well under one.
func scanFlatJSON(line string, fn func(k, v string)) error {
	i := skipWS(line, 0)
	if i >= len(line) || line[i] != '{' {
		return errNotFlat
	}
	i = skipWS(line, i+1)
	if i < len(line) && line[i] == '}' {
		if skipWS(line, i+1) != len(line) {
			return errNotFlat
		}
		return nil
	}
	for n := 0; ; n++ {
		if n == maxFlatKeys {
			return errNotFlat
		}
		var k, v string
		var err error
		if k, i, err = jsonString(line, i); err != nil {
			return err
		}
		i = skipWS(line, i)
		if i >= len(line) || line[i] != ':' {
			return errNotFlat
		}
		i = skipWS(line, i+1)
		if i >= len(line) {
			return errNotFlat
		}
		switch c := line[i]; {
		case c == '"':
			v, i, err = jsonString(line, i)
		case c == '-' || (c >= '0' && c <= '9'):
			v, i, err = jsonNumber(line, i)
		case strings.HasPrefix(line[i:], "true"):
			v, i = "true", i+4
		case strings.HasPrefix(line[i:], "false"):
			v, i = "false", i+5
		case strings.HasPrefix(line[i:], "null"):
			v, i = "", i+4
		default:
			return errNotFlat // an object, an array, junk
		}
		if err != nil {
			return err
		}
		fn(k, v)
		i = skipWS(line, i)
		if i >= len(line) {
			return errNotFlat
		}
		switch line[i] {
		case ',':
			i = skipWS(line, i+1)
		case '}':
			if skipWS(line, i+1) != len(line) {
				return errNotFlat
			}
			return nil
		default:
			return errNotFlat
		}
	}
}

func skipWS(s string, i int) int {
	for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' || s[i] == '\r') {
		i++
	}
	return i
}

// jsonString reads the string starting at s[i] == '"' and returns it and
// the index after its closing quote.
func jsonString(s string, i int) (string, int, error) {
	if i >= len(s) || s[i] != '"' {
		return "", i, errNotFlat
	}
	start := i + 1
	end := strings.IndexByte(s[start:], '"')
	if end < 0 {
		return "", len(s), errNotFlat
	}
	end += start
	for j := start; j < end; j++ {
		if c := s[j]; c == '\\' || c < 0x20 || c >= utf8.RuneSelf {
			// An escape (the quote found may be an escaped one), a
			// control byte or non-ASCII: the careful path.
			return jsonUnescape(s, start)
		}
	}
	return s[start:end], end + 1, nil
}

// jsonUnescape decodes the escaped (or not UTF-8) string whose content starts at s[start].
func jsonUnescape(s string, start int) (string, int, error) {
	var b strings.Builder
	b.Grow(len(s) - start)
	for j := start; j < len(s); {
		c := s[j]
		switch {
		case c == '"':
			return b.String(), j + 1, nil
		case c < 0x20:
			return "", j, errNotFlat
		case c >= utf8.RuneSelf:
			// Bytes that are not UTF-8 become U+FFFD, one each, as
			// encoding/json does: a client's user agent is not trusted to
			// be text, and attributes must be.
			r, n := utf8.DecodeRuneInString(s[j:])
			b.WriteRune(r)
			j += n
			continue
		case c != '\\':
			b.WriteByte(c)
			j++
			continue
		}
		if j+1 >= len(s) {
			return "", j, errNotFlat
		}
		switch e := s[j+1]; e {
		case '"', '\\', '/':
			b.WriteByte(e)
		case 'b':
			b.WriteByte('\b')
		case 'f':
			b.WriteByte('\f')
		case 'n':
			b.WriteByte('\n')
		case 'r':
			b.WriteByte('\r')
		case 't':
			b.WriteByte('\t')
		case 'u':
			r, n, ok := jsonRune(s, j)
			if !ok {
				return "", j, errNotFlat
			}
			b.WriteRune(r)
			j += n
			continue
		default:
			return "", j, errNotFlat
		}
		j += 2
	}
	return "", len(s), errNotFlat
}

// jsonRune decodes \uXXXX at s[j] (with a following low surrogate when the
// first is a high one) and returns the rune and the bytes it took. A lone
// surrogate becomes U+FFFD, as encoding/json does.
func jsonRune(s string, j int) (rune, int, bool) {
	r1, ok := hex4(s, j+2)
	if !ok {
		return 0, 0, false
	}
	if r1 < 0xD800 || r1 > 0xDFFF {
		return r1, 6, true
	}
	if r1 <= 0xDBFF && j+12 <= len(s) && s[j+6] == '\\' && s[j+7] == 'u' {
		if r2, ok := hex4(s, j+8); ok && r2 >= 0xDC00 && r2 <= 0xDFFF {
			return (r1-0xD800)<<10 | (r2 - 0xDC00) + 0x10000, 12, true
		}
	}
	return utf8.RuneError, 6, true
}

func hex4(s string, i int) (rune, bool) {
	if i+4 > len(s) {
		return 0, false
	}
	n, err := strconv.ParseUint(s[i:i+4], 16, 32)
	if err != nil {
		return 0, false
	}
	return rune(n), true
}

// jsonNumber reads a JSON number's text, its grammar checked as
// encoding/json does: -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, and
// within float64's range.
func jsonNumber(s string, i int) (string, int, error) {
	j := i
	digits := func() int {
		k := j
		for j < len(s) && s[j] >= '0' && s[j] <= '9' {
			j++
		}
		return j - k
	}
	if j < len(s) && s[j] == '-' {
		j++
	}
	switch {
	case j < len(s) && s[j] == '0':
		j++
	case digits() == 0:
		return "", j, errNotFlat
	}
	if j < len(s) && s[j] == '.' {
		j++
		if digits() == 0 {
			return "", j, errNotFlat
		}
	}
	if j < len(s) && (s[j] == 'e' || s[j] == 'E') {
		j++
		if j < len(s) && (s[j] == '+' || s[j] == '-') {
			j++
		}
		if digits() == 0 {
			return "", j, errNotFlat
		}
	}
	if _, err := strconv.ParseFloat(s[i:j], 64); err != nil {
		return "", j, errNotFlat
	}
	return s[i:j], j, nil
}
