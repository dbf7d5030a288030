package tlsinspect

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/certpulse/certpulse/internal/attrs"
)

const cacheEntries = 10000

// Inspector runs probes. It is safe for concurrent use.
type Inspector struct {
	opts      Options
	dialer    *net.Dialer
	http      *http.Client
	transport *http.Transport
	flight    singleflight.Group
	ocspCache *ttlCache[ocspAnswer]
	crlCache  *ttlCache[crlEntry]
	aiaCache  *ttlCache[aiaEntry]
}

// New returns an Inspector; zero fields of opts take their defaults.
func New(opts Options) *Inspector {
	opts = opts.withDefaults()
	in := &Inspector{opts: opts, dialer: &net.Dialer{}}
	tr := &http.Transport{
		Proxy:               http.ProxyFromEnvironment,
		DialContext:         (&net.Dialer{Timeout: opts.Timeout, Control: in.fetchControl}).DialContext,
		MaxIdleConnsPerHost: 4,
		IdleConnTimeout:     30 * time.Second,
		TLSHandshakeTimeout: opts.Timeout,
	}
	in.transport = tr
	in.http = &http.Client{Transport: tr, CheckRedirect: func(*http.Request, []*http.Request) error {
		// Redirects are not followed for OCSP/CRL/AIA: each hop would need
		// its own bound, and CAs do not redirect.
		return http.ErrUseLastResponse
	}}
	in.ocspCache = newTTLCache[ocspAnswer](cacheEntries)
	in.crlCache = newCostCache(crlCacheBytes, crlEntry.size)
	in.aiaCache = newTTLCache[aiaEntry](1024)
	return in
}

// Options returns the effective options.
func (in *Inspector) Options() Options { return in.opts }

// Close releases idle connections.
func (in *Inspector) Close() { in.transport.CloseIdleConnections() }

// shared is what one handshake showed, independent of the trust store.
type shared struct {
	hs        handshakeOutcome
	fail      *Finding // handshake failure under the profile's own parameters
	capture   *tls.ConnectionState
	chain     []*x509.Certificate
	truncated bool
	presented int // certificates presented, before the cap
	// findings that hold for every profile using this handshake
	findings []Finding
	issuer   *x509.Certificate

	// revocation results, computed once for the first profile that
	// reaches them and shared by the rest
	revChecked  bool
	revFindings []Finding
	ocsp        OCSPResult
	ocspTime    time.Duration
	crl         string
}

func (sh *shared) revocationDone() bool { return sh.revChecked }

// Inspect probes t once under each of its profiles and returns one Result
// per profile, in order. It is bounded by Options.Timeout and by ctx.
func (in *Inspector) Inspect(ctx context.Context, t Target) []Result {
	start := in.opts.Now()
	wall := time.Now()
	ctx, cancel := context.WithTimeout(ctx, in.opts.Timeout)
	defer cancel()

	host, port, err := splitHostPort(t.Endpoint)
	serverName := t.ServerName
	if serverName == "" {
		serverName = host
	}
	profiles := t.Profiles
	if len(profiles) == 0 {
		profiles = []Profile{{Name: "default", TLS: &tls.Config{MinVersion: tls.VersionTLS12}}}
	}
	results := make([]Result, len(profiles))
	for i := range profiles {
		results[i] = Result{Profile: profiles[i].Name, ServerName: serverName, Host: host, Port: port, Start: start}
	}
	if err != nil {
		for i := range results {
			results[i].Findings = []Finding{{attrs.ReasonDNSFailure, "bad endpoint: " + err.Error()}}
		}
		return results
	}

	// Profiles with identical handshake parameters share one handshake.
	byKey := map[string]*shared{}
	var grace time.Duration // post-handshake reads: kept out of Total
	for i, p := range profiles {
		key := handshakeKey(p)
		sh, ok := byKey[key]
		if !ok {
			sh = in.runShared(ctx, &t, serverName, p.TLS)
			byKey[key] = sh
			grace += sh.hs.grace
		}
		in.finish(ctx, &results[i], sh, &t, p, serverName)
		results[i].Total = time.Since(wall) - grace
	}
	return results
}

