package records // import "github.com/certpulse/certpulse/internal/records"

import (
	"fmt"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"
)

func putNonEmpty(m pcommon.Map, k, v string) {
	if v != "" {
		m.PutStr(k, v)
	}
}

func putSlice(m pcommon.Map, k string, vs []string) {
	s := m.PutEmptySlice(k)
	s.EnsureCapacity(len(vs))
	for _, v := range vs {
		s.AppendEmpty().SetStr(v)
	}
}

func putTime(m pcommon.Map, k string, t time.Time, layout string) {
	if !t.IsZero() {
		m.PutStr(k, t.UTC().Format(layout))
	}
}

// timestamp is t as a record timestamp; the zero time is 0 (unset).
func timestamp(t time.Time) pcommon.Timestamp {
	if t.IsZero() {
		return 0
	}
	return pcommon.NewTimestampFromTime(t)
}

// resOrRec reads a routing key from the resource, else from the record.
func resOrRec(res, rec pcommon.Map, k string) string {
	if v, ok := res.Get(k); ok && v.AsString() != "" {
		return v.AsString()
	}
	if v, ok := rec.Get(k); ok {
		return v.AsString()
	}
	return ""
}

// decoder reads typed attributes and keeps the first malformed one.
type decoder struct {
	m   pcommon.Map
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil && err != nil {
		d.err = err
	}
}

func (d *decoder) str(k string) string {
	if v, ok := d.m.Get(k); ok {
		return v.AsString()
	}
	return ""
}

func (d *decoder) slice(k string) []string {
	v, ok := d.m.Get(k)
	if !ok {
		return nil
	}
	if v.Type() != pcommon.ValueTypeSlice {
		d.fail(fmt.Errorf("%s: a %s, not a list", k, v.Type()))
		return nil
	}
	s := v.Slice()
	if s.Len() == 0 {
		return nil
	}
	out := make([]string, 0, s.Len())
	for i := 0; i < s.Len(); i++ {
		out = append(out, s.At(i).AsString())
	}
	return out
}

func (d *decoder) float(k string) float64 {
	v, ok := d.m.Get(k)
	switch {
	case !ok:
		return 0
	case v.Type() == pcommon.ValueTypeDouble:
		return v.Double()
	case v.Type() == pcommon.ValueTypeInt:
		return float64(v.Int())
	}
	d.fail(fmt.Errorf("%s: a %s, not a number", k, v.Type()))
	return 0
}

func (d *decoder) int(k string) int64 {
	v, ok := d.m.Get(k)
	switch {
	case !ok:
		return 0
	case v.Type() == pcommon.ValueTypeInt:
		return v.Int()
	}
	d.fail(fmt.Errorf("%s: a %s, not an integer", k, v.Type()))
	return 0
}

func (d *decoder) bool(k string) bool {
	v, ok := d.m.Get(k)
	switch {
	case !ok:
		return false
	case v.Type() == pcommon.ValueTypeBool:
		return v.Bool()
	}
	d.fail(fmt.Errorf("%s: a %s, not a bool", k, v.Type()))
	return false
}

// time reads an RFC 3339 time (with or without fractional seconds).
func (d *decoder) time(k string) time.Time {
	s := d.str(k)
	if s == "" {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		d.fail(fmt.Errorf("%s: %q is not an RFC 3339 time", k, s))
		return time.Time{}
	}
	return t
}
