// Package hosttest gives tests a component.Host with real extensions.
package hosttest // import "github.com/certpulse/certpulse/internal/testkit/hosttest"

import (
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
)

// Host is a no-op host whose GetExtensions returns Ext.
type Host struct {
	component.Host
	Ext map[component.ID]component.Component
}

// GetExtensions implements component.Host.
func (h Host) GetExtensions() map[component.ID]component.Component { return h.Ext }

// With returns a host with the given extensions.
func With(ext map[component.ID]component.Component) Host {
	if ext == nil {
		ext = map[component.ID]component.Component{}
	}
	return Host{Host: componenttest.NewNopHost(), Ext: ext}
}