func handshakeKey(p Profile) string {
	c := p.TLS
	if c == nil {
		return ""
	}
	k := ""
	if c.GetClientCertificate != nil {
		// A callback (configtls's reloading client certificate) cannot be
		// compared: such a profile shares its handshake with none.
		k = "profile:" + p.Name + "/"
	}
	k += strconv.Itoa(int(c.MinVersion)) + "/" + strconv.Itoa(int(c.MaxVersion)) + "/"
	for _, cs := range c.CipherSuites {
		k += strconv.Itoa(int(cs)) + ","
	}
	k += "/"
	for _, g := range c.CurvePreferences {
		k += strconv.Itoa(int(g)) + ","
	}
	k += "/"
	for _, cert := range c.Certificates {
		if len(cert.Certificate) > 0 {
			k += fmt.Sprintf("%x", cert.Certificate[0][:min(len(cert.Certificate[0]), 64)])
		}
	}
	return k
}

func (in *Inspector) runShared(ctx context.Context, t *Target, serverName string, cfg *tls.Config) *shared {
	if cfg == nil {
		cfg = &tls.Config{MinVersion: tls.VersionTLS12}
	}
	sh := &shared{crl: CRLNotChecked, ocsp: OCSPResult{Status: attrs.OCSPNotChecked}}
	sh.hs = in.handshake(ctx, t, serverName, cfg)
	if sh.hs.err != nil {
		f := classifyHandshakeError(sh.hs.phase, sh.hs.err, sh.hs.sentCert)
		sh.fail = &f
		if sh.hs.state != nil {
			// Rejected after a completed TLS 1.3 handshake: the chain
			// was presented; nothing else to capture.
			sh.capture = sh.hs.state
			return sh.withChain(in.opts.MaxChainCerts)
		}
		// A handshake that failed on version, cipher or an alert may still
		// show the chain to a client that offers everything: capture it so
		// expiry metrics never disappear exactly when something breaks.
		switch f.Reason {
		case attrs.ReasonProtocolMismatch, attrs.ReasonCipherMismatch, attrs.ReasonHandshakeFailure:
			cap := in.handshake(ctx, t, serverName, permissiveConfig(cfg))
			if cap.err == nil {
				sh.capture = cap.state
				in.refineMismatch(ctx, t, serverName, sh.fail, cfg, cap.state)
				break
			}
			// The chain may have arrived before the handshake failed: judge
			// it, and name a key Go refuses instead of a bare failure.
			presented := sh.hs.presented
			if len(presented) == 0 {
				presented = cap.presented
			}
			if len(presented) > 0 {
				v, cs := sh.hs.version, sh.hs.cipher
				if len(sh.hs.presented) == 0 {
					v, cs = cap.version, cap.cipher
				}
				sh.capture = &tls.ConnectionState{PeerCertificates: presented, Version: v, CipherSuite: cs}
				if w := refusedKey(presented[0], sh.hs.err, cap.err); w != nil {
					sh.fail = w
				}
			}
		}
	} else {
		sh.capture = sh.hs.state
	}
	return sh.withChain(in.opts.MaxChainCerts)
}

// withChain keeps the captured chain (at most max certificates) and the
// findings that hold for it under every profile.
func (sh *shared) withChain(max int) *shared {
	if sh.capture == nil || len(sh.capture.PeerCertificates) == 0 {
		return sh
	}
	chain := sh.capture.PeerCertificates
	sh.presented = len(chain)
	if len(chain) > max {
		chain, sh.truncated = chain[:max], true
	}
	sh.chain = chain
	if len(chain) > 1 && bytes.Equal(chain[0].RawIssuer, chain[1].RawSubject) {
		sh.issuer = chain[1]
	}
	sh.findings = chainFindings(chain)
	return sh
}

// refusedKey names a server key Go's TLS stack refuses (RSA below 1024 bits)
// as weak_key, when that is what ended the handshake.
func refusedKey(leaf *x509.Certificate, errs ...error) *Finding {
	for _, err := range errs {
		if err == nil || !strings.Contains(err.Error(), "keys are insecure") {
			continue
		}
		w := weakKey(leaf)
		if w == "" {
			w = "key too small"
		}
		return &Finding{attrs.ReasonWeakKey, fmt.Sprintf("%s has a weak key (%s); Go clients refuse it and cannot complete the handshake (%v)", Name(leaf), w, err)}
	}
	return nil
}

