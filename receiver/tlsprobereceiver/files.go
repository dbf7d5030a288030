package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"go.uber.org/zap"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/certpem"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// maxFilesPerPattern bounds how many files one `files` entry reads.
const maxFilesPerPattern = 256

// FileTargetConfig is a set of certificate files on this host, judged
// without a handshake: PEM bundles, DER certificates and kubeconfigs.
type FileTargetConfig struct {
	// Path is a file or a glob pattern (path/filepath.Match syntax).
	Path        string `mapstructure:"path"`
	Service     string `mapstructure:"service"`
	Owner       string `mapstructure:"owner"`
	Environment string `mapstructure:"environment"`
	// Criticality is low, medium, high or critical (default medium).
	Criticality string `mapstructure:"criticality"`
	// CAFile, when set, is the trust store the files' certificates must
	// lead to (unknown_ca, self_signed); without it no trust path is judged.
	CAFile string `mapstructure:"ca_file"`
}

func (f FileTargetConfig) validate() error {
	var errs []error
	if f.Path == "" {
		errs = append(errs, errors.New("path is required"))
	} else if _, err := filepath.Match(f.Path, ""); err != nil {
		errs = append(errs, fmt.Errorf("path %q is not a valid glob pattern: %w", f.Path, err))
	}
	if f.Criticality != "" && !attrs.ValidCriticality(f.Criticality) {
		errs = append(errs, fmt.Errorf("criticality %q must be one of low, medium, high, critical", f.Criticality))
	}
	return errors.Join(errs...)
}

// fileEntry is one `files` entry, or a client profile's own certificate.
type fileEntry struct {
	cfg     FileTargetConfig
	profile string // set for a client profile's cert_file
}

// fileResult is what one file held, judged.
type fileResult struct {
	entry       *fileEntry
	path        string
	err         error
	keysSkipped int
	problems    []string
	// certs are every certificate of the file in order (their position is
	// the index); groups index into them.
	certs  []*x509.Certificate
	groups []fileGroup
}

type fileGroup struct {
	source   string
	pos      int // position of the group's first certificate in certs
	certs    []*x509.Certificate
	findings []tlsinspect.Finding
}

// primary is the file's most important reason over all groups.
func (fr *fileResult) primary() attrs.Reason {
	if fr.err != nil {
		return attrs.ReasonFileError
	}
	best := attrs.ReasonOK
	for _, g := range fr.groups {
		if len(g.findings) > 0 && (best == attrs.ReasonOK || attrs.Rank(g.findings[0].Reason) < attrs.Rank(best)) {
			best = g.findings[0].Reason
		}
	}
	return best
}

// success is false when any group has a failing reason.
func (fr *fileResult) success() bool {
	for _, g := range fr.groups {
		for _, f := range g.findings {
			if info, _ := attrs.Info(f.Reason); info.Failing {
				return false
			}
		}
	}
	return true
}

// fileEntries lists the configured `files` and every client profile's own
// client certificate (cert_file).
func (cfg *Config) fileEntries() []*fileEntry {
	var out []*fileEntry
	for _, f := range cfg.Files {
		out = append(out, &fileEntry{cfg: f})
	}
	names := make([]string, 0, len(cfg.ClientProfiles))
	for n := range cfg.ClientProfiles {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if p := cfg.ClientProfiles[n]; p.CertFile != "" {
			out = append(out, &fileEntry{profile: n, cfg: FileTargetConfig{Path: p.CertFile, Service: "certpulse-client-profiles"}})
		}
	}
	return out
}

// readBounded reads at most limit+1 bytes of path, so that an oversized file
// is reported as such.
func readBounded(path string, limit int64) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	return io.ReadAll(io.LimitReader(f, limit+1))
}

