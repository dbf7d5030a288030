package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"

	"go.opentelemetry.io/collector/confmap"
	"go.yaml.in/yaml/v3"
)

// The targets file is decoded one target at a time, each through confmap
// (the collector configuration's rules: unknown keys are errors, durations
// as "30s"), never the whole file at once: a file of 100,000 entries as one
// confmap (or one map[string]any beside the YAML node tree) cost about 3.5
// KB a target at its peak (BenchmarkTargetsHeap).
//
// A file whose first character is '{' is JSON (which is YAML too) and is
// read as a stream: its peak is the decoded targets plus one entry. YAML
// keeps its node tree while its entries are decoded (yaml.v3 has no
// streaming decoder), each entry's nodes released once decoded.

// targetsKey is the targets file's one top-level key.
const targetsKey = "targets"

// decodeTargets decodes a targets file (not yet validated).
func decodeTargets(data []byte) ([]TargetConfig, error) {
	if trimmed := bytes.TrimLeft(data, " \t\r\n\ufeff"); len(trimmed) > 0 && trimmed[0] == '{' {
		return decodeTargetsJSON(trimmed)
	}
	return decodeTargetsYAML(data)
}

// decodeTarget decodes one entry through confmap.
func decodeTarget(i int, m map[string]any) (TargetConfig, error) {
	var tc TargetConfig
	if m == nil {
		return tc, fmt.Errorf("targets file: targets[%d]: not a mapping", i)
	}
	if err := confmap.NewFromStringMap(m).Unmarshal(&tc); err != nil {
		return tc, fmt.Errorf("targets file: targets[%d]: %w", i, err)
	}
	return tc, nil
}

// targetsBuilder collects the decoded entries. The values many targets
// repeat (endpoint, service, owner, environment, criticality, ca_file,
// starttls) are kept once: each entry decodes its own copies, and the
// targets keep them for as long as they are configured (3 MB at 100,000
// targets on one endpoint).
type targetsBuilder struct {
	out  []TargetConfig
	pool map[string]string
}

// maxPooled bounds targetsBuilder.pool; past it values are kept as
// decoded.
const maxPooled = 4096

func newTargetsBuilder(n int) *targetsBuilder {
	return &targetsBuilder{out: make([]TargetConfig, 0, n), pool: map[string]string{}}
}

// add decodes entry i and appends it.
func (b *targetsBuilder) add(i int, m map[string]any) error {
	tc, err := decodeTarget(i, m)
	if err != nil {
		return err
	}
	for _, f := range []*string{&tc.Endpoint, &tc.Service, &tc.Owner, &tc.Environment, &tc.Criticality, &tc.CAFile, &tc.StartTLS} {
		*f = b.share(*f)
	}
	b.out = append(b.out, tc)
	return nil
}

func (b *targetsBuilder) share(s string) string {
	if s == "" {
		return s
	}
	if c, ok := b.pool[s]; ok {
		return c
	}
	if len(b.pool) < maxPooled {
		b.pool[s] = s
	}
	return s
}

func unknownTopKey(key string) error {
	return fmt.Errorf("targets file: '' has invalid keys: %s (the only key is %q)", key, targetsKey)
}

// decodeTargetsYAML decodes YAML: the node tree at once, then one entry at
// a time, each entry's nodes released once decoded. A document with
// aliases is decoded whole instead, under yaml.v3's own bound on alias
// expansion (an entry decoded alone would expand its aliases afresh).
func decodeTargetsYAML(data []byte) ([]TargetConfig, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, fmt.Errorf("targets file is not valid YAML: %w", err)
	}
	if hasAlias(&doc) {
		return decodeTargetsWhole(data)
	}
	if len(doc.Content) == 0 {
		return nil, nil // empty
	}
	top := doc.Content[0]
	if top.Kind != yaml.MappingNode {
		var m map[string]any // yaml.v3's own error for what is not a mapping
		if err := top.Decode(&m); err != nil {
			return nil, fmt.Errorf("targets file is not valid YAML: %w", err)
		}
		return nil, nil // null
	}
	var seq *yaml.Node
	for i := 0; i+1 < len(top.Content); i += 2 {
		var k string
		if err := top.Content[i].Decode(&k); err != nil {
			return nil, fmt.Errorf("targets file is not valid YAML: %w", err)
		}
		if k != targetsKey {
			return nil, unknownTopKey(k)
		}
		if seq != nil {
			return nil, fmt.Errorf("targets file: %q given twice", targetsKey)
		}
		seq = top.Content[i+1]
	}
	if seq == nil || (seq.Kind == yaml.ScalarNode && seq.Tag == "!!null") {
		return nil, nil
	}
	if seq.Kind != yaml.SequenceNode {
		return nil, fmt.Errorf("targets file: targets: expected a list, got %s", yamlKind(seq))
	}
	b := newTargetsBuilder(len(seq.Content))
	for i, item := range seq.Content {
		var m map[string]any
		if err := item.Decode(&m); err != nil {
			return nil, fmt.Errorf("targets file: targets[%d]: %w", i, err)
		}
		if err := b.add(i, m); err != nil {
			return nil, err
		}
		seq.Content[i] = nil // this entry's nodes are garbage now
	}
	return b.out, nil
}

