package tlsedgeconnector

import (
	"encoding/json"
	"fmt"
	"strconv"
	"testing"
)

func TestScanFlatJSON(t *testing.T) {
	for _, tc := range []struct {
		line string
		want map[string]string // nil: errNotFlat
	}{
		{`{}`, map[string]string{}},
		{` { "a" : "b" , "c":"" } `, map[string]string{"a": "b", "c": ""}},
		{`{"connection":123,"n":-1.5e3,"t":true,"f":false,"z":null}`, map[string]string{"connection": "123", "n": "-1.5e3", "t": "true", "f": "false", "z": ""}},
		{`{"ua":"Mozilla \"x\" \\ \/ \u00e9\ud83d\ude00\n\t"}`, map[string]string{"ua": "Mozilla \"x\" \\ / é😀\n\t"}},
		{`{"lone":"\ud800x"}`, map[string]string{"lone": "\ufffdx"}},
		{`{"sni":"shop.example.com","protocol":"TLSv1.3"}`, map[string]string{"sni": "shop.example.com", "protocol": "TLSv1.3"}},
		{`{"a":{"b":"c"}}`, nil},
		{`{"a":["b"]}`, nil},
		{`{"a":"b"`, nil},
		{`{"a":"b",}`, nil},
		{`{"a":"b"} trailing`, nil},
		{`{"a" "b"}`, nil},
		{`{"a":"b\x"}`, nil},
		{`{"a":"b` + "\x01" + `"}`, nil},
		{`{"a":"\u12"}`, nil},
		{`{"a":01x}`, nil},
		{`{"a":tru}`, nil},
		{`{a:"b"}`, nil},
		{`garbage {{{`, nil},
		{``, nil},
		{`{"time":"2026-12-01T10:00:00+00:00","node":"edge-1","protocol":"TLSv1.3`, nil},
	} {
		got := map[string]string{}
		err := scanFlatJSON(tc.line, func(k, v string) { got[k] = v })
		switch {
		case tc.want == nil && err == nil:
			t.Errorf("%q: no error, read %v", tc.line, got)
		case tc.want != nil && err != nil:
			t.Errorf("%q: %v", tc.line, err)
		case tc.want != nil && fmt.Sprint(got) != fmt.Sprint(tc.want):
			t.Errorf("%q: read %v, want %v", tc.line, got, tc.want)
		}
	}
	many := "{"
	for i := 0; i <= maxFlatKeys; i++ {
		many += `"k` + strconv.Itoa(i) + `":"v",`
	}
	if err := scanFlatJSON(many[:len(many)-1]+"}", func(string, string) {}); err == nil {
		t.Errorf("%d keys: no error", maxFlatKeys+1)
	}
}

// FuzzScanFlatJSON: whatever a line holds, the scanner does not panic,
// and every line it reads is JSON that encoding/json decodes to the same
// keys and values (strings equal; numbers and booleans as their text).
func FuzzScanFlatJSON(f *testing.F) {
	f.Add(`{"a":"b","n":1,"t":true,"z":null}`)
	f.Add(`{"ua":"\u00e9\ud83d\ude00\"\\"}`)
	f.Add(`{"a":{"b":1}}`)
	f.Add(`{"time":"2026-12-01T10:00:00+00:00","node":"edge-1","protocol":"TLSv1.3`)
	f.Fuzz(func(t *testing.T, line string) {
		got := map[string]string{}
		if err := scanFlatJSON(line, func(k, v string) { got[k] = v }); err != nil {
			return
		}
		var want map[string]any
		if err := json.Unmarshal([]byte(line), &want); err != nil {
			t.Fatalf("%q read, but encoding/json: %v", line, err)
		}
		for k, w := range want {
			var ws string
			switch w := w.(type) {
			case nil:
			case string:
				ws = w
			case bool:
				ws = strconv.FormatBool(w)
			case float64:
				g, err := strconv.ParseFloat(got[k], 64)
				if err != nil || g != w {
					t.Fatalf("%q: %q = %q, encoding/json %v", line, k, got[k], w)
				}
				continue
			default:
				t.Fatalf("%q: %q is %T", line, k, w)
			}
			if got[k] != ws {
				t.Fatalf("%q: %q = %q, encoding/json %q", line, k, got[k], ws)
			}
		}
		if len(got) != len(want) {
			t.Fatalf("%q: %d keys, encoding/json %d", line, len(got), len(want))
		}
	})
}