// checkFile reads and judges one file. Kubeconfig references are resolved
// relative to the kubeconfig's directory.
func checkFile(e *fileEntry, path string, roots *x509.CertPool, now time.Time, soon time.Duration) fileResult {
	fr := fileResult{entry: e, path: path}
	data, err := readBounded(path, maxCertFileBytes)
	if err != nil {
		fr.err = err
		return fr
	}
	cf, err := parseCertFile(data)
	fr.keysSkipped, fr.problems = cf.keysSkipped, cf.problems
	if err != nil {
		fr.err = err
		return fr
	}
	for _, src := range cf.sources {
		certs := src.certs
		if src.ref != "" {
			ref := src.ref
			if !filepath.IsAbs(ref) {
				ref = filepath.Join(filepath.Dir(path), ref)
			}
			certs, err = readRefCerts(ref)
			if err != nil {
				fr.problems = append(fr.problems, fmt.Sprintf("%s: %s: %v", src.name, ref, err))
				continue
			}
		}
		for _, g := range tlsinspect.GroupStored(certs) {
			fr.groups = append(fr.groups, fileGroup{source: src.name, pos: len(fr.certs), certs: g, findings: tlsinspect.ClassifyStored(g, roots, now, soon)})
			fr.certs = append(fr.certs, g...)
		}
	}
	if len(fr.certs) == 0 {
		fr.err = errors.New("no certificate could be read: " + strings.Join(fr.problems, "; "))
	}
	return fr
}

func readRefCerts(path string) ([]*x509.Certificate, error) {
	data, err := readBounded(path, maxCertFileBytes)
	if err != nil {
		return nil, err
	}
	cf, err := parseCertFile(data)
	if err != nil {
		return nil, err
	}
	var out []*x509.Certificate
	for _, s := range cf.sources {
		out = append(out, s.certs...)
	}
	return out, nil
}

// fileWatcher re-reads every file target each interval, so a renewed or
// replaced file is picked up on the next run.
type fileWatcher struct {
	entries  []*fileEntry
	interval time.Duration
	soon     time.Duration
	logger   *zap.Logger
	now      func() time.Time
	emit     func(context.Context, []fileResult)
	// empty remembers patterns that matched nothing, to log the change once.
	empty map[string]bool
}

func (w *fileWatcher) run(ctx context.Context) {
	t := time.NewTicker(w.interval)
	defer t.Stop()
	for {
		if res := w.check(); len(res) > 0 {
			w.emit(ctx, res)
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

// check reads every file target once. A pattern that matches nothing yields
// no record (a worker node has no control-plane PKI), but a plain path that
// does not exist is a file_error.
func (w *fileWatcher) check() []fileResult {
	now := w.now()
	seen := map[string]bool{}
	var out []fileResult
	for _, e := range w.entries {
		var roots *x509.CertPool
		if e.cfg.CAFile != "" {
			pool, err := loadCAPool(e.cfg.CAFile)
			if err != nil {
				out = append(out, fileResult{entry: e, path: e.cfg.Path, err: fmt.Errorf("ca_file: %w", err)})
				continue
			}
			roots = pool
		}
		paths := []string{e.cfg.Path}
		if isGlob(e.cfg.Path) {
			paths, _ = filepath.Glob(e.cfg.Path) // the pattern was validated
			if len(paths) == 0 {
				if !w.empty[e.cfg.Path] {
					w.logger.Info("files pattern matches no file", zap.String("path", e.cfg.Path))
					w.empty[e.cfg.Path] = true
				}
				continue
			}
			w.empty[e.cfg.Path] = false
			if len(paths) > maxFilesPerPattern {
				out = append(out, fileResult{entry: e, path: e.cfg.Path, err: fmt.Errorf("%d files match; only the first %d are read", len(paths), maxFilesPerPattern)})
				paths = paths[:maxFilesPerPattern]
			}
		}
		for _, p := range paths {
			if seen[p] {
				continue // the first entry that names a file reports it
			}
			seen[p] = true
			out = append(out, checkFile(e, p, roots, now, w.soon))
		}
	}
	return out
}

func isGlob(p string) bool { return strings.ContainsAny(p, `*?[\`) }

// loadCAPool reads a PEM trust store for a file target.
func loadCAPool(path string) (*x509.CertPool, error) {
	data, err := readBounded(path, maxCertFileBytes)
	if err != nil {
		return nil, err
	}
	certs := certpem.ReadPEM(data, maxCertsPerFile).Certs
	if len(certs) == 0 {
		return nil, fmt.Errorf("%s holds no PEM certificate", path)
	}
	pool := x509.NewCertPool()
	for _, c := range certs {
		pool.AddCert(c)
	}
	return pool, nil
}
