package faultlab

import (
	"crypto/rand"
	"fmt"

	"github.com/certpulse/certpulse/internal/attrs"
)

// NodeGroup is several lab servers standing for the edge nodes of one name
// (a tlsprobe `nodes` target), with what each node must show.
type NodeGroup struct {
	Name       string   `json:"name"`
	ServerName string   `json:"server_name"`
	Nodes      []string `json:"nodes"` // 127.0.0.1:port each
	// Want is each node's expected primary reason; Lagging the nodes that
	// serve the previous certificate.
	Want    []attrs.Reason `json:"want"`
	Lagging []bool         `json:"lagging"`
}

// nodeGroupSpec: for each node, which session ticket key it uses (nodes
// with the same index share keys) and whether it serves the previous leaf.
type nodeGroupSpec struct {
	name    string
	keys    []int
	old     []bool
	want    []attrs.Reason
	lagging []bool
}

var nodeGroupTable = []nodeGroupSpec{
	// Ticket keys out of sync: the third node has its own.
	{name: "edge-tickets", keys: []int{0, 0, 1}, old: []bool{false, false, false},
		want: []attrs.Reason{attrs.ReasonOK, attrs.ReasonOK, attrs.ReasonResumptionFailed}, lagging: []bool{false, false, false}},
	// A renewal that has not reached the third node.
	{name: "edge-lag", keys: []int{0, 0, 0}, old: []bool{false, false, true},
		want: []attrs.Reason{attrs.ReasonOK, attrs.ReasonOK, attrs.ReasonOK}, lagging: []bool{false, false, true}},
}

// startNodeGroups serves every node group.
func (l *Lab) startNodeGroups() error {
	for _, g := range nodeGroupTable {
		name := serverName(g.name)
		fresh, err := l.IssueLeaf([]string{name}, l.now.Add(-day), l.now.Add(89*day), false)
		if err != nil {
			return err
		}
		prev, err := l.IssueLeaf([]string{name}, l.now.Add(-20*day), l.now.Add(70*day), false)
		if err != nil {
			return err
		}
		keys := make([][32]byte, 2)
		for i := range keys {
			_, _ = rand.Read(keys[i][:])
		}
		ng := NodeGroup{Name: g.name, ServerName: name, Want: g.want, Lagging: g.lagging}
		for i := range g.keys {
			leaf := fresh
			if g.old[i] {
				leaf = prev
			}
			cfg := tlsConf(leaf, l.Inter.Cert)
			cfg.SetSessionTicketKeys([][32]byte{keys[g.keys[i]]})
			sp := server{ep: Endpoint{Name: fmt.Sprintf("%s-%d", g.name, i+1), ServerName: name, Want: g.want[i]}, kind: kindTLS, tls: cfg}
			if err := l.serve(&sp); err != nil {
				return err
			}
			ng.Nodes = append(ng.Nodes, sp.ep.Address)
		}
		l.NodeGroups = append(l.NodeGroups, ng)
	}
	return nil
}