// hasAlias reports whether the tree uses an alias anywhere.
func hasAlias(root *yaml.Node) bool {
	stack := []*yaml.Node{root}
	for len(stack) > 0 {
		n := stack[len(stack)-1]
		stack = stack[:len(stack)-1]
		if n.Kind == yaml.AliasNode {
			return true
		}
		stack = append(stack, n.Content...)
	}
	return false
}

// decodeTargetsWhole decodes a document at once (yaml.v3 bounds how far
// its aliases expand), then each entry through confmap.
func decodeTargetsWhole(data []byte) ([]TargetConfig, error) {
	var raw map[string]any
	if err := yaml.Unmarshal(data, &raw); err != nil {
		return nil, fmt.Errorf("targets file is not valid YAML: %w", err)
	}
	for k := range raw {
		if k != targetsKey {
			return nil, unknownTopKey(k)
		}
	}
	if raw[targetsKey] == nil {
		return nil, nil
	}
	items, ok := raw[targetsKey].([]any)
	if !ok {
		return nil, fmt.Errorf("targets file: targets: expected a list, got %T", raw[targetsKey])
	}
	b := newTargetsBuilder(len(items))
	for i, item := range items {
		m, _ := item.(map[string]any)
		if err := b.add(i, m); err != nil {
			return nil, err
		}
	}
	return b.out, nil
}

func yamlKind(n *yaml.Node) string {
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.ScalarNode:
		return "a scalar"
	default:
		return "something else"
	}
}

// decodeTargetsJSON reads a JSON targets file as a stream of entries.
func decodeTargetsJSON(data []byte) ([]TargetConfig, error) {
	dec := json.NewDecoder(bytes.NewReader(data))
	dec.UseNumber() // confmap reads json.Number as an integer where one is wanted
	bad := func(err error) error { return fmt.Errorf("targets file is not valid JSON: %w", err) }
	if _, err := dec.Token(); err != nil { // '{', checked by the caller
		return nil, bad(err)
	}
	var out []TargetConfig
	seen := false
	for dec.More() {
		tok, err := dec.Token()
		if err != nil {
			return nil, bad(err)
		}
		if key, _ := tok.(string); key != targetsKey {
			return nil, unknownTopKey(key)
		}
		if seen {
			return nil, fmt.Errorf("targets file: %q given twice", targetsKey)
		}
		seen = true
		if out, err = decodeTargetsArray(dec); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // '}'
		return nil, bad(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		return nil, bad(errors.New("data after the top-level object"))
	}
	return out, nil
}

// decodeTargetsArray reads the value of "targets": null or an array of
// objects, one at a time.
func decodeTargetsArray(dec *json.Decoder) ([]TargetConfig, error) {
	bad := func(err error) error { return fmt.Errorf("targets file is not valid JSON: %w", err) }
	tok, err := dec.Token()
	if err != nil {
		return nil, bad(err)
	}
	if tok == nil {
		return nil, nil
	}
	if d, ok := tok.(json.Delim); !ok || d != '[' {
		return nil, fmt.Errorf("targets file: targets: expected a list, got %v", tok)
	}
	b := newTargetsBuilder(0)
	for i := 0; dec.More(); i++ {
		var m map[string]any
		if err := dec.Decode(&m); err != nil {
			return nil, fmt.Errorf("targets file: targets[%d]: %w", i, err)
		}
		if err := b.add(i, m); err != nil {
			return nil, err
		}
	}
	if _, err := dec.Token(); err != nil { // ']'
		return nil, bad(err)
	}
	return b.out, nil
}
