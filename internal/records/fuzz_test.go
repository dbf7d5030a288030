package records

import (
	"testing"

	"github.com/stretchr/testify/require"
	"go.opentelemetry.io/collector/pdata/plog"
)

// FuzzDecodeIncidents: any OTLP/JSON logs payload decodes without panic,
// and a decoded incident, written and read again, is a fixed point after
// one more cycle (the record keeps opened_at and not_after to the second).
func FuzzDecodeIncidents(f *testing.F) {
	in := full()
	ld := plog.NewLogs()
	AppendIncident(ld, "scope", &in)
	seed, err := (&plog.JSONMarshaler{}).MarshalLogs(ld)
	require.NoError(f, err)
	f.Add(seed)
	f.Add([]byte(`{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"eventName":"certpulse.incident","attributes":[{"key":"certpulse.incident.id","value":{"stringValue":"x"}},{"key":"certpulse.incident.state","value":{"stringValue":"opened"}}]}]}]}]}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ld, err := (&plog.JSONUnmarshaler{}).UnmarshalLogs(data)
		if err != nil {
			return
		}
		incs, _ := DecodeIncidents(ld)
		for _, inc := range incs {
			once := cycle(t, inc)
			twice := cycle(t, once)
			require.Equal(t, once, twice)
		}
	})
}

func cycle(t *testing.T, inc Incident) Incident {
	ld := plog.NewLogs()
	AppendIncident(ld, "scope", &inc)
	out, bad := DecodeIncidents(ld)
	require.Empty(t, bad, "a decoded incident must encode to a valid record")
	require.Len(t, out, 1)
	return out[0]
}