// refineMismatch turns a generic handshake failure into protocol or cipher
// mismatch when the permissive capture shows the server speaks a version
// below the profile's, or speaks the profile's versions with other ciphers.
func (in *Inspector) refineMismatch(ctx context.Context, t *Target, serverName string, f *Finding, cfg *tls.Config, st *tls.ConnectionState) {
	if st == nil || (f.Reason != attrs.ReasonHandshakeFailure && f.Reason != attrs.ReasonProtocolMismatch) {
		return
	}
	if cfg.MinVersion != 0 && st.Version < cfg.MinVersion {
		*f = Finding{attrs.ReasonProtocolMismatch, fmt.Sprintf("server speaks TLS %s at most; this client profile requires %s or later, so its clients cannot connect", versionName(st.Version), versionName(cfg.MinVersion))}
		return
	}
	if f.Reason != attrs.ReasonHandshakeFailure {
		return
	}
	// A profile limited to some key exchange groups (a post-quantum-only
	// profile): does the server agree with Go's default groups?
	if len(cfg.CurvePreferences) > 0 {
		probe := &tls.Config{MinVersion: cfg.MinVersion, MaxVersion: cfg.MaxVersion, CipherSuites: cfg.CipherSuites, Certificates: cfg.Certificates, GetClientCertificate: cfg.GetClientCertificate}
		if out := in.handshake(ctx, t, serverName, probe); out.err == nil {
			*f = Finding{attrs.ReasonCipherMismatch, fmt.Sprintf("no key exchange group in common: the server picks %s, this client profile offers only %s", curveName(out.state.CurveID), curveNames(cfg.CurvePreferences))}
			return
		}
	}
	// Same versions as the profile, every cipher: does the server agree
	// now? The profile's effective suites are its own list, or Go's
	// defaults when it names none.
	probe := permissiveConfig(cfg)
	probe.MinVersion, probe.MaxVersion = cfg.MinVersion, cfg.MaxVersion
	if out := in.handshake(ctx, t, serverName, probe); out.err == nil {
		offered := fmt.Sprintf("not one of the %d cipher suites of this client profile", len(cfg.CipherSuites))
		if len(cfg.CipherSuites) == 0 {
			offered = "which this client profile (Go's default suites, as modern clients) does not offer"
		}
		*f = Finding{attrs.ReasonCipherMismatch, fmt.Sprintf("server speaks %s but picks %s, %s", versionName(out.state.Version), tls.CipherSuiteName(out.state.CipherSuite), offered)}
	} else if cfg.MaxVersion != 0 && st.Version > cfg.MaxVersion {
		*f = Finding{attrs.ReasonProtocolMismatch, fmt.Sprintf("server needs TLS %s; this client profile allows up to %s", versionName(st.Version), versionName(cfg.MaxVersion))}
	}
}

// curveName names a key exchange group with the names configtls's
// curve_preferences takes (P256, X25519, X25519MLKEM768); "none" for RSA
// key exchange.
func curveName(c tls.CurveID) string {
	switch c {
	case 0:
		return "none"
	case tls.CurveP256:
		return "P256"
	case tls.CurveP384:
		return "P384"
	case tls.CurveP521:
		return "P521"
	}
	return c.String()
}

// CurveName is the tls.curve value for c.
func CurveName(c tls.CurveID) string { return curveName(c) }

func curveNames(cs []tls.CurveID) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = curveName(c)
	}
	return strings.Join(names, ", ")
}

func pinMatches(pins []string, chain []*x509.Certificate) bool {
	for _, c := range chain {
		pin := SPKIPin(c)
		for _, p := range pins {
			if n, err := NormalizePin(p); err == nil && n == pin {
				return true
			}
		}
	}
	return false
}

