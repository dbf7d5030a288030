// Package browsertest starts real headless Chromium (Debian's chromium)
// for tests: its own HOME, an NSS database there trusting the test's
// roots, its own profile, names mapped to the test's ports.
package browsertest

import (
	"context"
	"crypto/x509"
	"encoding/pem"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"
	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/testkit/tb"
)

// NSSTrust makes an NSS database under home trusting roots as TLS
// anchors (what Chromium on Linux reads: $HOME/.pki/nssdb).
func NSSTrust(t testing.TB, home string, roots ...*x509.Certificate) {
	certutil := proxytest.Need(t, "certutil")
	db := filepath.Join(home, ".pki", "nssdb")
	require.NoError(t, os.MkdirAll(db, 0o700))
	out, err := exec.Command(certutil, "-N", "-d", "sql:"+db, "--empty-password").CombinedOutput()
	require.NoError(t, err, "certutil -N: %s", out)
	for i, root := range roots {
		f := filepath.Join(home, "root.pem")
		require.NoError(t, os.WriteFile(f, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: root.Raw}), 0o600))
		out, err := exec.Command(certutil, "-A", "-d", "sql:"+db, "-t", "C,,", "-n", "certpulse-test-root-"+string(rune('a'+i)), "-i", f).CombinedOutput()
		require.NoError(t, err, "certutil -A: %s", out)
	}
}

// Start starts headless Chromium with HOME=home (call NSSTrust first),
// its profile under home, host-resolver rules ("MAP name 127.0.0.1:port")
// and extra flags, and returns a context for chromedp. Its log
// (--enable-logging=stderr, with vmodule when given) is printed when the
// test fails.
func Start(t testing.TB, home string, rules []string, vmodule string, extra ...chromedp.ExecAllocatorOption) context.Context {
	bin := proxytest.Need(t, "chromium", "chromium-browser")
	logFile, err := os.Create(filepath.Join(home, "chromium.log"))
	require.NoError(t, err)
	t.Cleanup(func() {
		logFile.Close()
		if t.Failed() {
			b, _ := os.ReadFile(logFile.Name())
			t.Logf("chromium log (tail):\n%s", tb.Tail(string(b), 6000))
		}
	})
	// Not chromedp's default flags: they disable background networking,
	// which report uploads and AIA fetches are.
	opts := []chromedp.ExecAllocatorOption{
		chromedp.NoFirstRun, chromedp.NoDefaultBrowserCheck,
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Flag("headless", "new"),
		chromedp.Flag("enable-logging", "stderr"),
		chromedp.CombinedOutput(logFile),
		chromedp.UserDataDir(filepath.Join(home, "profile")),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("host-resolver-rules", strings.Join(rules, ", ")),
		chromedp.Env("HOME=" + home),
	}
	if vmodule != "" {
		opts = append(opts, chromedp.Flag("vmodule", vmodule))
	}
	opts = append(opts, extra...)
	actx, cancelA := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancelC := chromedp.NewContext(actx)
	t.Cleanup(func() { cancelC(); cancelA() })
	require.NoError(t, chromedp.Do(ctx, chromedp.Navigate("about:blank")), "start chromium")
	return ctx
}
