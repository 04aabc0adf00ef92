// serve_bench_test.go: a profiling harness, not a test of behaviour.
//
// Goal: CPU profiles of a real single-node server under `ringstore bench`
// load. The ringstore binary has no pprof endpoint and this work must not
// change product code, so the harness runs the same server in a test
// binary and adds one.
//
// Method: TestServeForProfiling wires a single-node server exactly as
// cmd/ringstore's runServer does for a node without --gossip-addr, through
// the same exported API (pebble index on disk with the default options,
// chunk store on disk, a one-member cluster layout with the default
// partitions and replicas, ring placement, the root key from
// RINGSTORE_ACCESS_KEY_ID / RINGSTORE_SECRET_ACCESS_KEY through
// gateway.KeyLookup, the same http.Server settings and listener,
// info-level logging), serves S3 on $RINGSTORE_BENCH_SERVE and
// net/http/pprof on $RINGSTORE_BENCH_PPROF, and runs until SIGINT/SIGTERM or
// $RINGSTORE_BENCH_SERVE_FOR (default 1h). Load comes from the unmodified
// `ringstore bench` in another process; profiles are taken with
// `go tool pprof -seconds 5 http://$RINGSTORE_BENCH_PPROF/debug/pprof/profile`.
// Without RINGSTORE_BENCH_SERVE the test skips, so `go test ./...` is
// unaffected. Background garbage collection (hourly in the server) and the
// cluster-only parts are not started.
//
//	go test -c -o /tmp/gwbench ./gateway
//	RINGSTORE_BENCH_SERVE=127.0.0.1:9100 RINGSTORE_BENCH_PPROF=127.0.0.1:9101 \
//	  RINGSTORE_ACCESS_KEY_ID=... RINGSTORE_SECRET_ACCESS_KEY=... \
//	  /tmp/gwbench -test.run TestServeForProfiling -test.timeout 0 -test.v
package gateway_test

import (
	"context"
	"errors"
	"log/slog"
	"net"
	"net/http"
	_ "net/http/pprof" // the harness's whole point: /debug/pprof on DefaultServeMux
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ringstore/ringstore/auth"
	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/gateway"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/ring"
)

func TestServeForProfiling(t *testing.T) {
	addr, pprofAddr := os.Getenv("RINGSTORE_BENCH_SERVE"), os.Getenv("RINGSTORE_BENCH_PPROF")
	if addr == "" || pprofAddr == "" {
		t.Skip("profiling harness: set RINGSTORE_BENCH_SERVE and RINGSTORE_BENCH_PPROF to run")
	}
	id, secret := os.Getenv("RINGSTORE_ACCESS_KEY_ID"), os.Getenv("RINGSTORE_SECRET_ACCESS_KEY")
	if id == "" || secret == "" {
		t.Fatal("set RINGSTORE_ACCESS_KEY_ID and RINGSTORE_SECRET_ACCESS_KEY")
	}
	serveFor := time.Hour
	if v := os.Getenv("RINGSTORE_BENCH_SERVE_FOR"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatal(err)
		}
		serveFor = d
	}
	data := os.Getenv("RINGSTORE_BENCH_DATA")
	if data == "" {
		data = t.TempDir()
	}
	log := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelInfo}))

	store, err := index.OpenStore(filepath.Join(data, "index"), index.StoreOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	chunkStore, err := blobs.Open(filepath.Join(data, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	cl, err := ring.NewClusterLayout(ring.Member{ID: "harness", Weight: 1}, ring.DefaultPartitions, 3)
	if err != nil {
		t.Fatal(err)
	}
	rg, err := cl.Ring()
	if err != nil {
		t.Fatal(err)
	}
	ipl, bpl := index.RingPlacement(rg), blobs.RingPlacement(rg)
	ix := index.New(index.Config{
		Self: "harness", Placement: func() index.Placement { return ipl }, Store: store,
		Clock: index.NewClock(nil), N: cl.Layout.Replicas, Logger: log,
	})
	chunks := blobs.NewReplicated(blobs.ReplicatedConfig{
		Self: "harness", Local: chunkStore, Placement: func() blobs.Placement { return bpl }, Logger: log,
	}, nil)
	gw := gateway.New(gateway.Config{
		Region: "us-east-1", Index: ix, Chunks: chunks, Logger: log,
		Auth: &auth.Verifier{Region: "us-east-1", Lookup: gateway.KeyLookup(ix, id, secret, 30*time.Second)},
	})

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, serveFor)
	defer cancel()
	serve := func(addr string, h http.Handler, wrap func(net.Listener) net.Listener) *http.Server {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		ln = wrap(ln)
		srv := &http.Server{
			Handler: h, ReadHeaderTimeout: 30 * time.Second, IdleTimeout: 2 * time.Minute,
			MaxHeaderBytes: 64 << 10, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug),
		}
		go func() {
			if err := srv.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				t.Error(err)
			}
		}()
		t.Logf("serving on %s", ln.Addr())
		return srv
	}
	s3 := serve(addr, gw, gw.Listener)
	prof := serve(pprofAddr, http.DefaultServeMux, func(ln net.Listener) net.Listener { return ln })
	<-ctx.Done()
	shutdown, cancelShutdown := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancelShutdown()
	_ = prof.Shutdown(shutdown)
	_ = s3.Shutdown(shutdown)
}
