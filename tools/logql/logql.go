// Package logql runs check.cjs, which parses LogQL with @grafana/lezer-logql
// (the grammar Grafana's editor uses) under node. `npm ci --prefix
// tools/logql` (scripts/install-test-deps.sh) installs the grammar.
package logql

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
)

func dir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Dir(file)
}

// Available returns an error unless node and the grammar are installed.
func Available() error {
	if _, err := exec.LookPath("node"); err != nil {
		return fmt.Errorf("node is required: %w", err)
	}
	if _, err := os.Stat(filepath.Join(dir(), "node_modules", "@grafana", "lezer-logql")); err != nil {
		return errors.New("@grafana/lezer-logql is not installed: run `npm ci --prefix tools/logql`")
	}
	return nil
}

// Parse parses every expression; the error names those that do not parse.
// out is check.cjs's report.
func Parse(exprs []string) (out string, err error) {
	in, err := json.Marshal(exprs)
	if err != nil {
		return "", err
	}
	cmd := exec.Command("node", "check.cjs")
	cmd.Dir = dir()
	cmd.Stdin = strings.NewReader(string(in))
	b, err := cmd.CombinedOutput()
	if err != nil {
		return "", fmt.Errorf("%w\n%s", err, b)
	}
	return string(b), nil
}
