// Package logtest reads log records the way tests look at them: every record
// of a plog.Logs with its resource, and the file exporter's JSON lines.
package logtest // import "github.com/certpulse/certpulse/internal/testkit/logtest"

import (
	"bufio"
	"bytes"
	"os"

	"go.opentelemetry.io/collector/pdata/pcommon"
	"go.opentelemetry.io/collector/pdata/plog"
)

// Record is one log record with the resource it came under.
type Record struct {
	Resource pcommon.Resource
	plog.LogRecord
}

// Records returns every log record of ld, in order.
func Records(ld plog.Logs) []Record {
	var out []Record
	for i := 0; i < ld.ResourceLogs().Len(); i++ {
		rl := ld.ResourceLogs().At(i)
		for j := 0; j < rl.ScopeLogs().Len(); j++ {
			lrs := rl.ScopeLogs().At(j).LogRecords()
			for k := 0; k < lrs.Len(); k++ {
				out = append(out, Record{Resource: rl.Resource(), LogRecord: lrs.At(k)})
			}
		}
	}
	return out
}

// ReadFile returns every record in the file exporter's output (one OTLP JSON
// document per line); a line still being written is skipped, a missing file
// is empty.
func ReadFile(path string) []Record {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil
	}
	var out []Record
	var u plog.JSONUnmarshaler
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(make([]byte, 0, 1<<20), 64<<20)
	for sc.Scan() {
		ld, err := u.UnmarshalLogs(sc.Bytes())
		if err != nil {
			continue
		}
		out = append(out, Records(ld)...)
	}
	return out
}

// Named keeps the records whose event name is event.
func Named(rs []Record, event string) []Record {
	var out []Record
	for _, r := range rs {
		if r.EventName() == event {
			out = append(out, r)
		}
	}
	return out
}

// Attr returns the string form of a record attribute ("" when absent).
func (r Record) Attr(key string) string {
	if v, ok := r.Attributes().Get(key); ok {
		return v.AsString()
	}
	return ""
}

// ResAttr returns the record's resource attribute key as a string, or "".
func (r Record) ResAttr(key string) string {
	if v, ok := r.Resource.Attributes().Get(key); ok {
		return v.AsString()
	}
	return ""
}
