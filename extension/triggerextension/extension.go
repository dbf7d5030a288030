// Package triggerextension provides certpulse_trigger: the hub through which
// a certlifecycle receiver's deploy, renewal and rotation events make the
// tlsprobe receivers of the same collector probe at once.
package triggerextension // import "github.com/certpulse/certpulse/extension/triggerextension"

import (
	"context"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/extension"

	"github.com/certpulse/certpulse/internal/trigger"
)

// Type is the component type.
var Type = component.MustNewType("certpulse_trigger")

// Config has no settings: the hub only connects components.
type Config struct{}

// NewFactory returns the certpulse_trigger extension factory.
func NewFactory() extension.Factory {
	return extension.NewFactory(Type, func() component.Config { return &Config{} },
		func(context.Context, extension.Settings, component.Config) (extension.Extension, error) {
			return &triggerExtension{hub: trigger.NewHub()}, nil
		}, component.StabilityLevelAlpha)
}

type triggerExtension struct {
	component.StartFunc
	component.ShutdownFunc
	hub *trigger.Hub
}

// Hub implements trigger.Provider.
func (e *triggerExtension) Hub() *trigger.Hub { return e.hub }
