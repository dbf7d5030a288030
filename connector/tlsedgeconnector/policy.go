package tlsedgeconnector

import (
	"crypto/sha256"
	"encoding/hex"
	"strings"

	"github.com/certpulse/certpulse/internal/useragent"
)

// PolicyConfig is one candidate TLS policy for the what-if: a Mozilla
// preset, or a minimum version and the allowed suites and groups (an
// empty list allows everything), or a preset with some fields overridden.
type PolicyConfig struct {
	// Name labels the policy's series (certpulse.policy).
	Name string `mapstructure:"name"`
	// Preset: modern, intermediate or old (Mozilla's server-side TLS
	// guidelines 5.7, ssl-config.mozilla.org).
	Preset string `mapstructure:"preset"`
	// MinVersion: 1.0, 1.1, 1.2 or 1.3.
	MinVersion string `mapstructure:"min_version"`
	// Ciphers: allowed suites for TLS 1.2 and below, OpenSSL or IANA names.
	Ciphers []string `mapstructure:"ciphers"`
	// CiphersTLS13: allowed TLS 1.3 suites (empty: all).
	CiphersTLS13 []string `mapstructure:"ciphers_tls13"`
	// Groups: allowed key exchange groups (X25519, P256, prime256v1, ...).
	Groups []string `mapstructure:"groups"`
}

var mozillaGroups = []string{"X25519", "P256", "P384"}

var mozillaTLS13 = []string{"TLS_AES_128_GCM_SHA256", "TLS_AES_256_GCM_SHA384", "TLS_CHACHA20_POLY1305_SHA256"}

var mozillaIntermediate = []string{
	"ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
	"ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
	"ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
	"DHE-RSA-AES128-GCM-SHA256", "DHE-RSA-AES256-GCM-SHA384", "DHE-RSA-CHACHA20-POLY1305",
}

// presets: Mozilla's server-side TLS guidelines, version 5.7.
var presets = map[string]PolicyConfig{
	"modern": {MinVersion: "1.3", CiphersTLS13: mozillaTLS13, Groups: mozillaGroups},
	"intermediate": {MinVersion: "1.2", Ciphers: mozillaIntermediate, CiphersTLS13: mozillaTLS13,
		Groups: mozillaGroups},
	"old": {MinVersion: "1.0", CiphersTLS13: mozillaTLS13, Groups: mozillaGroups, Ciphers: append(append([]string(nil), mozillaIntermediate...),
		"ECDHE-ECDSA-AES128-SHA256", "ECDHE-RSA-AES128-SHA256", "ECDHE-ECDSA-AES128-SHA", "ECDHE-RSA-AES128-SHA",
		"ECDHE-ECDSA-AES256-SHA384", "ECDHE-RSA-AES256-SHA384", "ECDHE-ECDSA-AES256-SHA", "ECDHE-RSA-AES256-SHA",
		"DHE-RSA-AES128-SHA256", "DHE-RSA-AES256-SHA256", "AES128-GCM-SHA256", "AES256-GCM-SHA384",
		"AES128-SHA256", "AES256-SHA256", "AES128-SHA", "AES256-SHA", "DES-CBC3-SHA")},
}

// policy is a compiled PolicyConfig.
type policy struct {
	name           string
	minRank        int
	ciphers, tls13 map[string]bool // IANA names; nil allows all
	groups         map[string]bool // tlsprobe names; nil allows all
}

// resolve applies the preset under the explicit fields.
func (pc PolicyConfig) resolve() PolicyConfig {
	p, ok := presets[pc.Preset]
	if !ok {
		return pc
	}
	p.Name, p.Preset = pc.Name, pc.Preset
	if pc.MinVersion != "" {
		p.MinVersion = pc.MinVersion
	}
	if len(pc.Ciphers) > 0 {
		p.Ciphers = pc.Ciphers
	}
	if len(pc.CiphersTLS13) > 0 {
		p.CiphersTLS13 = pc.CiphersTLS13
	}
	if len(pc.Groups) > 0 {
		p.Groups = pc.Groups
	}
	return p
}

func compilePolicy(pc PolicyConfig) policy {
	pc = pc.resolve()
	p := policy{name: pc.Name, minRank: versionRank(versionName(pc.MinVersion))}
	set := func(names []string, norm func(string) string) map[string]bool {
		if len(names) == 0 {
			return nil
		}
		m := make(map[string]bool, len(names))
		for _, n := range names {
			m[norm(n)] = true
		}
		return m
	}
	p.ciphers = set(pc.Ciphers, cipherName)
	p.tls13 = set(pc.CiphersTLS13, cipherName)
	p.groups = set(pc.Groups, groupName)
	return p
}

type verdict struct {
	fail      bool
	undecided bool
	rule      string // version, cipher, group
}

// judge says whether p would have failed a handshake that succeeded. The
// client's highest version is taken as the negotiated one (the server
// offers up to TLS 1.3: a client that got 1.2 could not do 1.3). A rule
// whose input the proxy does not log (what the client offered) leaves the
// verdict undecided unless an earlier rule already fails it.
func (p *policy) judge(h *handshake) verdict {
	if p.minRank > 0 && versionRank(h.version) > 0 && versionRank(h.version) < p.minRank {
		return verdict{fail: true, rule: "version"}
	}
	undecided := false
	allowed := p.ciphers
	if h.version == "1.3" {
		allowed = p.tls13
	}
	if allowed != nil {
		switch offered := suitesFor(h.offeredCiphers, h.version == "1.3"); {
		case len(offered) == 0:
			undecided = true
		case !anyIn(offered, allowed):
			return verdict{fail: true, rule: "cipher"}
		}
	}
	if p.groups != nil && (h.version == "1.3" || strings.Contains(h.cipher, "_ECDHE_")) {
		switch {
		case len(h.offeredGroups) == 0:
			undecided = true
		case !anyIn(h.offeredGroups, p.groups):
			return verdict{fail: true, rule: "group"}
		}
	}
	return verdict{undecided: undecided}
}

func suitesFor(offered []string, tls13 bool) []string {
	var out []string
	for _, s := range offered {
		if isTLS13Suite(s) == tls13 {
			out = append(out, s)
		}
	}
	return out
}

func anyIn(list []string, set map[string]bool) bool {
	for _, s := range list {
		if set[s] {
			return true
		}
	}
	return false
}

// clientClass: the user agent family, or a fingerprint of what the client
// offered (fp-<8 hex>), or "unknown".
func clientClass(h *handshake) string {
	if ua := h.userAgent; ua != "" {
		if f := useragent.Parse(ua).Family; f != "other" {
			return f
		}
		return "other-ua"
	}
	if len(h.offeredCiphers) == 0 && len(h.offeredGroups) == 0 {
		return "unknown"
	}
	sum := sha256.Sum256([]byte(h.version + "|" + strings.Join(h.offeredCiphers, ":") + "|" + strings.Join(h.offeredGroups, ":")))
	return "fp-" + hex.EncodeToString(sum[:4])
}
