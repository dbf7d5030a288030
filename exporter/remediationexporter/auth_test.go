package remediationexporter

import (
	"context"
	"net"
	"testing"
	"time"

	"github.com/open-telemetry/opentelemetry-collector-contrib/extension/bearertokenauthextension"
	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componenttest"
	"go.opentelemetry.io/collector/config/configauth"
	"go.opentelemetry.io/collector/config/confighttp"
	"go.opentelemetry.io/collector/config/configopaque"
	"go.opentelemetry.io/collector/config/configoptional"
	"go.opentelemetry.io/collector/extension/extensiontest"
)

type extHost struct {
	component.Host
	ext map[component.ID]component.Component
}

func (h extHost) GetExtensions() map[component.ID]component.Component { return h.ext }

type bearer struct {
	host  extHost
	value string
}

func freePort(t *testing.T) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	require.NoError(t, err)
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func approvalConfig(t *testing.T) ApprovalConfig {
	s := confighttp.NewDefaultServerConfig()
	s.NetAddr.Endpoint = "127.0.0.1:0"
	return ApprovalConfig{ServerConfig: s, TTL: time.Hour}
}

// withBearer puts the approval server behind a real bearertokenauth extension.
func withBearer(t *testing.T, cfg *Config) bearer {
	f := bearertokenauthextension.NewFactory()
	ecfg := f.CreateDefaultConfig().(*bearertokenauthextension.Config)
	ecfg.BearerToken = configopaque.String("operator-token")
	id := component.MustNewID("bearertokenauth")
	ext, err := f.Create(context.Background(), extensiontest.NewNopSettings(f.Type()), ecfg)
	require.NoError(t, err)
	require.NoError(t, ext.Start(context.Background(), componenttest.NewNopHost()))
	t.Cleanup(func() { _ = ext.Shutdown(context.Background()) })
	a := cfg.Approval.Get()
	a.Auth = configoptional.Some(confighttp.AuthConfig{Config: configauth.Config{AuthenticatorID: id}})
	return bearer{host: extHost{Host: componenttest.NewNopHost(), ext: map[component.ID]component.Component{id: ext}}, value: "operator-token"}
}
