package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"strings"

	"go.opentelemetry.io/collector/config/configtls"

	"github.com/certpulse/certpulse/internal/attrs"
	"github.com/certpulse/certpulse/internal/certpem"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// maxTargetsFileBytes bounds the targets file.
const maxTargetsFileBytes = 32 << 20

// parseTargetsFile decodes a targets file and validates every target. Unknown
// keys are errors, like in the collector configuration.
func parseTargetsFile(data []byte, profiles map[string]bool) ([]TargetConfig, error) {
	if len(data) > maxTargetsFileBytes {
		return nil, fmt.Errorf("targets file is larger than %d bytes", maxTargetsFileBytes)
	}
	targets, err := decodeTargets(data)
	if err != nil {
		return nil, err
	}
	if err := validateTargets(targets, profiles, "targets_file targets"); err != nil {
		return nil, err
	}
	return targets, nil
}

// readTargetsFile reads and parses path with the size bound.
func readTargetsFile(path string, profiles map[string]bool) ([]TargetConfig, []byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, nil, err
	}
	defer f.Close()
	data, err := io.ReadAll(io.LimitReader(f, maxTargetsFileBytes+1))
	if err != nil {
		return nil, nil, err
	}
	ts, err := parseTargetsFile(data, profiles)
	return ts, data, err
}

// profileSet holds the loaded client profiles.
type profileSet struct {
	profiles map[string]tlsinspect.Profile
	system   *x509.CertPool
	caFiles  map[string][]*x509.Certificate
	pools    map[string]*x509.CertPool // profile + "|" + ca_file
	// resolved: the profile lists already built, by names and ca_file,
	// shared read-only by every target that has them (100,000 targets of
	// one ca_file are one slice, not 100,000).
	resolved map[string][]tlsinspect.Profile
}

func loadProfiles(ctx context.Context, cfg *Config) (*profileSet, error) {
	ps := &profileSet{profiles: map[string]tlsinspect.Profile{}, caFiles: map[string][]*x509.Certificate{}, pools: map[string]*x509.CertPool{}}
	ps.system, _ = x509.SystemCertPool()
	if ps.system == nil {
		ps.system = x509.NewCertPool()
	}
	defs := map[string]ProfileConfig{DefaultProfile: {ClientConfig: configtls.NewDefaultClientConfig()}}
	for n, p := range cfg.ClientProfiles {
		defs[n] = p
	}
	for name, p := range defs {
		tc, err := p.LoadTLSConfig(ctx)
		if err != nil {
			return nil, fmt.Errorf("client_profiles::%s: %w", name, err)
		}
		if tc == nil {
			tc = &tls.Config{MinVersion: tls.VersionTLS12}
		}
		roots := tc.RootCAs
		if roots == nil {
			roots = ps.system
		}
		ps.profiles[name] = tlsinspect.Profile{
			Name:  name,
			TLS:   &tls.Config{MinVersion: tc.MinVersion, MaxVersion: tc.MaxVersion, CipherSuites: tc.CipherSuites, GetClientCertificate: tc.GetClientCertificate, CurvePreferences: tc.CurvePreferences},
			Roots: roots,
		}
	}
	return ps, nil
}

// caCerts loads and caches a target's ca_file.
func (ps *profileSet) caCerts(path string) ([]*x509.Certificate, error) {
	if cs, ok := ps.caFiles[path]; ok {
		return cs, nil
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	b := certpem.ReadPEM(data, 0)
	if len(b.Problems) > 0 {
		return nil, fmt.Errorf("ca_file %s: bad certificate: %s", path, strings.Join(b.Problems, "; "))
	}
	out := b.Certs
	if len(out) == 0 {
		return nil, fmt.Errorf("ca_file %s holds no PEM certificate", path)
	}
	ps.caFiles[path] = out
	return out, nil
}

// resolve turns a target config's client profiles and ca_file into the
// profiles it is inspected with; targets with the same share one slice.
func (ps *profileSet) resolve(t TargetConfig) ([]tlsinspect.Profile, error) {
	names := t.Profiles
	if len(names) == 0 {
		names = []string{DefaultProfile}
	}
	rk := strings.Join(names, ",") + "|" + t.CAFile
	if shared, ok := ps.resolved[rk]; ok {
		return shared, nil
	}
	var out []tlsinspect.Profile
	for _, n := range names {
		p, ok := ps.profiles[n]
		if !ok {
			return nil, fmt.Errorf("unknown client profile %q", n)
		}
		if t.CAFile != "" {
			k := n + "|" + t.CAFile
			pool, ok := ps.pools[k]
			if !ok {
				extra, err := ps.caCerts(t.CAFile)
				if err != nil {
					return nil, err
				}
				pool = p.Roots.Clone()
				for _, c := range extra {
					pool.AddCert(c)
				}
				ps.pools[k] = pool
			}
			p.Roots = pool
		}
		out = append(out, p)
	}
	if ps.resolved == nil {
		ps.resolved = map[string][]tlsinspect.Profile{}
	}
	out = out[:len(out):len(out)] // an append by a reader copies
	ps.resolved[rk] = out
	return out, nil
}

// targetMeta is what a probe result carries besides the inspection. It
// keeps the few fields every target uses, not its TargetConfig (232 bytes
// a target, 23 MB for 100,000): src only where the rest is used.
type targetMeta struct {
	// key is TargetConfig.key(), the target's identity (the scheduler's
	// job and vantage selection share the string).
	key        string
	endpoint   string
	serverName string // server_name, else the endpoint's host
	// targetLabels are shared by the targets with the same (targetPool).
	*targetLabels
	port int64
	// src is the configured target, kept for targets that probe every
	// node (nodes, max_nodes, resumption) and inline targets (their
	// claim); nil for the others.
	src *TargetConfig
}

// targetLabels are the labels that route a target's results.
type targetLabels struct {
	service     string
	criticality string
	environment string
	owner       string
}

func newTargetMeta(t TargetConfig) targetMeta {
	host, port, _ := net.SplitHostPort(t.Endpoint)
	m := targetMeta{key: t.key(), endpoint: t.Endpoint, serverName: t.ServerName,
		targetLabels: &targetLabels{service: t.Service, criticality: t.Criticality, environment: t.Environment, owner: t.Owner}}
	if t.ServerName != "" {
		// The key is endpoint|server_name|starttls: the server name is a
		// part of it, not a second copy.
		m.serverName = m.key[len(t.Endpoint)+1 : len(t.Endpoint)+1+len(t.ServerName)]
	}
	if len(t.Nodes) > 0 {
		m.src = &t
	}
	if m.serverName == "" {
		m.serverName = host
	}
	if m.service == "" {
		m.service = m.serverName
	}
	if m.criticality == "" {
		m.criticality = attrs.CriticalityMedium
	}
	var p int
	_, _ = fmt.Sscanf(port, "%d", &p)
	m.port = int64(p)
	return m
}
