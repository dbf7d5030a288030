package tlsedgeconnector

import (
	"testing"
	"time"

	"go.opentelemetry.io/collector/pdata/pcommon"

	"github.com/certpulse/certpulse/internal/attrs"
)

// FuzzObserve: any attribute values a proxy config may leave (a hostile
// client controls SNI and user agent; a broken config anything) are
// classified without a panic, and the bounds hold.
func FuzzObserve(f *testing.F) {
	f.Add("TLSv1.3", "ECDHE-RSA-AES128-GCM-SHA256", "X25519:prime256v1", "0x11ec:X25519", "1", "shop.example.com", "curl/8", "", "r", "1", "POST")
	f.Add("772", "4865", "", "", "", "", "", "no shared cipher", ".", "", "")
	f.Add("", "", "::::", "0x:0xzz", "-1", "\x00", "\xff", "TLS_error:|x", "", "", "")
	f.Fuzz(func(t *testing.T, version, cipher, groups, offered, requests, sni, ua, failure, resumed, early, method string) {
		cfg := createDefaultConfig()
		cfg.MaxServerNames, cfg.MaxClientClasses, cfg.MaxConnections = 2, 2, 4
		cfg.Policies = []PolicyConfig{{Name: "m", Preset: "modern"}, {Name: "i", Preset: "intermediate", Groups: []string{"X25519"}}}
		tr := newTracker(cfg)
		m := pcommon.NewMap()
		put := func(k, v string) {
			if v != "" {
				m.PutStr(k, v)
			}
		}
		put(attrs.EdgeProxy, "nginx")
		put(attrs.TLSProtocolVersion, version)
		put(attrs.TLSCipher, cipher)
		put(attrs.TLSCurve, groups)
		put(attrs.EdgeClientGroups, offered)
		put(attrs.EdgeClientCiphers, cipher+":"+offered)
		put(attrs.EdgeConnectionRequests, requests)
		put(attrs.EdgeConnection, requests+sni)
		put(attrs.ServerAddress, sni)
		put("user_agent.original", ua)
		put(attrs.EdgeTLSFailure, failure)
		put(attrs.TLSResumed, resumed)
		put(attrs.TLSEarlyData, early)
		put("http.request.method", method)
		now := time.Now()
		for i := 0; i < 3; i++ {
			o := tr.observe(pcommon.NewMap(), m, now.Add(time.Duration(i)*time.Second))
			_ = o.reasonOf()
			if o.kind == kindFailure && o.h.reason == "" {
				t.Fatalf("a failure without a reason: %+v", o.h)
			}
		}
		if len(tr.names.kept) > 2 || len(tr.classes.seen) > 2 || len(tr.conns.last) > 5 {
			t.Fatalf("bounds: names %d classes %d conns %d", len(tr.names.kept), len(tr.classes.seen), len(tr.conns.last))
		}
	})
}
