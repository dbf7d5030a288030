package tlsinspect

import (
	"errors"
	"net/netip"
	"time"
)

// Options bound and tune an Inspector. Zero values take the defaults of
// DefaultOptions.
type Options struct {
	// Timeout bounds one whole probe (all profiles, OCSP, CRL, AIA).
	Timeout time.Duration
	// ExpiringSoon flags certificates that expire within this window.
	ExpiringSoon time.Duration
	// MaxChainCerts is how many presented certificates are kept.
	MaxChainCerts int

	OCSP OCSPOptions
	CRL  FetchOptions
	AIA  FetchOptions

	// AllowPrivateFetch lists the networks that OCSP, CRL and AIA fetches
	// may reach although they are loopback, link-local, private or
	// unspecified (an internal PKI). Any other such address is refused at
	// dial time. With an HTTP proxy configured the check applies to the
	// proxy's address, and the proxy enforces its own policy.
	AllowPrivateFetch []netip.Prefix

	// Now returns the current time; tests set it.
	Now func() time.Time
}

// OCSPOptions configure stapled and responder OCSP checks.
type OCSPOptions struct {
	// CheckResponder queries the leaf's AIA OCSP responder.
	CheckResponder bool
	// Timeout bounds one responder query.
	Timeout time.Duration
	// MaxStapleAge flags staples whose thisUpdate is older.
	MaxStapleAge time.Duration
	// CacheTTL bounds how long a responder answer is reused (never past
	// the answer's nextUpdate).
	CacheTTL time.Duration
	// MaxBytes bounds one responder answer.
	MaxBytes int64
}

// FetchOptions configure a bounded, cached HTTP fetch (CRL, AIA caIssuers).
type FetchOptions struct {
	Enabled  bool
	Timeout  time.Duration
	MaxBytes int64
	CacheTTL time.Duration
}

// DefaultOptions returns the defaults.
func DefaultOptions() Options {
	return Options{
		Timeout:       5 * time.Second,
		ExpiringSoon:  30 * 24 * time.Hour,
		MaxChainCerts: 10,
		OCSP: OCSPOptions{
			CheckResponder: true,
			Timeout:        2 * time.Second,
			MaxStapleAge:   24 * time.Hour,
			CacheTTL:       5 * time.Minute,
			MaxBytes:       64 << 10,
		},
		CRL: FetchOptions{Enabled: true, Timeout: 3 * time.Second, MaxBytes: 10 << 20, CacheTTL: time.Hour},
		AIA: FetchOptions{Enabled: true, Timeout: 2 * time.Second, MaxBytes: 64 << 10, CacheTTL: 24 * time.Hour},
		Now: time.Now,
	}
}

// Validate checks that every bound is positive.
func (o Options) Validate() error {
	var errs []error
	if o.Timeout <= 0 {
		errs = append(errs, errors.New("timeout must be positive"))
	}
	if o.ExpiringSoon < 0 {
		errs = append(errs, errors.New("expiring_soon must not be negative"))
	}
	if o.MaxChainCerts <= 0 {
		errs = append(errs, errors.New("max_chain_certificates must be positive"))
	}
	if o.OCSP.Timeout <= 0 || o.OCSP.MaxStapleAge <= 0 || o.OCSP.CacheTTL < 0 || o.OCSP.MaxBytes <= 0 {
		errs = append(errs, errors.New("ocsp: timeout, max_staple_age and max_bytes must be positive, cache_ttl not negative"))
	}
	for name, f := range map[string]FetchOptions{"crl": o.CRL, "aia": o.AIA} {
		if f.Enabled && (f.Timeout <= 0 || f.MaxBytes <= 0 || f.CacheTTL < 0) {
			errs = append(errs, errors.New(name+": timeout and max_bytes must be positive, cache_ttl not negative"))
		}
	}
	return errors.Join(errs...)
}

func (o Options) withDefaults() Options {
	d := DefaultOptions()
	if o.Timeout == 0 {
		o.Timeout = d.Timeout
	}
	if o.MaxChainCerts == 0 {
		o.MaxChainCerts = d.MaxChainCerts
	}
	if o.OCSP.Timeout == 0 {
		o.OCSP.Timeout = d.OCSP.Timeout
	}
	if o.OCSP.MaxStapleAge == 0 {
		o.OCSP.MaxStapleAge = d.OCSP.MaxStapleAge
	}
	if o.OCSP.MaxBytes == 0 {
		o.OCSP.MaxBytes = d.OCSP.MaxBytes
	}
	fill := func(f, def FetchOptions) FetchOptions {
		if f.Timeout == 0 {
			f.Timeout = def.Timeout
		}
		if f.MaxBytes == 0 {
			f.MaxBytes = def.MaxBytes
		}
		return f
	}
	o.CRL = fill(o.CRL, d.CRL)
	o.AIA = fill(o.AIA, d.AIA)
	if o.Now == nil {
		o.Now = time.Now
	}
	return o
}
