package clients

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/certpulse/certpulse/internal/clients"
	"github.com/certpulse/certpulse/internal/testkit/browsertest"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
)

// outcome is what one real client did with one scenario.
type outcome struct {
	Accept bool
	Class  clients.Class
	Detail string
}

func failed(detail string) outcome {
	return outcome{Class: clients.ClassOf(detail), Detail: oneLine(detail)}
}

func oneLine(s string) string {
	s = strings.Join(strings.Fields(s), " ")
	if len(s) > 300 {
		s = s[:300] + "..."
	}
	return s
}

// client is one real TLS client: its family (the preset that models it)
// and how to run it over every scenario.
type client struct {
	name   string
	family clients.Family
	run    func(t *testing.T, env *env, sc []scenario) map[string]outcome
}

// env is what every client gets: the lab roots, as a PEM file and as
// certificates, and a scratch directory.
type env struct {
	rootsFile string
	roots     []*x509.Certificate
	dir       string
}

func realClients() []client {
	return []client{
		{"curl", clients.OpenSSL, perScenario(curlOne)},
		{"openssl s_client", clients.OpenSSL, perScenario(opensslOne)},
		{"python ssl", clients.Python, batch("python3", "testdata/client.py")},
		{"node tls", clients.Node, batch("node", "testdata/client.js")},
		{"gnutls-cli", clients.GnuTLS, perScenario(gnutlsOne)},
		{"chromium", clients.Chrome, chromium},
		{"go crypto/tls", clients.Go, perScenario(goOne)},
		{"java", clients.Java, java},
	}
}

const clientTimeout = 15 * time.Second

func perScenario(one func(t *testing.T, env *env, s scenario) outcome) func(*testing.T, *env, []scenario) map[string]outcome {
	return func(t *testing.T, env *env, sc []scenario) map[string]outcome {
		out := map[string]outcome{}
		for _, s := range sc {
			out[s.id] = one(t, env, s)
		}
		return out
	}
}

func runCmd(name string, stdin string, args ...string) (string, error) {
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Stdin = strings.NewReader(stdin)
	b, err := cmd.CombinedOutput()
	return string(b), err
}

const request = "GET / HTTP/1.0\r\n\r\n"

func curlOne(t *testing.T, env *env, s scenario) outcome {
	bin := proxytest.Need(t, "curl")
	out, err := runCmd(bin, "", "-sS", "-o", "/dev/null", "--max-time", "10", "--cacert", env.rootsFile,
		"--resolve", fmt.Sprintf("%s:%d:%s", s.name, s.port, s.host), fmt.Sprintf("https://%s:%d/", s.name, s.port))
	if err == nil {
		return outcome{Accept: true, Class: clients.ClassOK}
	}
	return failed(out)
}

func opensslOne(t *testing.T, env *env, s scenario) outcome {
	bin := proxytest.Need(t, "openssl")
	out, err := runCmd(bin, request, "s_client", "-connect", net.JoinHostPort(s.host, strconv.Itoa(s.port)), "-servername", s.name,
		"-verify_hostname", s.name, "-CAfile", env.rootsFile, "-verify_return_error", "-brief", "-ign_eof")
	if err == nil && !strings.Contains(out, "HTTP/1.1 200") {
		err = fmt.Errorf("no response")
	}
	if err == nil {
		return outcome{Accept: true, Class: clients.ClassOK}
	}
	return failed(errorLines(out))
}

// errorLines keeps the lines of a client's output that say what failed.
func errorLines(out string) string {
	var keep []string
	// GnuTLS's "*** Fatal error" may share a line with the chain listing.
	for _, l := range strings.Split(strings.ReplaceAll(out, "***", "\n***"), "\n") {
		ll := strings.ToLower(l)
		if strings.Contains(ll, "error") && !strings.HasPrefix(strings.TrimSpace(ll), "- subject") || strings.Contains(ll, "alert") || strings.Contains(ll, "fail") || strings.Contains(ll, "not trusted") ||
			strings.Contains(ll, "status:") || strings.Contains(ll, "verif") || strings.Contains(ll, "refused") || strings.Contains(ll, "reset") {
			keep = append(keep, strings.TrimSpace(l))
		}
	}
	if len(keep) == 0 {
		return out
	}
	return strings.Join(keep, "; ")
}

