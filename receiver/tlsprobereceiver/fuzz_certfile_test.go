package tlsprobereceiver

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// FuzzParseCertFile feeds arbitrary bytes (seeded with a node's real files)
// to the certificate file parser and the classification after it: no panic,
// an error or at least one certificate, never both empty.
func FuzzParseCertFile(f *testing.F) {
	nf, err := faultlab.WriteNodeFiles(f.TempDir())
	if err != nil {
		f.Fatal(err)
	}
	for _, n := range nf.Files {
		b, err := os.ReadFile(filepath.Join(nf.Dir, n.Name))
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte("kind: Config\nusers:\n- name: u\n  user:\n    client-certificate-data: !!binary AAAA\n"))
	now := time.Now()
	f.Fuzz(func(t *testing.T, data []byte) {
		cf, err := parseCertFile(data)
		if err != nil {
			return
		}
		if cf.certCount() == 0 && !hasRefs(cf) {
			t.Fatalf("no error and no certificate")
		}
		for _, s := range cf.sources {
			for _, g := range tlsinspect.GroupStored(s.certs) {
				_ = tlsinspect.ClassifyStored(g, nil, now, time.Hour)
			}
		}
	})
}
