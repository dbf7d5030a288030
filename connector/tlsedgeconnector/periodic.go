package tlsedgeconnector

import (
	"context"
	"time"

	"go.uber.org/zap"
)

// periodic runs flush every interval from Start until Shutdown, and once
// more at Shutdown, so that nothing counted since the last tick is lost.
type periodic struct {
	interval time.Duration
	flush    func(context.Context) error
	logger   *zap.Logger
	warning  string
	cancel   context.CancelFunc
	done     chan struct{}
}

func (p *periodic) start() {
	ctx, cancel := context.WithCancel(context.Background())
	p.cancel, p.done = cancel, make(chan struct{})
	go func() {
		defer close(p.done)
		t := time.NewTicker(p.interval)
		defer t.Stop()
		for {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
				if err := p.flush(ctx); err != nil && ctx.Err() == nil {
					p.logger.Warn(p.warning, zap.Error(err))
				}
			}
		}
	}()
}

func (p *periodic) stop(ctx context.Context) error {
	if p.cancel == nil {
		return nil
	}
	p.cancel()
	select {
	case <-p.done:
	case <-ctx.Done():
		return ctx.Err()
	}
	return p.flush(ctx)
}