// finish fills one profile's result from the shared handshake: the fetch
// stages (AIA inside validate, OCSP and CRL once per probe) gather
// evidence, the judgements (judgeTrust, judgeRevocation, timeFindings,
// chainFindings) are pure. ctx is the probe's: its deadline
// (Options.Timeout) and cancellation bound the fetches too.
func (in *Inspector) finish(ctx context.Context, r *Result, sh *shared, t *Target, p Profile, serverName string) {
	r.Connect, r.Handshake = sh.hs.connect, sh.hs.handshake
	r.ClientCertRequested = sh.hs.asked
	if sh.hs.peer != nil {
		if ta, ok := sh.hs.peer.(*net.TCPAddr); ok {
			r.PeerAddress, r.PeerPort = ta.IP.String(), ta.Port
		}
	}
	if sh.hs.state != nil && sh.hs.err == nil {
		r.Established = true
		r.Resumed = sh.hs.state.DidResume
		r.Version, r.CipherSuite, r.Curve = sh.hs.state.Version, sh.hs.state.CipherSuite, sh.hs.state.CurveID
		r.HelloRetry = sh.hs.state.HelloRetryRequest
	} else if sh.capture != nil {
		r.Version, r.CipherSuite, r.Curve = sh.capture.Version, sh.capture.CipherSuite, sh.capture.CurveID
	}
	r.Chain, r.ChainTruncated, r.PresentedCerts = sh.chain, sh.truncated, sh.presented
	var fs []Finding
	if sh.fail != nil {
		fs = append(fs, *sh.fail)
	}
	if len(sh.chain) == 0 {
		r.Findings = sortFindings(fs)
		r.OCSP, r.CRLStatus = sh.ocsp, sh.crl
		return
	}
	now := in.opts.Now()

	roots := p.Roots
	if roots == nil {
		roots, _ = x509.SystemCertPool()
		if roots == nil {
			roots = x509.NewCertPool()
		}
	}
	path, pf := in.profileFindings(ctx, sh.chain, serverName, t.Pins, roots, now)
	r.Path = path
	if path == nil {
		r.ChainInvalid = chainInvalid(sh.chain, roots, now)
	}
	fs = append(fs, pf...)
	fs = append(fs, sh.findings...)
	leaf := sh.chain[0]

	// Revocation is profile-independent but needs the issuer, which the
	// path may supply (missing intermediate completed through AIA).
	if !sh.revocationDone() {
		issuer := sh.issuer
		if issuer == nil && len(path) > 1 {
			issuer = path[1]
		}
		ostart := time.Now()
		ev := revocationEvidence{ocsp: in.fetchOCSP(ctx, leaf, issuer, now), crl: in.fetchCRLOf(ctx, leaf, issuer)}
		sh.ocspTime = time.Since(ostart)
		sh.ocsp, sh.crl, sh.revFindings = judgeRevocation(sh.capture.OCSPResponse, ev, leaf, issuer, now, in.opts.OCSP.MaxStapleAge)
		sh.revChecked = true
	}
	fs = append(fs, sh.revFindings...)
	r.OCSP, r.CRLStatus, r.OCSPTime = sh.ocsp, sh.crl, sh.ocspTime
	r.Findings = sortFindings(fs)
}

// revocationEvidence is what the fetch stage gathered for a leaf's
// revocation: the OCSP responder's answer and the CRL (nil when not asked).
type revocationEvidence struct {
	ocsp *ocspAnswer
	crl  *crlEvidence
}

// judgeRevocation judges the staple, the responder's answer and the CRL.
// Pure. A revocation the OCSP side reports is not repeated from the CRL.
func judgeRevocation(staple []byte, ev revocationEvidence, leaf, issuer *x509.Certificate, now time.Time, maxStapleAge time.Duration) (OCSPResult, string, []Finding) {
	res, fs := judgeOCSP(staple, ev.ocsp, leaf, issuer, now, maxStapleAge)
	crl, crlF := judgeCRL(ev.crl, leaf)
	if !hasReason(fs, attrs.ReasonRevoked) {
		fs = append(fs, crlF...)
	}
	return res, crl, fs
}

// chainFindings are the findings of a presented chain that hold under every
// profile: order, signature and key strength.
func chainFindings(chain []*x509.Certificate) []Finding {
	var out []Finding
	leaf := chain[0]
	if p := orderProblem(chain); p != "" {
		out = append(out, Finding{attrs.ReasonBadChainOrder, "certificate chain is not in order: " + p + "; strict clients fail"})
	}
	for i, c := range chain {
		if i > 0 && isSelfSigned(c) {
			continue // a trust anchor's own signature does not matter
		}
		if w := weakSignature(c); w != "" {
			out = append(out, Finding{attrs.ReasonWeakSignature, fmt.Sprintf("%s is signed with %s; modern clients reject it", Name(c), w)})
			break
		}
	}
	for _, c := range chain {
		if w := weakKey(c); w != "" && (c == leaf || !isSelfSigned(c)) {
			out = append(out, Finding{attrs.ReasonWeakKey, fmt.Sprintf("%s has a weak key (%s; minimum RSA 2048, EC 256)", Name(c), w)})
			break
		}
	}
	return out
}

