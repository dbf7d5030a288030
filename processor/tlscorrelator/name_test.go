package tlscorrelator

import (
	"strconv"
	"testing"
	"unsafe"
)

func TestNameInKey(t *testing.T) {
	for _, r := range []record{
		{service: "shop", server: "a.example.com", port: 443, profile: "default", vantage: "eu"},
		{service: "s|x", server: "b|c.example.com", port: 8443, node: "10.0.0.1", profile: "p|q", vantage: "v|w"},
		{service: "", server: "", port: 0},
		{service: "neg", server: "h", port: -1},
	} {
		key := epKey(&r)
		got := nameInKey(key, &r)
		if got != endpointName(&r) {
			t.Errorf("%+v: %q, want %q", r, got, endpointName(&r))
		}
		if unsafe.StringData(got) != unsafe.StringData(key[len(r.service)+1:]) {
			t.Errorf("%+v: the name is a copy, not a part of the key", r)
		}
	}
	for _, v := range []int64{0, 9, 10, 443, 65535, -1, -10, 1 << 62} {
		if digits(v) != len(strconv.FormatInt(v, 10)) {
			t.Errorf("digits(%d) = %d", v, digits(v))
		}
	}
}
