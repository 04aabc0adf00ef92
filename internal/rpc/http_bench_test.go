// http_bench_test.go measures the cost of one authenticated RPC round
// trip over loopback (client and server in this process), for small and
// 4 KiB bodies: the per-message overhead every replicated request pays.
package rpc

import (
	"context"
	"io"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"
)

func BenchmarkHTTPRoundTrip(b *testing.B) {
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	addrs := map[string]string{}
	resolve := func(n string) (string, bool) { a, ok := addrs[n]; return a, ok }
	mux := NewMux()
	mux.Handle("echo", func(_ context.Context, _ string, body []byte) ([]byte, error) { return body, nil })
	srv := NewHTTP("b", []byte("k"), resolve, mux, log)
	ts := httptest.NewServer(srv)
	defer ts.Close()
	addrs["b"] = strings.TrimPrefix(ts.URL, "http://")
	cli := NewHTTP("a", []byte("k"), resolve, NewMux(), log)
	for _, size := range []int{64, 4096} {
		body := make([]byte, size)
		b.Run(strings.Repeat("x", 0)+map[int]string{64: "64B", 4096: "4KiB"}[size], func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := cli.Call(context.Background(), "b", "echo", body); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}
