package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"bytes"
	"crypto/x509"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"go.yaml.in/yaml/v3"

	"github.com/certpulse/certpulse/internal/certpem"
)

// Bounds on what a certificate file target reads.
const (
	maxCertFileBytes = 4 << 20
	maxCertsPerFile  = 512
)

// certSource is one place in a file that holds certificates: the file itself,
// or one entry of a kubeconfig.
type certSource struct {
	// name is "" for a PEM or DER file, "cluster:<name>" or "user:<name>"
	// for a kubeconfig entry.
	name  string
	certs []*x509.Certificate
	// ref is a file a kubeconfig entry names instead of embedding data
	// (certificate-authority, client-certificate), read by the caller.
	ref string
}

// certFile is what parseCertFile found.
type certFile struct {
	sources []certSource
	// keysSkipped counts private key blocks, which are never decoded.
	keysSkipped int
	// problems are certificates that could not be parsed; the others are
	// still reported.
	problems []string
}

func (f certFile) certCount() int {
	n := 0
	for _, s := range f.sources {
		n += len(s.certs)
	}
	return n
}

// parseCertFile reads certificates from a PEM bundle (CERTIFICATE blocks;
// private key blocks are counted and skipped without decoding), a DER
// certificate, or a kubeconfig (certificate-authority-data and
// client-certificate-data; client keys are never read). It returns an error
// when the data holds no certificate at all.
func parseCertFile(data []byte) (certFile, error) {
	if len(data) > maxCertFileBytes {
		return certFile{}, fmt.Errorf("file is larger than %d bytes", maxCertFileBytes)
	}
	var out certFile
	if bytes.Contains(data, []byte("-----BEGIN")) {
		b := certpem.ReadPEM(data, maxCertsPerFile)
		out.keysSkipped, out.problems = b.Keys, b.Problems
		if len(b.Certs) > 0 {
			out.sources = []certSource{{certs: b.Certs}}
		}
	} else if kc, ok := parseKubeconfig(data); ok {
		out = kc
	} else if len(data) > 0 && data[0] == 0x30 {
		certs, err := x509.ParseCertificates(data)
		if err != nil {
			return certFile{}, fmt.Errorf("not a PEM, DER or kubeconfig certificate file: %w", err)
		}
		out.sources = []certSource{{certs: certs}}
	}
	if out.certCount() > maxCertsPerFile {
		return certFile{}, fmt.Errorf("file holds more than %d certificates", maxCertsPerFile)
	}
	if out.certCount() == 0 && !hasRefs(out) {
		switch {
		case out.keysSkipped > 0:
			return out, fmt.Errorf("no certificate in the file, only %d private key block(s), which are not read", out.keysSkipped)
		case len(out.problems) > 0:
			return out, errors.New(strings.Join(out.problems, "; "))
		}
		return out, errors.New("no certificate found: not a PEM bundle, a DER certificate or a kubeconfig")
	}
	return out, nil
}

func hasRefs(f certFile) bool {
	for _, s := range f.sources {
		if s.ref != "" {
			return true
		}
	}
	return false
}

// kubeconfig holds the certificate fields of a kubeconfig; key fields are
// deliberately absent.
type kubeconfig struct {
	Kind     string `yaml:"kind"`
	Clusters []struct {
		Name    string `yaml:"name"`
		Cluster struct {
			CAData string `yaml:"certificate-authority-data"`
			CA     string `yaml:"certificate-authority"`
		} `yaml:"cluster"`
	} `yaml:"clusters"`
	Users []struct {
		Name string `yaml:"name"`
		User struct {
			CertData string `yaml:"client-certificate-data"`
			Cert     string `yaml:"client-certificate"`
		} `yaml:"user"`
	} `yaml:"users"`
}

// parseKubeconfig reads a kubeconfig's certificates; ok is false when data
// is not a kubeconfig.
func parseKubeconfig(data []byte) (certFile, bool) {
	var kc kubeconfig
	if err := yaml.Unmarshal(data, &kc); err != nil || (kc.Kind != "Config" && len(kc.Clusters) == 0 && len(kc.Users) == 0) {
		return certFile{}, false
	}
	var out certFile
	add := func(name, b64, ref string) {
		switch {
		case b64 != "":
			raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(b64))
			if err != nil {
				out.problems = append(out.problems, fmt.Sprintf("%s: certificate data is not base64: %v", name, err))
				return
			}
			b := certpem.ReadPEM(raw, maxCertsPerFile)
			certs := b.Certs
			for _, p := range b.Problems {
				out.problems = append(out.problems, name+": "+p)
			}
			if len(certs) == 0 && len(b.Problems) == 0 {
				out.problems = append(out.problems, name+": certificate data holds no PEM certificate")
				return
			}
			out.sources = append(out.sources, certSource{name: name, certs: certs})
		case ref != "":
			out.sources = append(out.sources, certSource{name: name, ref: ref})
		}
	}
	for _, c := range kc.Clusters {
		add("cluster:"+c.Name, c.Cluster.CAData, c.Cluster.CA)
	}
	for _, u := range kc.Users {
		add("user:"+u.Name, u.User.CertData, u.User.Cert)
	}
	return out, true
}
