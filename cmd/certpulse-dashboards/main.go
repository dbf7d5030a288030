// Command certpulse-dashboards writes the Grafana dashboards (JSON) under
// distributions/grafana/dashboards: `make dashboards`. The dashboards are
// defined here, compactly; the JSON is what Grafana imports or provisions.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"

	"github.com/certpulse/certpulse/internal/dashboards"
)

func main() {
	out := flag.String("out", "distributions/grafana/dashboards", "directory to write the dashboards into")
	flag.Parse()
	if err := os.MkdirAll(*out, 0o755); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	for _, d := range dashboards.All() {
		b, err := json.MarshalIndent(d, "", "  ")
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		if err := os.WriteFile(filepath.Join(*out, d.UID+".json"), append(b, '\n'), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	}
}
