package useragent

import "testing"

func TestParse(t *testing.T) {
	for _, c := range []struct{ ua, want string }{
		{"", ""},
		{"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) HeadlessChrome/156.0.7500.1 Safari/537.36", "chrome 156"},
		{"Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91", "edge 120"},
		{"Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0", "firefox 128"},
		{"Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.1 Safari/605.1.15", "safari 17"},
		{"Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) CriOS/119.0.6045.169 Mobile/15E148 Safari/604.1", "chrome 119"},
		{"Mozilla/5.0 (Linux; Android 13) AppleWebKit/537.36 (KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36", "samsung 23"},
		{"Mozilla/5.0 AppleWebKit/605.1.15 Safari/605.1.15", "safari"},
		{"curl/8.5.0", "curl 8"},
		{"Chrome/123456789", "chrome"}, // an id, not a version
		{"my-bot/1.0 (+user@example.com)", "other"},
	} {
		if got := Parse(c.ua).String(); got != c.want {
			t.Errorf("Parse(%q) = %q, want %q", c.ua, got, c.want)
		}
	}
}

func TestFamilies(t *testing.T) {
	f := Families()
	if f[len(f)-1] != "other" || len(f) < 10 {
		t.Fatalf("Families() = %v", f)
	}
}
