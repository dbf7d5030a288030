package listen // import "github.com/certpulse/certpulse/internal/listen"

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.opentelemetry.io/collector/component/componentstatus"
	"go.opentelemetry.io/collector/config/confighttp"
)

// Server is a receiver's confighttp server serving one handler on one
// path (the certlifecycle and nel receivers).
type Server struct {
	// Addr is the bound address (host:port).
	Addr string
	srv  *http.Server
	wg   sync.WaitGroup
}

// Serve listens on cfg's endpoint and serves h on path, with confighttp's
// middleware (TLS, auth, body limit, decompression) and errHandler for its
// rejections. A serve error after the start is reported to host as fatal.
func Serve(ctx context.Context, cfg *confighttp.ServerConfig, host component.Host, set component.TelemetrySettings, path string, h http.Handler,
	errHandler func(http.ResponseWriter, *http.Request, string, int),
) (*Server, error) {
	ln, err := cfg.ToListener(ctx)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", cfg.NetAddr.Endpoint, err)
	}
	mux := http.NewServeMux()
	mux.Handle(path, h)
	srv, err := cfg.ToServer(ctx, host.GetExtensions(), set, mux, confighttp.WithErrorHandler(errHandler))
	if err != nil {
		_ = ln.Close()
		return nil, err
	}
	s := &Server{Addr: ln.Addr().String(), srv: srv}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			componentstatus.ReportStatus(host, componentstatus.NewFatalErrorEvent(err))
		}
	}()
	return s, nil
}

// Shutdown stops the server, letting in-flight requests finish within ctx
// (then closing what is left). A nil Server (never started) is a no-op.
func (s *Server) Shutdown(ctx context.Context) error {
	if s == nil {
		return nil
	}
	err := s.srv.Shutdown(ctx)
	if err != nil {
		_ = s.srv.Close()
	}
	s.wg.Wait()
	return err
}
