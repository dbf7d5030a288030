package tlsedgeconnector

import (
	"strings"
	"testing"
	"time"
)

func TestConfigValidate(t *testing.T) {
	ok := createDefaultConfig()
	ok.Policies = []PolicyConfig{{Name: "m", Preset: "modern"}, {Name: "x", MinVersion: "1.2", Ciphers: []string{"ECDHE-RSA-AES128-GCM-SHA256", "TLS_ECDHE_ECDSA_WITH_AES_128_GCM_SHA256"}, Groups: []string{"X25519", "prime256v1"}}}
	ok.Services = []ServiceConfig{{Name: "shop", ServerNames: []string{"*.example.com"}}}
	if err := ok.Validate(); err != nil {
		t.Fatalf("valid config: %v", err)
	}
	for name, tc := range map[string]struct {
		mut  func(*Config)
		want string
	}{
		"interval":              {func(c *Config) { c.Interval = 10 * time.Millisecond }, "interval must be at least 1s"},
		"window_interval":       {func(c *Config) { c.WindowInterval = 10 * time.Minute }, "window_interval must be within 100ms and 5m, got 10m0s"},
		"window_interval short": {func(c *Config) { c.WindowInterval = time.Millisecond }, "window_interval must be within 100ms"},
		"bound":                 {func(c *Config) { c.MaxServerNames = 0 }, "max_server_names must be positive"},
		"idle":                  {func(c *Config) { c.ConnectionIdle = 0 }, "connection_idle must be positive"},
		"service name":          {func(c *Config) { c.Services = []ServiceConfig{{ServerNames: []string{"a"}}} }, "services[0]: name is required"},
		"service match":         {func(c *Config) { c.Services = []ServiceConfig{{Name: "s"}} }, "needs server_names or listeners"},
		"policy name":           {func(c *Config) { c.Policies = []PolicyConfig{{Preset: "modern"}} }, "policies[0]: name is required"},
		"policy twice": {func(c *Config) {
			c.Policies = []PolicyConfig{{Name: "a", Preset: "old"}, {Name: "a", Preset: "modern"}}
		}, `name "a" is used twice`},
		"preset":           {func(c *Config) { c.Policies = []PolicyConfig{{Name: "a", Preset: "strict"}} }, `unknown preset "strict"`},
		"version":          {func(c *Config) { c.Policies = []PolicyConfig{{Name: "a", MinVersion: "1.4"}} }, `unknown min_version "1.4"`},
		"cipher":           {func(c *Config) { c.Policies = []PolicyConfig{{Name: "a", Ciphers: []string{"RC4-MD5X"}}} }, `unknown cipher "RC4-MD5X"`},
		"1.3 in ciphers":   {func(c *Config) { c.Policies = []PolicyConfig{{Name: "a", Ciphers: []string{"TLS_AES_128_GCM_SHA256"}}} }, "list it under ciphers_tls13"},
		"1.2 in ciphers13": {func(c *Config) { c.Policies = []PolicyConfig{{Name: "a", CiphersTLS13: []string{"AES128-SHA"}}} }, "is not a TLS 1.3 suite"},
		"group":            {func(c *Config) { c.Policies = []PolicyConfig{{Name: "a", Groups: []string{"brainpool"}}} }, `unknown group "brainpool"`},
		"empty policy":     {func(c *Config) { c.Policies = []PolicyConfig{{Name: "a"}} }, "sets nothing"},
	} {
		c := createDefaultConfig()
		tc.mut(c)
		err := c.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: %v, want %q", name, err, tc.want)
		}
	}
}

func TestServiceFor(t *testing.T) {
	c := createDefaultConfig()
	c.Services = []ServiceConfig{{Name: "shop", ServerNames: []string{"*.shop.example"}}, {Name: "api", ServerNames: []string{"api.example"}, Listeners: []string{"10.0.0.1:443"}}}
	for _, tc := range []struct{ sni, listener, want string }{
		{"www.shop.example", "", "shop"},
		{"a.b.shop.example", "", ""}, // one label only
		{"shop.example", "", ""},
		{"api.example", "", "api"},
		{"", "10.0.0.1:443", "api"},
		{"other.example", "10.0.0.2:443", ""},
	} {
		s, _ := c.serviceFor(tc.sni, tc.listener)
		if s.Name != tc.want {
			t.Errorf("serviceFor(%q, %q) = %q, want %q", tc.sni, tc.listener, s.Name, tc.want)
		}
	}
}
