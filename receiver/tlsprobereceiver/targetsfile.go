package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"context"
	"crypto/sha256"
	"os"
	"time"

	"go.uber.org/zap"
)

// loadFile reads the targets file. At start an error is fatal; later the
// previous targets stay in force and the error is logged.
func (r *tlsProbeReceiver) loadFile(initial bool) ([]*probeTarget, error) {
	st, err := os.Stat(r.cfg.TargetsFile)
	if err != nil {
		return nil, err
	}
	cts, data, err := readTargetsFile(r.cfg.TargetsFile, r.cfg.profileNames())
	if err != nil {
		return nil, err
	}
	ts, err := r.resolveAll(cts, true)
	if err != nil {
		return nil, err
	}
	r.fileMod, r.fileSize, r.fileHash = st.ModTime(), st.Size(), sha256.Sum256(data)
	if !initial {
		r.logger.Info("targets_file reloaded", zap.String("path", r.cfg.TargetsFile), zap.Int("targets", len(ts)))
	}
	return ts, nil
}

// changed reports whether the file differs from the last good load.
func (r *tlsProbeReceiver) changed() bool {
	st, err := os.Stat(r.cfg.TargetsFile)
	if err != nil {
		return true // report the error through loadFile
	}
	if st.ModTime().Equal(r.fileMod) && st.Size() == r.fileSize {
		return false
	}
	data, err := os.ReadFile(r.cfg.TargetsFile)
	if err != nil {
		return true
	}
	if sha256.Sum256(data) == r.fileHash {
		r.fileMod, r.fileSize = st.ModTime(), st.Size()
		return false
	}
	return true
}

// watchFile polls the targets file and swaps the target set on change.
func (r *tlsProbeReceiver) watchFile(ctx context.Context, inline []*probeTarget) {
	t := time.NewTicker(r.cfg.TargetsFileCheckInterval)
	defer t.Stop()
	var lastErr string
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !r.changed() {
			continue
		}
		ts, err := r.loadFile(false)
		if err != nil {
			if err.Error() != lastErr {
				r.logger.Error("targets_file not reloaded; previous targets stay in force", zap.String("path", r.cfg.TargetsFile), zap.Error(err))
				lastErr = err.Error()
			}
			continue
		}
		lastErr = ""
		all := append(append([]*probeTarget{}, inline...), ts...)
		r.setTargets(dedupTargets(all, r.logger))
	}
}
