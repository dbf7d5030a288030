// Package vantagesextension provides certpulse_vantages: the membership of
// the agents that share the probing of a fleet, from which each tlsprobe
// receiver of this collector decides whether this agent is one of a
// target's k vantages (internal/vantage).
package vantagesextension // import "github.com/certpulse/certpulse/extension/vantagesextension"

import (
	"context"
	"sync"

	"go.opentelemetry.io/collector/component"
	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/vantage"
)

type vantagesExtension struct {
	cfg    *Config
	set    *vantage.Set
	logger *zap.Logger
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

// Vantages implements vantage.Provider.
func (e *vantagesExtension) Vantages() *vantage.Set { return e.set }

func (e *vantagesExtension) Start(_ context.Context, _ component.Host) error {
	if len(e.cfg.Static) > 0 {
		e.set.Update(e.cfg.Static)
		return nil
	}
	ctx, cancel := context.WithCancel(context.Background())
	var src source
	var err error
	if e.cfg.Kafka != nil {
		src, err = newGroupSource(ctx, e.cfg.Kafka, e.logger)
	} else {
		src, err = newPodSource(e.cfg.Kubernetes)
	}
	if err != nil {
		cancel()
		return err
	}
	e.cancel = cancel
	e.wg.Add(1)
	go func() {
		defer e.wg.Done()
		e.watch(ctx, src)
	}()
	return nil
}

func (e *vantagesExtension) Shutdown(context.Context) error {
	if e.cancel != nil {
		e.cancel()
	}
	e.wg.Wait()
	return nil
}