// profileFindings validate the chain under one trust store: trust path,
// validity periods, hostname and pins (any pin matching a presented
// certificate or one on the validated path, anchor included, passes).
func (in *Inspector) profileFindings(ctx context.Context, chain []*x509.Certificate, serverName string, pins []string, roots *x509.CertPool, now time.Time) ([]*x509.Certificate, []Finding) {
	path, fs := in.validate(ctx, chain, roots, now)
	if len(pins) > 0 && !pinMatches(pins, chain) && !pinMatches(pins, path) {
		fs = append(fs, Finding{attrs.ReasonPinMismatch, fmt.Sprintf("no certificate in the chain matches the %d configured pin(s); the leaf's pin is sha256/%s; pinned clients fail", len(pins), SPKIPin(chain[0]))})
	}
	fs = append(fs, timeFindings(chain, path, now, in.opts.ExpiringSoon)...)
	leaf := chain[0]
	if err := leaf.VerifyHostname(serverName); err != nil {
		fs = append(fs, Finding{attrs.ReasonHostnameMismatch, fmt.Sprintf("certificate %s is not valid for %s (it covers %s); every client fails", Name(leaf), serverName, sanSummary(leaf))})
	}
	return path, fs
}

// Classify judges a presented chain without connecting: trust path under
// roots, validity, hostname, pins, key and signature strength, order (and
// AIA completion when enabled). OCSP and CRL are not consulted. The
// remediation verifier and the fuzz tests use it.
func (in *Inspector) Classify(ctx context.Context, chain []*x509.Certificate, serverName string, pins []string, roots *x509.CertPool) []Finding {
	if len(chain) == 0 {
		return []Finding{{attrs.ReasonHandshakeFailure, "no certificate presented"}}
	}
	if len(chain) > in.opts.MaxChainCerts {
		chain = chain[:in.opts.MaxChainCerts]
	}
	if roots == nil {
		roots = x509.NewCertPool()
	}
	_, fs := in.profileFindings(ctx, chain, serverName, pins, roots, in.opts.Now())
	fs = append(fs, chainFindings(chain)...)
	return sortFindings(fs)
}

func sanSummary(c *x509.Certificate) string {
	s := SANs(c)
	if len(s) == 0 {
		return "no subjectAltName"
	}
	if len(s) > 4 {
		return fmt.Sprintf("%v and %d more", s[:4], len(s)-4)
	}
	return fmt.Sprint(s)
}

// validate builds a trust path and reports trust-path findings: the pure
// judgement first, then, only when it asks for it, the AIA fetch stage and
// the judgement again with that evidence.
func (in *Inspector) validate(ctx context.Context, chain []*x509.Certificate, roots *x509.CertPool, now time.Time) ([]*x509.Certificate, []Finding) {
	path, fs, wantAIA := judgeTrust(chain, nil, roots, now)
	if !wantAIA {
		return path, fs
	}
	extra, err := in.completeViaAIA(ctx, chain)
	path, fs, _ = judgeTrust(chain, &aiaEvidence{extra: extra, err: err}, roots, now)
	return path, fs
}

// aiaEvidence is what following the chain's caIssuers URLs produced: the
// certificates fetched, or why none could be.
type aiaEvidence struct {
	extra []*x509.Certificate
	err   error
}

