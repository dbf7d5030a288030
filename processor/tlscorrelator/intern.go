package tlscorrelator // import "github.com/certpulse/certpulse/processor/tlscorrelator"

// interner shares one copy of each fingerprint string (chain, key, leaf)
// among the endpoints that hold it: every probe result brings its own
// copies, and an endpoint keeps four (current and last good chain, key,
// leaf) while the k vantages, the client profiles and the names on one
// certificate all hold the same ones. At 100,000 endpoints that was 10 MB
// of the agent's heap.
//
// The table holds what endpoints held at its last rebuild plus what came
// since; it is rebuilt from the live endpoints once it has doubled
// (rebuildDue), so fingerprints no endpoint holds any more are let go, and
// it never holds more than maxInterned (past that, strings are kept as
// they come).
type interner struct {
	m map[string]string
	// base is the table's size after its last rebuild.
	base int
}

// maxInterned bounds the table: four fingerprints per tracked endpoint at
// the default max_endpoints would be 400,000.
const maxInterned = 1 << 19

func (in *interner) get(s string) string {
	if s == "" {
		return ""
	}
	if c, ok := in.m[s]; ok {
		return c
	}
	if len(in.m) >= maxInterned {
		return s
	}
	if in.m == nil {
		in.m = map[string]string{}
	}
	in.m[s] = s
	return s
}

// rebuildDue: the table has doubled since its last rebuild.
func (in *interner) rebuildDue() bool {
	return len(in.m) > 2*in.base+1024
}

// share makes a restored endpoint hold the table's copies.
func (in *interner) share(ep *endpointState) {
	for _, f := range []*string{&ep.CurChain, &ep.GoodChain, &ep.GoodSPKI, &ep.GoodLeaf} {
		*f = in.get(*f)
	}
	if ep.Trouble != nil { // an equal string: not a change of the Trouble
		ep.Trouble.LagRef = in.get(ep.Trouble.LagRef)
	}
}

// rebuild keeps only the strings the endpoints hold.
func (in *interner) rebuild(endpoints map[string]*endpointState) {
	in.m = map[string]string{}
	for _, ep := range endpoints {
		for _, s := range []string{ep.CurChain, ep.GoodChain, ep.GoodSPKI, ep.GoodLeaf, ep.trouble().LagRef} {
			if s != "" && len(in.m) < maxInterned {
				in.m[s] = s
			}
		}
	}
	in.base = len(in.m)
}
