// Package deploy tests how certpulse is deployed: the container image (its
// root filesystem run under chroot against the fault lab), the Kubernetes
// manifests and Helm values (strictly decoded, with invariants), and
// receiver_creator + host_observer discovering the lab. `make deploy` runs it
// with CERTPULSE_BIN, CERTPULSE_LAB_BIN and CERTPULSE_IMAGE set.
package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"sigs.k8s.io/yaml"
)

// repo is the repository root.
func repo(t *testing.T) string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// need returns the environment variable `make deploy` sets, or skips (as
// under `make unit`, which runs every package without the built artifacts).
func need(t *testing.T, name, why string) string {
	t.Helper()
	v := os.Getenv(name)
	if v == "" {
		t.Skip(name + " not set (`make deploy` sets it): " + why)
	}
	return v
}

// validate runs the built distribution's `validate` on a config with env.
func validate(t *testing.T, bin, config string, env map[string]string) error {
	t.Helper()
	f := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(f, []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "validate", "--config", f)
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	if out, err := cmd.CombinedOutput(); err != nil {
		return &validateError{err: err, out: strings.TrimSpace(string(out))}
	}
	return nil
}

type validateError struct {
	err error
	out string
}

func (e *validateError) Error() string { return e.err.Error() + ": " + e.out }

// loadYAML reads the repository file p as YAML into a map.
func loadYAML(t *testing.T, p string) map[string]any {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repo(t), p))
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := yaml.Unmarshal(b, &m); err != nil {
		t.Fatalf("%s: %v", p, err)
	}
	return m
}
