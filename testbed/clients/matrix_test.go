// Package clients is the client matrix: every scenario of the fault lab
// (and a few more servers) tried by every real TLS client installed here
// with the same trust anchors, and judged by certpulse's client presets
// from one probe; the agreement per client goes to docs/clients.md.
package clients

import (
	"context"
	"crypto/x509"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/certpulse/certpulse/internal/clients"
	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/testkit/proxytest"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// knownDisagreements are cells where the preset and the real client part
// for a reason of the lab, not of the model (docs/clients.md says why).
var knownDisagreements = map[string]string{
	"weak-key-512/node tls": "the lab's 512-bit server holds no private key: Node's OpenSSL verifies after the key exchange, which the lab cannot decrypt (illegal_parameter); with a real key Node reports the weak key",
}

// minAgreement is the floor: at least 99% of cells agree.
const minAgreement = 0.99

func TestClientMatrix(t *testing.T) {
	// Every real client must be here (scripts/install-test-deps.sh): a
	// matrix with a column missing would not measure what it claims.
	for _, bin := range []string{"curl", "openssl", "python3", "node", "gnutls-cli", "chromium", "certutil", "java", "javac"} {
		proxytest.Need(t, bin)
	}
	lab, err := faultlab.Start()
	require.NoError(t, err)
	t.Cleanup(lab.Close)
	dir := t.TempDir()
	e := &env{rootsFile: filepath.Join(dir, "roots.pem"), roots: []*x509.Certificate{lab.Root.Cert, lab.ExpiredRoot.Cert}, dir: dir}
	require.NoError(t, os.WriteFile(e.rootsFile, faultlab.PEM(e.roots...), 0o600))
	sc := append(labScenarios(t, lab), extraScenarios(t, lab)...)
	sort.Slice(sc, func(i, j int) bool { return sc[i].id < sc[j].id })
	require.GreaterOrEqual(t, len(sc), 30, "the issue's floor: at least 30 scenarios")

	// certpulse: one probe per scenario under the strict default profile
	// with the same roots, judged by every preset.
	opts := tlsinspect.DefaultOptions()
	opts.AllowPrivateFetch = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}
	in := tlsinspect.New(opts)
	t.Cleanup(in.Close)
	pool := x509.NewCertPool()
	for _, r := range e.roots {
		pool.AddCert(r)
	}
	evidence := map[string]clients.Evidence{}
	probed := map[string]string{}
	for _, s := range sc {
		res := in.Inspect(context.Background(), tlsinspect.Target{Endpoint: net.JoinHostPort(s.host, strconv.Itoa(s.port)), ServerName: s.name,
			Profiles: []tlsinspect.Profile{{Name: "default", Roots: pool, TLS: nil}}})
		evidence[s.id] = clients.EvidenceOf(&res[0])
		probed[s.id] = string(res[0].Primary())
	}

	cls := realClients()
	results := map[string]map[string]outcome{}
	for _, c := range cls {
		results[c.name] = c.run(t, e, sc)
	}

	type tally struct{ agree, cells int }
	per := map[string]*tally{}
	var table, disagreements strings.Builder
	fmt.Fprintf(&table, "| scenario | probe |")
	for _, c := range cls {
		fmt.Fprintf(&table, " %s |", c.name)
	}
	table.WriteString("\n|---|---|" + strings.Repeat("---|", len(cls)) + "\n")
	agree, cells, known := 0, 0, 0
	for _, s := range sc {
		fmt.Fprintf(&table, "| %s | %s |", s.id, probed[s.id])
		for _, c := range cls {
			m, ok := clients.Preset(c.family)
			require.True(t, ok, c.family)
			v := m.Judge(evidence[s.id])
			o, ran := results[c.name][s.id]
			if !ran {
				o = outcome{Class: "(no result)"}
			}
			tl := per[c.name]
			if tl == nil {
				tl = &tally{}
				per[c.name] = tl
			}
			tl.cells++
			cells++
			mark := string(o.Class)
			if v.Accept == o.Accept && v.Class == o.Class {
				tl.agree++
				agree++
			} else {
				mark = fmt.Sprintf("**%s** (preset: %s)", o.Class, v.Class)
				key := s.id + "/" + c.name
				why, isKnown := knownDisagreements[key]
				if isKnown {
					known++
				} else {
					why = "unexplained"
				}
				fmt.Fprintf(&disagreements, "- %s, %s: the client says %s (%s); the %s preset says %s (%s). %s\n", s.id, c.name, o.Class, o.Detail, c.family, v.Class, v.Why, why)
			}
			fmt.Fprintf(&table, " %s |", mark)
		}
		table.WriteString("\n")
	}
	var summary strings.Builder
	fmt.Fprintf(&summary, "| client | preset | cells | agree |\n|---|---|---|---|\n")
	for _, c := range cls {
		tl := per[c.name]
		fmt.Fprintf(&summary, "| %s | %s | %d | %d (%.1f%%) |\n", c.name, c.family, tl.cells, tl.agree, 100*float64(tl.agree)/float64(tl.cells))
	}
	fmt.Fprintf(&summary, "| **all** | | %d | %d (%.1f%%) |\n", cells, agree, 100*float64(agree)/float64(cells))
	report := fmt.Sprintf("%d scenarios x %d clients.\n\n%s\n%s\nDisagreements:\n\n%s", len(sc), len(cls), summary.String(), table.String(), disagreements.String())
	t.Logf("\n%s", report)
	if out := os.Getenv("CERTPULSE_MATRIX_OUT"); out != "" {
		require.NoError(t, os.WriteFile(out, []byte(report), 0o644))
	}
	require.GreaterOrEqual(t, float64(agree)/float64(cells), minAgreement, "agreement of presets and real clients")
	require.Equal(t, cells-agree, known, "every disagreement is a known one (knownDisagreements)")
}
