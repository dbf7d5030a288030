// Command certpulse-lab serves the certpulse fault lab on 127.0.0.1: one TLS
// endpoint per reason code, with a real OCSP responder, CRL and AIA server.
// It writes roots.pem, client.pem, client-key.pem and targets.yaml (a tlsprobe
// targets_file) into -dir, and node/pki/ (certificate files such as a node
// holds, for tlsprobe `files`), and serves until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/certpulse/certpulse/internal/faultlab"
)

func main() {
	dir := flag.String("dir", "", "directory for roots.pem, client certificate and targets.yaml (required)")
	quiet := flag.Bool("quiet", false, "do not print the endpoint table")
	flag.Parse()
	if *dir == "" {
		fmt.Fprintln(os.Stderr, "certpulse-lab: -dir is required")
		flag.Usage()
		os.Exit(2)
	}
	lab, err := faultlab.Start()
	if err != nil {
		fmt.Fprintln(os.Stderr, "certpulse-lab:", err)
		os.Exit(1)
	}
	defer lab.Close()
	// Node files first: targets.yaml, written last, says the lab is ready.
	node, err := faultlab.WriteNodeFiles(filepath.Join(*dir, "node"))
	if err != nil {
		fmt.Fprintln(os.Stderr, "certpulse-lab:", err)
		os.Exit(1)
	}
	files, err := lab.WriteFiles(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "certpulse-lab:", err)
		os.Exit(1)
	}
	if !*quiet {
		fmt.Printf("certpulse fault lab: %d endpoints on 127.0.0.1; targets in %s\n", len(lab.Endpoints), files.TargetsFile)
		fmt.Printf("node certificate files (tlsprobe files:) in %s:\n", node.Dir)
		for _, f := range node.Files {
			fmt.Printf("  %-28s expect %s\n", f.Name, f.Want)
		}
		for _, e := range lab.Endpoints {
			fmt.Printf("  %-22s %-16s expect %s\n", e.Name, e.Address, e.Want)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}
