// Package useragent reduces a User-Agent header to a client family and its
// major version: what certpulse keeps of a user agent (a full header is
// close to identifying its user).
package useragent // import "github.com/certpulse/certpulse/internal/useragent"

import "strings"

// Client is a user agent reduced to a family and a major version.
type Client struct {
	// Family is lower-case: chrome, firefox, safari, edge, opera, curl,
	// wget, go, python, okhttp, java, openssl, or "other" (and "" for an
	// empty user agent).
	Family string
	// Major is the family's major version ("156"), "" when not known.
	Major string
}

// String is "chrome 156" (or just the family).
func (c Client) String() string {
	if c.Major == "" {
		return c.Family
	}
	return c.Family + " " + c.Major
}

// families: most specific first (Edge and Opera say Chrome too, Chrome
// says Safari, Safari's version is in Version/). version is the token the
// major version follows, when it is not token itself.
var families = []struct{ token, family, version string }{
	{"Edg/", "edge", ""}, {"EdgA/", "edge", ""}, {"EdgiOS/", "edge", ""}, {"OPR/", "opera", ""},
	{"SamsungBrowser/", "samsung", ""}, {"Firefox/", "firefox", ""}, {"FxiOS/", "firefox", ""},
	{"Chrome/", "chrome", ""}, {"CriOS/", "chrome", ""}, {"Safari/", "safari", "Version/"},
	{"curl/", "curl", ""}, {"Wget/", "wget", ""}, {"Go-http-client/", "go", ""},
	{"python-requests/", "python", ""}, {"python-urllib", "python", ""}, {"aiohttp/", "python", ""},
	{"okhttp/", "okhttp", ""}, {"Java/", "java", ""}, {"Apache-HttpClient/", "java", ""},
	{"OpenSSL", "openssl", ""},
}

// Families lists every family Parse returns, "other" last.
func Families() []string {
	var out []string
	seen := map[string]bool{}
	for _, f := range families {
		if !seen[f.family] {
			seen[f.family] = true
			out = append(out, f.family)
		}
	}
	return append(out, "other")
}

// Parse reduces ua to its family and major version.
func Parse(ua string) Client {
	if ua == "" {
		return Client{}
	}
	for _, f := range families {
		i := strings.Index(ua, f.token)
		if i < 0 {
			continue
		}
		c := Client{Family: f.family}
		v := ua[i+len(f.token):]
		if f.version != "" {
			if j := strings.Index(ua, f.version); j >= 0 {
				v = ua[j+len(f.version):]
			} else {
				v = ""
			}
		}
		c.Major = major(v)
		return c
	}
	return Client{Family: "other"}
}

// major: the leading digits of v (at most 4: a version, not an id).
func major(v string) string {
	n := 0
	for n < len(v) && n < 5 && v[n] >= '0' && v[n] <= '9' {
		n++
	}
	if n == 0 || n > 4 {
		return ""
	}
	return v[:n]
}
