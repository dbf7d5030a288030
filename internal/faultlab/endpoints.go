package faultlab

import (
	"github.com/certpulse/certpulse/internal/attrs"
)

// Endpoint is one lab server and the reason code a probe must report for it
// when it trusts the lab root (roots.pem).
type Endpoint struct {
	Name       string
	Address    string
	ServerName string
	Want       attrs.Reason
	Pins       []string
	StartTLS   string
	// Profile is the client profile the target must use ("" = default;
	// "lab-mtls" carries the lab's client certificate).
	Profile string
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
