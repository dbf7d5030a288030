// Command certpulse-lab serves the certpulse fault lab on 127.0.0.1: one TLS
// endpoint per reason code, with a real OCSP responder, CRL and AIA server.
// It writes roots.pem, client.pem, client-key.pem and targets.yaml (a tlsprobe
// targets_file) into -dir and serves until interrupted.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
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
	files, err := lab.WriteFiles(*dir)
	if err != nil {
		fmt.Fprintln(os.Stderr, "certpulse-lab:", err)
		os.Exit(1)
	}
	if !*quiet {
		fmt.Printf("certpulse fault lab: %d endpoints on 127.0.0.1; targets in %s\n", len(lab.Endpoints), files.TargetsFile)
		for _, e := range lab.Endpoints {
			fmt.Printf("  %-22s %-16s expect %s\n", e.Name, e.Address, e.Want)
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	<-ctx.Done()
}
