package faultlab

import (
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/certpulse/certpulse/internal/attrs"
)

// NodeFile is one certificate file WriteNodeFiles writes, with the reason a
// tlsprobe file target must report for it (the primary reason of the file).
type NodeFile struct {
	Name string
	Want attrs.Reason
}

// NodeFiles names what WriteNodeFiles wrote.
type NodeFiles struct {
	// Dir holds the files of Files; CAFile is the trust store a `files`
	// entry with ca_file uses (the node PKI's root).
	Dir    string
	CAFile string
	Files  []NodeFile
	// UnknownCA is a leaf from another CA, to be read with ca_file set
	// (unknown_ca); it is outside Dir.
	UnknownCA string
}

// WriteNodeFiles writes certificate files such as a Kubernetes node holds
// (cluster CA, serving bundle with its key, kubelet client cert+key in one
// file, a kubeconfig with embedded data), from a PKI of its own, plus the
// broken ones a file target must flag: expired, expiring, expired CA, weak
// key, garbage, a key with no certificate.
func WriteNodeFiles(dir string) (NodeFiles, error) {
	now := time.Now()
	nf := NodeFiles{Dir: filepath.Join(dir, "pki"), CAFile: filepath.Join(dir, "ca-bundle.pem"), UnknownCA: filepath.Join(dir, "other", "foreign.crt")}
	for _, d := range []string{nf.Dir, filepath.Dir(nf.UnknownCA)} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			return nf, err
		}
	}
	day := 24 * time.Hour
	root, err := issue(certSpec{cn: "node lab cluster CA", isCA: true, notBefore: now.Add(-day), notAfter: now.Add(3650 * day)}, nil)
	if err != nil {
		return nf, err
	}
	inter, err := issue(certSpec{cn: "node lab intermediate", isCA: true, notBefore: now.Add(-day), notAfter: now.Add(1000 * day)}, root)
	if err != nil {
		return nf, err
	}
	leaf := func(cn string, nb, na time.Time, parent *CA, client bool) (*CA, error) {
		return issue(certSpec{cn: cn, dns: []string{cn}, notBefore: nb, notAfter: na, clientEKU: client}, parent)
	}
	serving, err := leaf("apiserver.node.lab", now.Add(-day), now.Add(300*day), inter, false)
	if err != nil {
		return nf, err
	}
	kubelet, err := leaf("system:node:lab-node", now.Add(-day), now.Add(200*day), root, true)
	if err != nil {
		return nf, err
	}
	expired, err := leaf("expired-client.node.lab", now.Add(-400*day), now.Add(-2*day), root, true)
	if err != nil {
		return nf, err
	}
	expiring, err := leaf("expiring.node.lab", now.Add(-80*day), now.Add(5*day), root, false)
	if err != nil {
		return nf, err
	}
	oldCA, err := issue(certSpec{cn: "node lab retired CA", isCA: true, notBefore: now.Add(-3000 * day), notAfter: now.Add(-10 * day)}, nil)
	if err != nil {
		return nf, err
	}
	weakKey, err := newRSAKey(1024)
	if err != nil {
		return nf, err
	}
	weak, err := issue(certSpec{cn: "weak.node.lab", dns: []string{"weak.node.lab"}, notBefore: now.Add(-day), notAfter: now.Add(300 * day), key: weakKey}, root)
	if err != nil {
		return nf, err
	}
	otherCA, err := issue(certSpec{cn: "some other CA", isCA: true, notBefore: now.Add(-day), notAfter: now.Add(3650 * day)}, nil)
	if err != nil {
		return nf, err
	}
	foreign, err := leaf("foreign.node.lab", now.Add(-day), now.Add(300*day), otherCA, false)
	if err != nil {
		return nf, err
	}
	servingKey, err := KeyPEM(serving.Key)
	if err != nil {
		return nf, err
	}
	kubeletKey, err := KeyPEM(kubelet.Key)
	if err != nil {
		return nf, err
	}
	kubeconfig := fmt.Sprintf(`apiVersion: v1
kind: Config
clusters:
  - name: lab
    cluster:
      server: https://127.0.0.1:6443
      certificate-authority-data: %s
users:
  - name: system:node:lab-node
    user:
      client-certificate-data: %s
      client-key-data: %s
contexts:
  - name: lab
    context: {cluster: lab, user: "system:node:lab-node"}
current-context: lab
`, base64.StdEncoding.EncodeToString(PEM(root.Cert)), base64.StdEncoding.EncodeToString(PEM(kubelet.Cert)), base64.StdEncoding.EncodeToString(kubeletKey))

	files := []struct {
		name string
		want attrs.Reason
		data []byte
	}{
		{"ca.crt", attrs.ReasonOK, PEM(root.Cert)},
		{"apiserver.crt", attrs.ReasonOK, PEM(serving.Cert, inter.Cert)},
		{"apiserver.key", attrs.ReasonFileError, servingKey},
		{"kubelet-client-current.pem", attrs.ReasonOK, append(PEM(kubelet.Cert), kubeletKey...)},
		{"kubelet.conf", attrs.ReasonOK, []byte(kubeconfig)},
		{"expired-client.crt", attrs.ReasonExpiredLeaf, PEM(expired.Cert)},
		{"expiring.crt", attrs.ReasonExpiringSoon, PEM(expiring.Cert)},
		{"retired-ca.crt", attrs.ReasonExpiredRoot, PEM(oldCA.Cert)},
		{"weak.crt", attrs.ReasonWeakKey, PEM(weak.Cert)},
		{"garbage.crt", attrs.ReasonFileError, []byte("this is not a certificate\n\x00\x01\x02")},
		{"apiserver.der", attrs.ReasonOK, serving.Cert.Raw},
	}
	for _, f := range files {
		if err := os.WriteFile(filepath.Join(nf.Dir, f.name), f.data, 0o644); err != nil {
			return nf, err
		}
		nf.Files = append(nf.Files, NodeFile{Name: f.name, Want: f.want})
	}
	if err := os.WriteFile(nf.CAFile, PEM(root.Cert), 0o644); err != nil {
		return nf, err
	}
	return nf, os.WriteFile(nf.UnknownCA, PEM(foreign.Cert), 0o644)
}
