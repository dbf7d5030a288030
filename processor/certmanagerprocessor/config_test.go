package certmanagerprocessor

import (
	"strings"
	"testing"
	"time"
)

func TestValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		mod  func(*Config)
		err  string
	}{
		{name: "default", mod: func(*Config) {}},
		{name: "negative overdue_after", mod: func(c *Config) { c.OverdueAfter = -time.Second }, err: "overdue_after"},
		{name: "check_interval too short", mod: func(c *Config) { c.CheckInterval = time.Millisecond }, err: "check_interval"},
		{name: "max_certificates 0", mod: func(c *Config) { c.MaxCertificates = 0 }, err: "max_certificates"},
		{name: "no service annotation", mod: func(c *Config) { c.ServiceAnnotation = "" }, err: "service_annotation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := createDefaultConfig()
			tc.mod(cfg)
			err := cfg.Validate()
			if (err == nil) != (tc.err == "") || (err != nil && !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("Validate() = %v, want an error naming %q", err, tc.err)
			}
		})
	}
}
