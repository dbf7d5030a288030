package certlifecyclereceiver

import (
	"net/http"
	"testing"
	"time"
)

// FuzzParseRequest feeds arbitrary bodies in every accepted form to the
// request parser: it must never panic, and what it accepts must be valid.
func FuzzParseRequest(f *testing.F) {
	f.Add(uint8(0), []byte(`{"specversion":"1.0","id":"1","source":"s","type":"dev.certpulse.certificate.issued","data":{"service":"a","certificate":{"sha256":"`+"ab"+`"}}}`))
	f.Add(uint8(1), []byte(`[{"specversion":"1.0","id":"1","source":"s","type":"issued","data":{"service":"a"}},{"specversion":"1.0","id":"2","source":"s","type":"deployed","data_base64":"eyJzZXJ2aWNlIjoiYiJ9"}]`))
	f.Add(uint8(2), []byte(`{"type":"maintenance_started","service":"a","window":{"end":"2030-01-01T00:00:00Z"}}`))
	f.Add(uint8(2), []byte(`[{"type":"issued","service":"a","certificate":{"pem":"-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"}}]`))
	f.Add(uint8(3), []byte(`{"service":"a","endpoints":["x:443"]}`))
	f.Add(uint8(2), []byte(`{"type":"issued","service":"a"} trailing`))
	lim := limits{maxField: 512, maxList: 100, maxPEM: 32 << 10, maxClockSkew: 5 * time.Minute}
	f.Fuzz(func(t *testing.T, mode uint8, body []byte) {
		h := http.Header{}
		switch mode % 4 {
		case 0:
			h.Set("Content-Type", "application/cloudevents+json")
		case 1:
			h.Set("Content-Type", "application/cloudevents-batch+json")
		case 2:
			h.Set("Content-Type", "application/json")
		case 3:
			h.Set("Content-Type", "application/json")
			h.Set("Ce-Specversion", "1.0")
			h.Set("Ce-Id", "id")
			h.Set("Ce-Source", "src")
			h.Set("Ce-Type", "dev.certpulse.certificate.deployed")
		}
		events, err := parseRequest(h, body, lim, 100, time.Now())
		if err != nil {
			if err.Status < 400 || err.Status > 499 || err.Message == "" {
				t.Fatalf("bad rejection %+v", err)
			}
			return
		}
		if len(events) == 0 || len(events) > 100 {
			t.Fatalf("%d events accepted", len(events))
		}
		for i := range events {
			if events[i].Type == "" || events[i].Data.Service == "" || events[i].ID == "" {
				t.Fatalf("accepted an incomplete event %+v", events[i])
			}
		}
		_ = buildLogs(events, make([]bool, len(events)), time.Now())
	})
}
