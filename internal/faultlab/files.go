package faultlab

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// Files names what WriteFiles writes.
type Files struct {
	Dir         string
	Roots       string // PEM of the lab's trust anchors (the lab root and the expired root)
	ClientCert  string // client certificate for the mTLS endpoint
	ClientKey   string
	TargetsFile string // tlsprobe targets_file with one target per endpoint
	Endpoints   string // JSON list of the endpoints (name, address, server name, expected reason)
	NodeGroups  string // JSON list of the node groups
}

// WriteFiles writes the lab root, the client certificate and a tlsprobe
// targets file into dir.
func (l *Lab) WriteFiles(dir string) (Files, error) {
	f := Files{
		Dir:         dir,
		Roots:       filepath.Join(dir, "roots.pem"),
		ClientCert:  filepath.Join(dir, "client.pem"),
		ClientKey:   filepath.Join(dir, "client-key.pem"),
		TargetsFile: filepath.Join(dir, "targets.yaml"),
		Endpoints:   filepath.Join(dir, "endpoints.json"),
		NodeGroups:  filepath.Join(dir, "nodes.json"),
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return f, err
	}
	key, err := KeyPEM(l.ClientCert.Key)
	if err != nil {
		return f, err
	}
	eps, err := json.MarshalIndent(l.Endpoints, "", "  ")
	if err != nil {
		return f, err
	}
	groups, err := json.MarshalIndent(l.NodeGroups, "", "  ")
	if err != nil {
		return f, err
	}
	for path, data := range map[string][]byte{
		f.Roots:      PEM(l.Root.Cert, l.ExpiredRoot.Cert),
		f.ClientCert: PEM(l.ClientCert.Cert),
		f.ClientKey:  key,
		f.Endpoints:  eps,
		f.NodeGroups: groups,
	} {
		if err := os.WriteFile(path, data, 0o600); err != nil {
			return f, err
		}
	}
	// Written last, atomically: its presence says the lab is ready.
	tmp := f.TargetsFile + ".tmp"
	if err := os.WriteFile(tmp, []byte(l.TargetsYAML(f.Roots)), 0o600); err != nil {
		return f, err
	}
	return f, os.Rename(tmp, f.TargetsFile)
}

// TargetsYAML renders a tlsprobe targets file for every endpoint.
func (l *Lab) TargetsYAML(rootsFile string) string {
	var b strings.Builder
	b.WriteString("# certpulse fault lab: one target per reason code (generated)\ntargets:\n")
	for _, e := range l.Endpoints {
		fmt.Fprintf(&b, "  # expect certpulse.reason=%s\n", e.Want)
		fmt.Fprintf(&b, "  - endpoint: %s\n    server_name: %s\n    service: lab-%s\n    owner: team-lab\n    environment: lab\n    criticality: %s\n    ca_file: %q\n",
			e.Address, e.ServerName, e.Name, criticalityFor(e.Name), rootsFile)
		if len(e.Pins) > 0 {
			fmt.Fprintf(&b, "    pins: [%q]\n", e.Pins[0])
		}
		if e.StartTLS != "" {
			fmt.Fprintf(&b, "    starttls: %s\n", e.StartTLS)
		}
		if e.Profile != "" {
			fmt.Fprintf(&b, "    profiles: [%s]\n", e.Profile)
		}
	}
	for _, g := range l.NodeGroups {
		fmt.Fprintf(&b, "  # every node behind one name: expect %v (lagging %v)\n", g.Want, g.Lagging)
		fmt.Fprintf(&b, "  - endpoint: %s:443\n    server_name: %s\n    service: lab-%s\n    owner: team-lab\n    environment: lab\n    criticality: medium\n    ca_file: %q\n    nodes: [%s]\n    resumption: {every: 1}\n",
			g.ServerName, g.ServerName, g.Name, rootsFile, strings.Join(g.Nodes, ", "))
	}
	return b.String()
}

func criticalityFor(name string) string {
	if strings.HasPrefix(name, "healthy") {
		return "high"
	}
	return "medium"
}

// ReadEndpoints reads the endpoints.json that WriteFiles wrote (for a lab
// running in another process).
func ReadEndpoints(path string) ([]Endpoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var eps []Endpoint
	return eps, json.Unmarshal(data, &eps)
}
