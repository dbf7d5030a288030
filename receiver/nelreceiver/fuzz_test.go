package nelreceiver

import (
	"testing"
	"unicode/utf8"
)

// FuzzParseBatch: any body is either refused or read into reports whose
// kept fields are bounded tokens.
func FuzzParseBatch(f *testing.F) {
	f.Add([]byte("[" + chromeReport + "]"))
	f.Add([]byte(`[{"type":"network-error","url":"http://[::1]:80/","body":{"type":"ok","status_code":200,"sampling_fraction":0.01}}]`))
	f.Add([]byte(`[{"type":"network-error","url":"https://app.test/","age":1e308,"body":{"type":"tcp.reset"}}]`))
	f.Fuzz(func(t *testing.T, body []byte) {
		rs, os, err := parseBatch(body, testLimits)
		if err != nil {
			return
		}
		if len(rs) != len(os) || len(rs) > testLimits.maxReports {
			t.Fatalf("%d reports, %d outcomes", len(rs), len(os))
		}
		for i, r := range rs {
			if os[i] != "" {
				continue
			}
			if r.Host == "" || !utf8.ValidString(r.Host) || r.Port < 1 || r.Port > 65535 || knownType(r.Type) != r.Type {
				t.Fatalf("kept %+v", r)
			}
			for _, s := range []string{r.Protocol, r.Method} {
				if s != "" && !token(s) {
					t.Fatalf("kept %q", s)
				}
			}
			if r.Age < 0 || r.Age > testLimits.maxAge || r.Sampling < 0 || r.Sampling > 1 {
				t.Fatalf("kept %+v", r)
			}
		}
	})
}
