package tlsprobereceiver // import "github.com/certpulse/certpulse/receiver/tlsprobereceiver"

import (
	"time"

	"github.com/certpulse/certpulse/receiver/tlsprobereceiver/internal/metadata"
)

// Series profiles (config `series`).
const (
	// SeriesFull records every metric of every probe (the default).
	SeriesFull = "full"
	// SeriesLean records at most 3 active series per target while it is
	// healthy (with target_info): the owner vantage's success and leaf
	// time left for the first client profile; everything else only while
	// it fails (every vantage and profile: success 0, result with the
	// reason, failure counters; the owner: OCSP not good, CRL revoked, a
	// slow responder, an old staple) and for leanHold after. The log
	// records carry every detail (Loki).
	SeriesLean = "lean"
)

// leanHold: a lean series that was failing keeps being recorded this long
// after it recovered, so that its last failing sample is overwritten (a
// pushed series that stops is not marked stale: Prometheus and Mimir would
// keep its last value for the 5-minute lookback).
const leanHold = 6 * time.Minute

// Lean thresholds for the OCSP series (the shipped rules alert at 2 s and
// a day).
const (
	leanSlowResponder = time.Second
	leanOldStaple     = 12 * time.Hour
)

// seriesPlan says which series one probe records.
type seriesPlan struct {
	// Owner: this agent is the target's owner vantage (rank 0) or its
	// only one: it alone records what describes the certificate.
	Owner bool
	// Lean: series `lean`.
	Lean bool
	// hold: per "node|profile", until when (unix) a lean series that
	// failed keeps being recorded; the target's memory (nil until a series
	// of it fails: most targets never do), read and written under the
	// emitter's lock. nil for full.
	hold *map[string]int64
}

// keep says whether a lean series of key is recorded now: while failing
// and for leanHold after.
func (p seriesPlan) keep(key string, failing bool, now time.Time) bool {
	if p.hold == nil {
		return failing
	}
	if failing {
		if *p.hold == nil {
			*p.hold = map[string]int64{}
		}
		(*p.hold)[key] = now.Add(leanHold).Unix()
		return true
	}
	until, ok := (*p.hold)[key]
	if !ok {
		return false
	}
	if now.Unix() > until {
		delete(*p.hold, key)
		if len(*p.hold) == 0 {
			*p.hold = nil
		}
		return false
	}
	return true
}

func leanOCSPBad(s metadata.AttributeOcspStatus) bool {
	switch s {
	case metadata.AttributeOcspStatusRevoked, metadata.AttributeOcspStatusTimeout, metadata.AttributeOcspStatusError:
		return true
	}
	return false
}

// plan is the series plan of t's next emission.
func (r *tlsProbeReceiver) plan(mem *targetMemory) seriesPlan {
	p := seriesPlan{Owner: mem.vantage.Rank == 0, Lean: r.cfg.Series == SeriesLean}
	if p.Lean { // full keeps no hold per target
		p.hold = &mem.leanHold
	}
	return p
}