// judgeTrust judges the trust path of chain under roots at now. Pure: aia
// is the AIA fetch stage's evidence, nil when not fetched; wantAIA says
// the judgement needs it (an unknown authority that AIA might complete),
// and the caller fetches and judges again.
func judgeTrust(chain []*x509.Certificate, aia *aiaEvidence, roots *x509.CertPool, now time.Time) (path []*x509.Certificate, fs []Finding, wantAIA bool) {
	path, err := verifyAt(chain, nil, roots, now)
	if err == nil {
		return path, nil, false
	}
	// Look past expiry: verify at a time when every presented certificate
	// is valid, so that the trust path is judged on its own.
	if isTimeError(err) {
		if t, ok := validityOverlap(chain, now); ok {
			path, err = verifyAt(chain, nil, roots, t)
			if err == nil {
				return path, nil, false
			}
			// Still expired at a time every presented certificate is
			// valid: the anchor itself may have expired. Try when the
			// presented chain was issued.
			if f, p := expiredAnchor(chain, roots, now, t); f != nil {
				return p, []Finding{*f}, false
			}
		}
	}
	leaf := chain[0]
	switch {
	case isInsecureAlgorithm(err):
		// weak_signature is reported from the chain itself.
		return nil, nil, false
	case isTimeError(err):
		return nil, nil, false // reported by timeFindings
	case isUnknownAuthority(err):
		if t, ok := validityOverlap(chain, now); ok {
			if f, p := expiredAnchor(chain, roots, now, t); f != nil {
				return p, []Finding{*f}, false
			}
		}
		if isSelfSigned(leaf) {
			return nil, []Finding{{attrs.ReasonSelfSigned, fmt.Sprintf("certificate %s is self-signed and not in this client profile's trust store; every client fails", Name(leaf))}}, false
		}
		if aia == nil {
			return nil, nil, true
		}
		extra, aerr := aia.extra, aia.err
		if aerr == nil {
			t := now
			if ov, ok := validityOverlap(append(slices.Clone(chain), extra...), now); ok {
				t = ov
			}
			if p, err2 := verifyAt(chain, extra, roots, t); err2 == nil {
				missing := p[len(chain):]
				if len(missing) > 1 {
					missing = missing[:len(missing)-1] // the anchor is not missing
				}
				names := make([]string, 0, len(missing))
				for _, m := range missing {
					names = append(names, Name(m))
				}
				return p, []Finding{{attrs.ReasonMissingIntermediate, fmt.Sprintf("certificate chain is missing intermediate %v; clients without AIA fetching fail", joinNames(names))}}, false
			}
		}
		if len(chain) == 1 {
			// A lone leaf that is not self-signed names an issuer the
			// server did not send: the chain is incomplete whatever AIA
			// says (a server fault), even where the issuer cannot be
			// fetched to prove it.
			detail := fmt.Sprintf("the server sent only certificate %s, not its issuer %q; clients that cannot complete the chain themselves fail", Name(leaf), leaf.Issuer.String())
			switch {
			case aerr != nil && len(leaf.IssuingCertificateURL) > 0:
				detail += "; the issuer could not be fetched through AIA: " + aerr.Error()
			case len(leaf.IssuingCertificateURL) == 0:
				detail += "; the issuer could not be fetched: the certificate names no AIA caIssuers URL"
			default:
				detail += "; the issuer fetched through AIA does not lead to a root this client profile trusts either"
			}
			return nil, []Finding{{attrs.ReasonMissingIntermediate, detail}}, false
		}
		issuer := chain[len(chain)-1].Issuer.String()
		detail := fmt.Sprintf("chain does not lead to a root this client profile trusts (top issuer %q); clients with this trust store fail", issuer)
		if aerr != nil && len(leaf.IssuingCertificateURL) > 0 {
			detail += "; the issuer could not be fetched through AIA: " + aerr.Error()
		}
		return nil, []Finding{{attrs.ReasonUnknownCA, detail}}, false
	}
	return nil, []Finding{{attrs.ReasonUnknownCA, "chain does not validate: " + err.Error()}}, false
}