func gnutlsOne(t *testing.T, env *env, s scenario) outcome {
	bin := proxytest.Need(t, "gnutls-cli")
	out, err := runCmd(bin, request, "--x509cafile", env.rootsFile, "--port", strconv.Itoa(s.port), "--sni-hostname", s.name,
		"--verify-hostname", s.name, s.host)
	if err == nil && !strings.Contains(out, "HTTP/1.1 200") {
		err = fmt.Errorf("no response")
	}
	if err == nil {
		return outcome{Accept: true, Class: clients.ClassOK}
	}
	return failed(errorLines(out))
}

func goOne(_ *testing.T, env *env, s scenario) outcome {
	pool := x509.NewCertPool()
	for _, r := range env.roots {
		pool.AddCert(r)
	}
	d := &tls.Dialer{NetDialer: &net.Dialer{Timeout: 5 * time.Second}, Config: &tls.Config{RootCAs: pool, ServerName: s.name}}
	ctx, cancel := context.WithTimeout(context.Background(), clientTimeout)
	defer cancel()
	c, err := d.DialContext(ctx, "tcp", net.JoinHostPort(s.host, strconv.Itoa(s.port)))
	if err != nil {
		return failed(err.Error())
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, request); err != nil {
		return failed(err.Error())
	}
	if _, err := c.Read(make([]byte, 16)); err != nil {
		return failed(err.Error())
	}
	return outcome{Accept: true, Class: clients.ClassOK}
}

// batch runs a script that reads "id host port name" lines and writes
// "id OK" or "id FAIL <error>" lines (Python, Node).
func batch(interp, script string) func(*testing.T, *env, []scenario) map[string]outcome {
	return func(t *testing.T, env *env, sc []scenario) map[string]outcome {
		bin := proxytest.Need(t, interp)
		return runBatch(t, sc, bin, script, env.rootsFile)
	}
}

func runBatch(t *testing.T, sc []scenario, bin string, args ...string) map[string]outcome {
	var in strings.Builder
	for _, s := range sc {
		fmt.Fprintf(&in, "%s %s %d %s\n", s.id, s.host, s.port, s.name)
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(len(sc))*clientTimeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Stdin = strings.NewReader(in.String())
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	b, err := cmd.Output()
	if err != nil {
		t.Errorf("%s %v: %v: %s", bin, args, err, stderr.String())
	}
	out := map[string]outcome{}
	sn := bufio.NewScanner(bytes.NewReader(b))
	sn.Buffer(make([]byte, 64*1024), 1<<20)
	for sn.Scan() {
		id, rest, _ := strings.Cut(sn.Text(), " ")
		if rest == "OK" {
			out[id] = outcome{Accept: true, Class: clients.ClassOK}
		} else {
			out[id] = failed(strings.TrimPrefix(rest, "FAIL "))
		}
	}
	return out
}

func java(t *testing.T, env *env, sc []scenario) map[string]outcome {
	javac := proxytest.Need(t, "javac")
	bin := proxytest.Need(t, "java")
	classes := filepath.Join(env.dir, "java")
	if out, err := exec.Command(javac, "-d", classes, "testdata/Client.java").CombinedOutput(); err != nil {
		t.Fatalf("javac: %v: %s", err, out)
	}
	return runBatch(t, sc, bin, "-cp", classes, "Client", env.rootsFile)
}

// chromium loads https://name/ for each scenario in one headless Chromium
// whose NSS database trusts the lab roots; a net error is the failure.
func chromium(t *testing.T, env *env, sc []scenario) map[string]outcome {
	home := filepath.Join(env.dir, "chromium-home")
	if err := os.MkdirAll(home, 0o700); err != nil {
		t.Fatal(err)
	}
	browsertest.NSSTrust(t, home, env.roots...)
	var rules []string
	for _, s := range sc {
		rules = append(rules, fmt.Sprintf("MAP %s %s:%d", s.name, s.host, s.port))
	}
	ctx := browsertest.Start(t, home, rules, "")
	out := map[string]outcome{}
	for _, s := range sc {
		lctx, cancel := context.WithTimeout(ctx, clientTimeout)
		err := chromedp.Do(lctx, chromedp.Navigate("https://"+s.name+"/"))
		cancel()
		if err == nil {
			out[s.id] = outcome{Accept: true, Class: clients.ClassOK}
		} else {
			out[s.id] = failed(err.Error())
		}
	}
	return out
}
