package tlsprobereceiver

import (
	"strings"
	"testing"
)

func FuzzParseTargetsFile(f *testing.F) {
	f.Add([]byte("targets:\n  - endpoint: a.example.com:443\n    pins: [\"sha256/YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg=\"]\n"))
	f.Add([]byte("targets:\n  - endpoint: 127.0.0.1:8443\n    server_name: x\n    profiles: [default]\n    starttls: smtp\n    collection_interval: 5m\n"))
	f.Add([]byte("targets: []\n"))
	f.Add([]byte("targets:\n  - endpoint: [\n"))
	f.Add([]byte("targets: {a: 1}\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte(""))
	profiles := map[string]bool{DefaultProfile: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		ts, err := parseTargetsFile(data, profiles)
		if err != nil {
			return
		}
		// What parses must validate.
		if err := validateTargets(ts, profiles, "targets"); err != nil {
			t.Fatalf("parsed targets do not validate: %v", err)
		}
	})
}

func TestParseTargetsFileErrors(t *testing.T) {
	profiles := map[string]bool{DefaultProfile: true}
	for in, want := range map[string]string{
		"targets:\n  - endpoint: [\n":                        "not valid YAML",
		"targets:\n  - endpoint: a:443\n    colour: red\n":   "colour",
		"targets:\n  - endpoint: a:443\n    profiles: [x]\n": `unknown client profile "x"`,
		"tragets: []\n": "tragets",
	} {
		_, err := parseTargetsFile([]byte(in), profiles)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("%q: error %v, want it to mention %q", in, err, want)
		}
	}
	big := make([]byte, maxTargetsFileBytes+1)
	if _, err := parseTargetsFile(big, profiles); err == nil {
		t.Error("oversized targets file accepted")
	}
}