// expiredAnchor reports an expired trust anchor: the presented chain links
// up to its top certificate (checked at t, when every presented certificate
// is valid), and the top certificate leads only to anchors that have expired
// by now (checked when the top certificate was issued, when its issuer was
// presumably valid). The caller tried now first, so no current path exists
// and every client with this trust store fails.
func expiredAnchor(chain []*x509.Certificate, roots *x509.CertPool, now, t time.Time) (*Finding, []*x509.Certificate) {
	top := chain[len(chain)-1]
	if len(chain) > 1 {
		self := x509.NewCertPool()
		self.AddCert(top)
		if _, err := verifyAt(chain, nil, self, t); err != nil {
			return nil, nil
		}
	}
	paths, err := top.Verify(x509.VerifyOptions{Roots: roots, CurrentTime: top.NotBefore.Add(time.Second), KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	if err != nil {
		return nil, nil
	}
	for _, p := range paths {
		if !now.After(p[len(p)-1].NotAfter) {
			return nil, nil // a current anchor exists: not this case
		}
	}
	anchor := paths[0][len(paths[0])-1]
	path := append(slices.Clone(chain), paths[0][1:]...)
	return &Finding{attrs.ReasonExpiredRoot, fmt.Sprintf("the only trust path ends at root %s, which expired %s ago (notAfter %s); every client with this trust store fails: serve a chain to a current root", Name(anchor), humanDur(now.Sub(anchor.NotAfter)), anchor.NotAfter.UTC().Format(time.RFC3339))}, path
}

func joinNames(n []string) string {
	switch len(n) {
	case 0:
		return "(unknown)"
	case 1:
		return n[0]
	}
	return fmt.Sprint(n)
}

// timeFindings checks validity periods of the leaf and of every
// intermediate on the path (or, without a path, as presented).
func timeFindings(chain, path []*x509.Certificate, now time.Time, soon time.Duration) []Finding {
	certs := chain
	if len(path) > 0 {
		certs = path
		if len(path) > 1 {
			certs = path[:len(path)-1] // the anchor comes from the trust store
		}
	}
	var out []Finding
	leaf := certs[0]
	switch {
	case now.After(leaf.NotAfter):
		out = append(out, Finding{attrs.ReasonExpiredLeaf, fmt.Sprintf("certificate %s expired %s ago (notAfter %s); every client fails", Name(leaf), humanDur(now.Sub(leaf.NotAfter)), leaf.NotAfter.UTC().Format(time.RFC3339))})
	case now.Before(leaf.NotBefore):
		out = append(out, Finding{attrs.ReasonNotYetValid, fmt.Sprintf("certificate %s is not valid until %s (in %s); check the issuing clock or the deploy", Name(leaf), leaf.NotBefore.UTC().Format(time.RFC3339), humanDur(leaf.NotBefore.Sub(now)))})
	case leaf.NotAfter.Sub(now) < soon:
		out = append(out, Finding{attrs.ReasonExpiringSoon, fmt.Sprintf("certificate %s expires in %s (notAfter %s)", Name(leaf), humanDur(leaf.NotAfter.Sub(now)), leaf.NotAfter.UTC().Format(time.RFC3339))})
	}
	for _, c := range certs[1:] {
		switch {
		case now.After(c.NotAfter):
			out = append(out, Finding{attrs.ReasonExpiredIntermediate, fmt.Sprintf("intermediate %s expired %s ago (notAfter %s); serve a current intermediate", Name(c), humanDur(now.Sub(c.NotAfter)), c.NotAfter.UTC().Format(time.RFC3339))})
		case now.Before(c.NotBefore):
			out = append(out, Finding{attrs.ReasonNotYetValid, fmt.Sprintf("intermediate %s is not valid until %s", Name(c), c.NotBefore.UTC().Format(time.RFC3339))})
		case c.NotAfter.Sub(now) < soon && !hasReason(out, attrs.ReasonExpiringSoon):
			out = append(out, Finding{attrs.ReasonExpiringSoon, fmt.Sprintf("intermediate %s expires in %s", Name(c), humanDur(c.NotAfter.Sub(now)))})
		}
	}
	return out
}

func humanDur(d time.Duration) string {
	if d < 0 {
		d = -d
	}
	switch {
	case d >= 48*time.Hour:
		return fmt.Sprintf("%dd", int(d.Hours()/24))
	case d >= time.Hour:
		return fmt.Sprintf("%dh", int(d.Hours()))
	case d >= time.Minute:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	}
	return d.Round(time.Second).String()
}

// AddFinding adds f to r's findings under the one precedence rule
// (sortFindings): for findings the caller derives after the inspection (a
// `nodes` target's resumption check).
func (r *Result) AddFinding(f Finding) {
	r.Findings = sortFindings(append(r.Findings, f))
}

// sortFindings orders by precedence (attrs.Rank, stable) and drops
// repeated codes (keeping the first detail of each). The only place the
// order of findings is decided.
func sortFindings(fs []Finding) []Finding {
	slices.SortStableFunc(fs, func(a, b Finding) int { return attrs.Rank(a.Reason) - attrs.Rank(b.Reason) })
	out := fs[:0]
	for i, f := range fs {
		if i > 0 && f.Reason == out[len(out)-1].Reason {
			continue
		}
		out = append(out, f)
	}
	return out
}
