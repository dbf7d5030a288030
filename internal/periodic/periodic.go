// Package periodic runs a flush on a ticker between a component's Start
// and Shutdown.
package periodic // import "github.com/certpulse/certpulse/internal/periodic"

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// Flusher runs Flush every Interval from Start until Stop, and once more
// at Stop, so that nothing gathered since the last tick is lost. A tick's
// error is logged with Warning (Stop returns the last flush's).
type Flusher struct {
	Interval time.Duration
	Flush    func(context.Context) error
	Logger   *zap.Logger
	Warning  string

	cancel context.CancelFunc
	done   chan struct{}
}

// Start begins the ticks.
func (p *Flusher) Start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.Interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := p.Flush(ctx); err != nil && ctx.Err() == nil {
					p.Logger.Warn(p.Warning, zap.Error(err))
				}
			}
		}
	}()
}

// Stop ends the ticks, waits for a tick in progress, and flushes once
// more; a Flusher never started does nothing.
func (p *Flusher) Stop(ctx context.Context) error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.Flush(ctx)
}
