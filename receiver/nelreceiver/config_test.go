package nelreceiver

import (
	"strings"
	"testing"
)

func TestValidate(t *testing.T) {
	for _, c := range []struct {
		name string
		edit func(*Config)
		want string
	}{
		{"valid", func(*Config) {}, ""},
		{"no services", func(c *Config) { c.Services = nil }, "at least one is required"},
		{"service without name", func(c *Config) { c.Services[0].Name = "" }, "name is required"},
		{"bad server name", func(c *Config) { c.Services[0].ServerNames = []string{"https://app.test"} }, "not a host"},
		{"two wildcards", func(c *Config) { c.Services[0].ServerNames = []string{"*.*.test"} }, "not a host"},
		{"path", func(c *Config) { c.Path = "nel" }, "must start with /"},
		{"body size", func(c *Config) { c.MaxRequestBodySize = 0 }, "max_request_body_size"},
		{"batch", func(c *Config) { c.MaxReportsPerRequest = 0 }, "max_reports_per_request must be positive"},
		{"rate", func(c *Config) { c.RateLimit.RequestsPerSecond = 0 }, "requests_per_second"},
		{"dedup", func(c *Config) { c.Dedup.Window = 0 }, "dedup.window"},
		{"header", func(c *Config) { c.ClientAddressHeader = "X Forwarded" }, "not a header name"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := testConfig()
			c.edit(cfg)
			err := cfg.Validate()
			if c.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("err = %v, want %q", err, c.want)
			}
		})
	}
}

func TestServiceFor(t *testing.T) {
	cfg := testConfig()
	cfg.Services = append(cfg.Services, ServiceConfig{Name: "shop", ServerNames: []string{"shop.test"}})
	for host, want := range map[string]string{"app.test": "app", "www.app.test": "app", "shop.test": "shop", "evil.test": ""} {
		s, ok := cfg.serviceFor(host)
		got := ""
		if ok {
			got = s.Name
		}
		if got != want {
			t.Errorf("serviceFor(%q) = %q, want %q", host, got, want)
		}
	}
}
