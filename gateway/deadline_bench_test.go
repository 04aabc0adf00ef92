// deadline_bench_test.go: what the progress timeouts cost.
//
// Goal: the price of the read and write deadlines, on small requests
// (where one deadline update per request is the largest share) and on
// 1 MiB GETs.
//
// Method: the bench server (index in memory) behind a real http.Server
// on loopback with cmd/ringstore's settings and Server.Listener, driven
// by net/http clients
// over keep-alive connections, with the timeouts off (ProgressTimeout -1)
// and on (the default). Requests are signed as `ringstore bench` signs
// them (UNSIGNED-PAYLOAD), each op signing its own. The client runs on
// the same cores, so its CPU dilutes the difference; a CPU profile
// (-cpuprofile) gives the deadline calls' own share of the process.
package gateway

import (
	"bytes"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringstore/ringstore/auth"
)

func BenchmarkServeLoopback(b *testing.B) {
	for _, mode := range []struct {
		name    string
		timeout time.Duration
	}{{"timeouts-off", -1}, {"timeouts-on", 0}} {
		for _, tc := range []struct {
			op       string
			size     int
			parallel bool
		}{
			{"PUT", 4 << 10, false}, {"PUT", 4 << 10, true},
			{"GET", 4 << 10, false}, {"GET", 4 << 10, true},
			{"GET", 1 << 20, true},
		} {
			name := fmt.Sprintf("%s/%s/%dKiB/serial", mode.name, tc.op, tc.size>>10)
			if tc.parallel {
				name = name[:len(name)-len("serial")] + "parallel32"
			}
			b.Run(name, func(b *testing.B) {
				bs := newBenchServer(b, false, func(c *Config) { c.ProgressTimeout = mode.timeout })
				bs.createBucket(b, "bench")
				var keys []string
				if tc.op == "GET" {
					n := 1000
					if tc.size > DefaultInlineMax {
						n = 64
					}
					keys = bs.prefillObjects(b, "bench", n, tc.size)
				}
				base := serveLoopback(b, bs.s)
				client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64, DisableCompression: true}}
				b.Cleanup(client.CloseIdleConnections)
				var seq atomic.Uint64
				do := func(body []byte) error {
					i := seq.Add(1)
					var r *http.Request
					if tc.op == "PUT" {
						stamp(body, i, 1<<20)
						r, _ = http.NewRequest("PUT", fmt.Sprintf("%s/bench/put-%010d", base, i), bytes.NewReader(body))
					} else {
						r, _ = http.NewRequest("GET", base+"/bench/"+keys[i%uint64(len(keys))], nil)
					}
					auth.SignRequest(r, benchCreds, "us-east-1", time.Now(), auth.ModeUnsignedPayload)
					resp, err := client.Do(r)
					if err != nil {
						return err
					}
					n, _ := io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					if resp.StatusCode != 200 || (tc.op == "GET" && n != int64(tc.size)) {
						return fmt.Errorf("%s = %d, %d bytes", tc.op, resp.StatusCode, n)
					}
					return nil
				}
				b.ReportAllocs()
				b.SetBytes(int64(tc.size))
				if !tc.parallel {
					body := randomBytes(7, tc.size)
					for b.Loop() {
						if err := do(body); err != nil {
							b.Fatal(err)
						}
					}
					return
				}
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					body := randomBytes(seq.Add(1)<<32, tc.size)
					for pb.Next() {
						if err := do(body); err != nil {
							b.Error(err)
							return
						}
					}
				})
			})
		}
	}
}

// serveLoopback serves s on a loopback port the way cmd/ringstore serves
// S3 and returns its base URL.
func serveLoopback(tb testing.TB, s *Server) string {
	tb.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		tb.Fatal(err)
	}
	srv := &http.Server{
		Handler: s, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute, MaxHeaderBytes: 64 << 10,
		ErrorLog: slog.NewLogLogger(slog.New(slog.NewTextHandler(io.Discard, nil)).Handler(), slog.LevelDebug),
	}
	go func() { _ = srv.Serve(s.Listener(ln)) }()
	tb.Cleanup(func() { _ = srv.Close() })
	return "http://" + ln.Addr().String()
}
