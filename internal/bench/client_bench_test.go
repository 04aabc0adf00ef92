// Goal: keep the client's own cost per request visible (CPU and
// allocations), since on a small machine it competes with the server.
// Method: Go benchmarks of one GET, HEAD and PUT of 4 KiB through the real
// Client against a bare in-process HTTP server; run with -benchmem.
package bench

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/ringstore/ringstore/auth"
)

func benchClient(b *testing.B) *Client {
	b.Helper()
	body := make([]byte, 4096)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		switch r.Method {
		case http.MethodGet:
			w.Header().Set("Content-Length", "4096")
			_, _ = w.Write(body)
		case http.MethodHead:
			w.Header().Set("Content-Length", "4096")
		}
	}))
	b.Cleanup(srv.Close)
	c, err := NewClient([]string{srv.URL}, auth.Credentials{AccessKeyID: "AK", SecretAccessKey: "SK"}, "us-east-1", 4)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(c.Close)
	return c
}

func BenchmarkClientGet4KiB(b *testing.B) {
	c := benchClient(b)
	buf := make([]byte, 64<<10)
	v := NewVerifier(64 << 10)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		v.Reset(1, "p/obj-0000000001", 4096)
		if _, err := c.GetObject(ctx, "bucket", "p/obj-0000000001", 4096, buf, nil); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientHead(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := c.HeadObject(ctx, "bucket", "p/obj-0000000001"); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkClientPut4KiB(b *testing.B) {
	c := benchClient(b)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if err := c.PutObject(ctx, "bucket", "p/obj-0000000001", NewContent(1, "p/obj-0000000001", 4096), 4096); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkContent(b *testing.B) {
	buf := make([]byte, 64<<10)
	b.SetBytes(int64(len(buf)))
	c := NewContent(1, "k", 1<<62)
	for b.Loop() {
		_, _ = c.Read(buf)
	}
}
