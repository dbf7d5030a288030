package tlsprobereceiver

import (
	"reflect"
	"strings"
	"testing"
	"time"
	"unsafe"
)

func FuzzParseTargetsFile(f *testing.F) {
	f.Add([]byte("targets:\n  - endpoint: a.example.com:443\n    pins: [\"sha256/YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg=\"]\n"))
	f.Add([]byte("targets:\n  - endpoint: 127.0.0.1:8443\n    server_name: x\n    profiles: [default]\n    starttls: smtp\n    collection_interval: 5m\n"))
	f.Add([]byte("targets: []\n"))
	f.Add([]byte("targets:\n  - endpoint: [\n"))
	f.Add([]byte("targets: {a: 1}\n"))
	f.Add([]byte("&a [*a, *a]"))
	f.Add([]byte(""))
	f.Add([]byte(`{"targets": [{"endpoint": "a.example.com:443", "max_nodes": 4, "nodes": ["127.0.0.1:1"], "collection_interval": "30s"}]}`))
	f.Add([]byte(`{"targets": null}`))
	f.Add([]byte("targets:\n  - &x {endpoint: a:443}\n  - *x\n"))
	profiles := map[string]bool{DefaultProfile: true}
	f.Fuzz(func(t *testing.T, data []byte) {
		// The streaming decoders (JSON, YAML entry by entry) read what
		// decoding the whole document reads.
		if whole, werr := decodeTargetsWhole(data); werr == nil {
			if got, err := decodeTargets(data); err == nil && (len(got) > 0 || len(whole) > 0) && !reflect.DeepEqual(got, whole) {
				t.Fatalf("decoded one entry at a time: %+v\nwhole: %+v", got, whole)
			}
		}
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
		"tragets: []\n":                                          "tragets",
		"targets: {endpoint: a:443}\n":                           "expected a list",
		"targets: []\ntargets: []\n":                             "given twice",
		`{"targets": [{"endpoint": "a:443", "colour": 1}]}`:      "colour",
		`{"targets": [], "tragets": []}`:                         "tragets",
		`{"targets": [], "targets": []}`:                         "given twice",
		`{"targets": [5]}`:                                       "targets[0]",
		`{"targets": {"endpoint": "a:443"}}`:                     "expected a list",
		`{"targets": []} {}`:                                     "after the top-level object",
		`{"targets": [{"endpoint": "a:443"}`:                     "not valid JSON",
		`{"targets": [{"endpoint": "a:443", "max_nodes": 1.5}]}`: "max_nodes",
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

// TestTargetsFileFormats: one file as YAML (block and flow) and as JSON
// gives the same targets.
func TestTargetsFileFormats(t *testing.T) {
	profiles := map[string]bool{DefaultProfile: true, "legacy": true}
	yamlBlock := `targets:
  - endpoint: a.example.com:443
    service: shop
    criticality: high
    pins: ["sha256/YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg="]
    profiles: [default, legacy]
    collection_interval: 5m
  - {endpoint: "edge.example.com:8443", server_name: b.example.com, nodes: all, max_nodes: 4, resumption: {every: 2}, expect_resumption: true}
`
	jsonDoc := ` {"targets": [
  {"endpoint": "a.example.com:443", "service": "shop", "criticality": "high",
   "pins": ["sha256/YLh1dUR9y6Kja30RrAn7JKnbQG/uEtLMkBgFF2Fuihg="], "profiles": ["default", "legacy"], "collection_interval": "5m"},
  {"endpoint": "edge.example.com:8443", "server_name": "b.example.com", "nodes": "all", "max_nodes": 4, "resumption": {"every": 2}, "expect_resumption": true}
]}
`
	fromYAML, err := parseTargetsFile([]byte(yamlBlock), profiles)
	if err != nil {
		t.Fatal(err)
	}
	fromJSON, err := parseTargetsFile([]byte(jsonDoc), profiles)
	if err != nil {
		t.Fatal(err)
	}
	if len(fromYAML) != 2 || fromYAML[0].CollectionInterval != 5*time.Minute || fromYAML[1].MaxNodes != 4 || *fromYAML[1].Resumption.Every != 2 {
		t.Fatalf("YAML decoded as %+v", fromYAML)
	}
	if !reflect.DeepEqual(fromYAML, fromJSON) {
		t.Fatalf("YAML: %+v\nJSON: %+v", fromYAML, fromJSON)
	}
	for _, empty := range []string{"", "targets:\n", "targets: []\n", `{"targets": null}`, `{}`, "null\n"} {
		if ts, err := parseTargetsFile([]byte(empty), profiles); err != nil || len(ts) != 0 {
			t.Errorf("%q: %v, %v", empty, ts, err)
		}
	}
}

// TestTargetsFileSharesRepeatedValues: the values many entries repeat are
// kept once, in every format.
func TestTargetsFileSharesRepeatedValues(t *testing.T) {
	profiles := map[string]bool{DefaultProfile: true}
	docs := map[string]string{
		"yaml": "targets:\n  - {endpoint: 'lb.example.com:443', server_name: a.example.com, service: shop}\n  - {endpoint: 'lb.example.com:443', server_name: b.example.com, service: shop}\n",
		"json": `{"targets": [{"endpoint": "lb.example.com:443", "server_name": "a.example.com", "service": "shop"}, {"endpoint": "lb.example.com:443", "server_name": "b.example.com", "service": "shop"}]}`,
	}
	docs["yaml with aliases"] = "targets:\n  - {endpoint: &e 'lb.example.com:443', server_name: a.example.com, service: shop}\n  - {endpoint: *e, server_name: b.example.com, service: shop}\n"
	for name, doc := range docs {
		tcs, err := parseTargetsFile([]byte(doc), profiles)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(tcs) != 2 || unsafe.StringData(tcs[0].Endpoint) != unsafe.StringData(tcs[1].Endpoint) || unsafe.StringData(tcs[0].Service) != unsafe.StringData(tcs[1].Service) {
			t.Errorf("%s: the endpoint and service the two entries repeat are two copies", name)
		}
	}
}

// TestTargetMetaServerNameInKey: a target's server name is a part of its
// key string, not a second copy.
func TestTargetMetaServerNameInKey(t *testing.T) {
	m := newTargetMeta(TargetConfig{Endpoint: "lb.example.com:443", ServerName: strings.Clone("a.example.com"), StartTLS: "smtp"})
	k := unsafe.StringData(m.key)
	if m.serverName != "a.example.com" || m.key != "lb.example.com:443|a.example.com|smtp" {
		t.Fatalf("server name %q, key %q", m.serverName, m.key)
	}
	if p := unsafe.StringData(m.serverName); uintptr(unsafe.Pointer(p)) < uintptr(unsafe.Pointer(k)) || uintptr(unsafe.Pointer(p)) >= uintptr(unsafe.Pointer(k))+uintptr(len(m.key)) {
		t.Errorf("the server name is a copy of its own")
	}
	if m := newTargetMeta(TargetConfig{Endpoint: "lb.example.com:443"}); m.serverName != "lb.example.com" {
		t.Errorf("no server_name: %q, want the endpoint's host", m.serverName)
	}
}
