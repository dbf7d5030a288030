package certmanagerprocessor

import (
	"encoding/json"
	"testing"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

// FuzzParseObject: any body a k8sobjects record may carry is read or
// refused with an error, never a panic.
func FuzzParseObject(f *testing.F) {
	for _, seed := range []map[string]any{certificate("MODIFIED", 3, map[string]any{"lastFailureTime": "2026-12-01T00:00:00Z"}), request("3", nil)} {
		b, _ := json.Marshal(seed)
		f.Add(b)
	}
	f.Add([]byte(`{"object":{"apiVersion":"cert-manager.io/v1","kind":"CertificateRequest","metadata":{"name":"a","namespace":"b"},"status":{"certificate":"!!","conditions":[{"type":"Ready","status":"True"}]}}}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		var raw map[string]any
		if json.Unmarshal(data, &raw) != nil {
			return
		}
		v := pcommon.NewValueEmpty()
		if v.SetEmptyMap().FromRaw(raw) != nil {
			return
		}
		_, _ = parseObject(v, "certpulse.dev/service")
	})
}
