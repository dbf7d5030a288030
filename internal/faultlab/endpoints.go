package faultlab

import (
	"github.com/certpulse/certpulse/internal/attrs"
)

// Endpoint is one lab server and the reason code a probe must report for it
// when it trusts the lab root (roots.pem).
type Endpoint struct {
	Name       string       `json:"name"`
	Address    string       `json:"address"`
	ServerName string       `json:"server_name"`
	Want       attrs.Reason `json:"want"`
	Pins       []string     `json:"pins,omitempty"`
	StartTLS   string       `json:"starttls,omitempty"`
	// Profile is the client profile the target must use ("" = default;
	// "lab-mtls" carries the lab's client certificate).
	Profile string `json:"profile,omitempty"`
}

// Domain is the DNS suffix of every lab server name.
const Domain = "lab.certpulse.test"

func serverName(name string) string { return name + "." + Domain }

// kind of server behind an endpoint.
type kind int

const (
	kindTLS kind = iota
	kindSMTP
	kindTarpit
	kindReset
	kindHTTP
	kindGarbage
	kindRefused
)
