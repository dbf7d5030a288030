package tb

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// StartReady runs a server until the test ends, waits until ready
// answers 2xx ("" : no wait) and returns its process id.
func StartReady(t testing.TB, ctx context.Context, name, ready string, env []string, bin string, args ...string) (pid int) {
	t.Helper()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), env...)
	exited, out := Start(t, cmd)
	for end := time.Now().Add(60 * time.Second); time.Now().Before(end); time.Sleep(200 * time.Millisecond) {
		select {
		case err := <-exited:
			t.Fatalf("%s exited: %v\n%s", name, err, Tail(out.String(), 3000))
		default:
		}
		if ready == "" {
			return cmd.Process.Pid
		}
		if resp, err := http.Get(ready); err == nil {
			resp.Body.Close()
			if resp.StatusCode/100 == 2 {
				return cmd.Process.Pid
			}
		}
	}
	t.Fatalf("%s not ready at %s within 60s\n%s", name, ready, Tail(out.String(), 3000))
	return 0
}

// Prometheus3 starts Prometheus 3 with Mimir's default OTLP naming (no unit
// or type suffixes, no resource attribute promoted) and the remote-write
// receiver, and returns its base URL.
func Prometheus3(t testing.TB, ctx context.Context, bin string, extraArgs ...string) string {
	dir := t.TempDir()
	cfg := filepath.Join(dir, "prometheus.yml")
	if err := os.WriteFile(cfg, []byte("otlp:\n  translation_strategy: UnderscoreEscapingWithoutSuffixes\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	base := fmt.Sprintf("http://127.0.0.1:%d", FreePort(t))
	StartReady(t, ctx, "prometheus", base+"/-/ready", nil, bin, append([]string{"--config.file=" + cfg, "--storage.tsdb.path=" + filepath.Join(dir, "data"),
		"--web.listen-address=" + strings.TrimPrefix(base, "http://"), "--web.enable-otlp-receiver", "--web.enable-remote-write-receiver"}, extraArgs...)...)
	return base
}

type promResult struct {
	Status string `json:"status"`
	Error  string `json:"error"`
	Data   struct {
		ResultType string            `json:"resultType"`
		Result     []json.RawMessage `json:"result"`
	} `json:"data"`
}

// PromQuery runs an instant query and returns the number of series (1
// for a scalar).
func PromQuery(base, expr string) (int, error) {
	resp, err := http.Get(base + "/api/v1/query?query=" + url.QueryEscape(expr))
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	var r promResult
	if err := json.NewDecoder(resp.Body).Decode(&r); err != nil {
		return 0, err
	}
	if r.Status != "success" {
		return 0, fmt.Errorf("%s", r.Error)
	}
	if r.Data.ResultType == "scalar" {
		return 1, nil
	}
	return len(r.Data.Result), nil
}
