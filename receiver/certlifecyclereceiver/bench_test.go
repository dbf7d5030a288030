package certlifecyclereceiver

import (
	"bytes"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"testing"
	"time"

	"go.opentelemetry.io/collector/consumer/consumertest"

	"github.com/certpulse/certpulse/internal/signature"
)

// BenchmarkIngest posts signed, authenticated events to the real receiver
// over loopback HTTP (keep-alive) and reports accepted events per second.
// Run with -cpu 1 to keep client and server on one core.
func BenchmarkIngest(b *testing.B) {
	for _, batch := range []int{1, 10} {
		b.Run(fmt.Sprintf("batch=%d", batch), func(b *testing.B) {
			cfg := testConfig()
			cfg.HMAC.Secret = testSecret
			r := start(b, cfg, consumertest.NewNop(), "bench")
			var body bytes.Buffer
			body.WriteString("[")
			for i := 0; i < batch; i++ {
				if i > 0 {
					body.WriteString(",")
				}
				fmt.Fprintf(&body, `{"specversion":"1.0","id":"bench-%d","source":"urn:bench","type":"dev.certpulse.certificate.deployed","data":{"service":"payments-api","environment":"prod","region":"eu-west-1","endpoints":["api.example.com:443"],"job_id":"deploy-1","artifact_version":"v1.2.3","certificate":{"sha256":"%s"}}}`, i, hex.EncodeToString(make([]byte, 32)))
			}
			body.WriteString("]")
			payload := body.Bytes()
			client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
			url := "http://" + r.addr + r.cfg.Path
			b.ResetTimer()
			start := time.Now()
			for i := 0; i < b.N; i++ {
				ts := strconv.FormatInt(time.Now().Unix(), 10)
				req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(payload))
				req.Header.Set("Content-Type", "application/cloudevents-batch+json")
				req.Header.Set("Authorization", "Bearer s3cr3t-bench")
				req.Header.Set("X-Certpulse-Timestamp", ts)
				req.Header.Set("X-Certpulse-Signature", signature.Value([]byte(testSecret), ts, payload))
				res, err := client.Do(req)
				if err != nil {
					b.Fatal(err)
				}
				_, _ = io.Copy(io.Discard, res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					b.Fatalf("HTTP %d", res.StatusCode)
				}
			}
			b.ReportMetric(float64(b.N*batch)/time.Since(start).Seconds(), "events/s")
			client.CloseIdleConnections()
		})
	}
}
