package tlsinspect_test

import (
	"context"
	"io"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/certpulse/certpulse/internal/faultlab"
	"github.com/certpulse/certpulse/internal/tlsinspect"
)

// delayProxy forwards TCP connections from a 127.0.0.1 listener to to,
// holding every chunk back by oneWay in each direction (RTT = 2 x oneWay),
// in order.
func delayProxy(tb testing.TB, to string, oneWay time.Duration) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	var wg sync.WaitGroup
	tb.Cleanup(func() { ln.Close(); wg.Wait() })
	pipe := func(dst, src net.Conn) {
		type chunk struct {
			b  []byte
			at time.Time
		}
		q := make(chan chunk, 1024)
		go func() {
			defer close(q)
			for {
				buf := make([]byte, 32<<10)
				n, err := src.Read(buf)
				if n > 0 {
					q <- chunk{buf[:n], time.Now().Add(oneWay)}
				}
				if err != nil {
					return
				}
			}
		}()
		for c := range q {
			time.Sleep(time.Until(c.at))
			if _, err := dst.Write(c.b); err != nil {
				break
			}
		}
		if tc, ok := dst.(*net.TCPConn); ok {
			_ = tc.CloseWrite()
		}
		_, _ = io.Copy(io.Discard, src)
	}
	wg.Add(1)
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			wg.Add(1)
			go func() {
				defer wg.Done()
				defer c.Close()
				s, err := net.Dial("tcp", to)
				if err != nil {
					return
				}
				defer s.Close()
				done := make(chan struct{})
				go func() { pipe(s, c); close(done) }()
				pipe(c, s)
				<-done
			}()
		}
	}()
	return ln.Addr().String()
}

// BenchmarkProbeRTT100ms: probes/s one inspector sustains with 64 probes
// in flight (tlsprobe's default max_concurrency) against the lab's healthy
// endpoint behind a proxy that adds 100 ms of round-trip time. OCSP and
// CRL go to the lab's responders directly.
func BenchmarkProbeRTT100ms(b *testing.B) {
	lab, err := faultlab.Start()
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(lab.Close)
	ep, _ := lab.Endpoint("healthy")
	target := labTarget(lab, ep)
	target.Endpoint = delayProxy(b, ep.Address, 50*time.Millisecond)
	in := tlsinspect.New(testOptions())
	b.Cleanup(in.Close)
	if r := in.Inspect(context.Background(), target)[0]; !r.Success() {
		b.Fatalf("probe through the proxy failed: %+v", r.Findings)
	}
	const slots = 64
	work := make(chan struct{})
	var wg sync.WaitGroup
	var mu sync.Mutex
	var total time.Duration
	failed := 0
	for range slots {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range work {
				r := in.Inspect(context.Background(), target)[0]
				mu.Lock()
				total += r.Total
				if !r.Success() {
					failed++
				}
				mu.Unlock()
			}
		}()
	}
	b.ResetTimer()
	start := time.Now()
	for range b.N {
		work <- struct{}{}
	}
	close(work)
	wg.Wait()
	b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "probes/s")
	b.ReportMetric(total.Seconds()*1000/float64(b.N), "ms/probe")
	if failed > 0 {
		b.Errorf("%d of %d probes failed", failed, b.N)
	}
}
