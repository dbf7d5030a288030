package listen

import "testing"

func TestLoopbackOnly(t *testing.T) {
	for ep, want := range map[string]bool{
		"127.0.0.1:4381": true, "localhost:4380": true, "[::1]:4380": true, "127.3.4.5:1": true,
		"0.0.0.0:4381": false, ":4381": false, "[::]:4380": false, "10.1.2.3:4380": false, "collector.example.com:4380": false, "garbage": false,
	} {
		if got := LoopbackOnly(ep); got != want {
			t.Errorf("LoopbackOnly(%q) = %v, want %v", ep, got, want)
		}
	}
}
