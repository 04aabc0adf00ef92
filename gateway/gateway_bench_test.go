// gateway_bench_test.go: benchmarks of the gateway's write path, of whole
// PUT and GET requests and of ListObjectsV2 page assembly, in process.
//
// Goal: know how close a PUT body's chunk-and-hash pass comes to the bare
// cost of its two digests (SHA-256 for the blob id, MD5 for the ETag) on
// this machine, and what a whole request costs on the server side, so the
// end-to-end `ringstore bench` figures and profiles can be attributed.
//
// Method: the server is wired the way cmd/ringstore wires a fresh
// single-node server (one-member cluster layout with the default partitions
// and replicas, ring placement for records and chunks, the root-key lookup,
// the production defaults: 1 MiB chunks, 64 KiB inline, 4 chunks in flight,
// 8 shards) with its chunk store in b.TempDir(). The index is on pebble's
// in-memory filesystem ("memidx", no fsync: the CPU cost alone) or on the
// real filesystem ("diskidx", synced WAL writes as in production).
//
//   - BenchmarkIngest feeds 32 MiB through Server.ingest and, as the
//     reference, runs SHA-256 (per 1 MiB chunk) and MD5 (streamed) over the
//     same bytes on one goroutine and on two. "dedup" re-sends the same
//     bytes, so after the first op every chunk is already stored and only
//     the chunker, the hashes and the Ref records remain; "fresh" changes
//     every chunk each op, so chunk files are written and fsynced too;
//     "sealed" seals every chunk under a data key (SSE) first, which makes
//     every chunk new.
//   - BenchmarkPutObject / BenchmarkGetObject send signed requests through
//     Server.ServeHTTP. Requests are signed as `ringstore bench` signs them
//     (UNSIGNED-PAYLOAD); PUTs sign inside the loop (see BenchmarkSignRequest
//     for that client-side share), GETs reuse requests signed in setup. Every
//     PUT writes a new key with new bytes. Parallel cases run 32 goroutines
//     (b.SetParallelism(16) on 2 cores), the standard bench concurrency. The
//     response goes to a discarding ResponseWriter, so no recorder buffers
//     count against the server.
//   - BenchmarkListObjectsV2 serves 1000-key pages of a bucket of 10,000
//     single-version 1 KiB objects (written straight into the index, which
//     keeps setup fast), cycling through the 10 pages with pre-signed
//     requests.
package gateway

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ringstore/ringstore/auth"
	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/sse"
	"github.com/ringstore/ringstore/ring"
)

var benchCreds = auth.Credentials{AccessKeyID: "RSBENCH0000000000000", SecretAccessKey: "benchsecretbenchsecretbenchsecret0000000"}

type benchServer struct {
	s     *Server
	ix    *index.Index
	store *index.Store
}

// newBenchServer builds a single-node server as cmd/ringstore does, with
// the index on disk (diskIndex) or in memory.
func newBenchServer(tb testing.TB, diskIndex bool, mutate ...func(*Config)) *benchServer {
	tb.Helper()
	dir := tb.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	opts := index.StoreOptions{Logger: quiet}
	if !diskIndex {
		opts.FS = vfs.NewMem()
	}
	store, err := index.OpenStore(filepath.Join(dir, "index"), opts)
	if err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { store.Close() })
	bs, err := blobs.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		tb.Fatal(err)
	}
	cl, err := ring.NewClusterLayout(ring.Member{ID: "n1", Weight: 1}, ring.DefaultPartitions, 3)
	if err != nil {
		tb.Fatal(err)
	}
	rg, err := cl.Ring()
	if err != nil {
		tb.Fatal(err)
	}
	ipl, bpl := index.RingPlacement(rg), blobs.RingPlacement(rg)
	ix := index.New(index.Config{Self: "n1", Placement: func() index.Placement { return ipl }, Store: store, N: cl.Layout.Replicas, Logger: quiet})
	chunks := blobs.NewReplicated(blobs.ReplicatedConfig{Self: "n1", Local: bs, Placement: func() blobs.Placement { return bpl }, Logger: quiet}, nil)
	cfg := Config{
		Index: ix, Chunks: chunks, Logger: quiet,
		Auth: &auth.Verifier{Region: "us-east-1", Lookup: KeyLookup(ix, benchCreds.AccessKeyID, benchCreds.SecretAccessKey, 30*time.Second)},
	}
	for _, m := range mutate {
		m(&cfg)
	}
	return &benchServer{s: New(cfg), ix: ix, store: store}
}

// benchRequest returns a request signed as `ringstore bench` signs it.
func benchRequest(method, target string, body []byte) *http.Request {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r := httptest.NewRequest(method, "http://127.0.0.1:9000"+target, rd)
	auth.SignRequest(r, benchCreds, "us-east-1", time.Now(), auth.ModeUnsignedPayload)
	return r
}

// discardWriter is a ResponseWriter that keeps the status and counts the
// body bytes.
type discardWriter struct {
	h    http.Header
	code int
	n    int64
}

func (w *discardWriter) Header() http.Header { return w.h }
func (w *discardWriter) WriteHeader(code int) {
	if w.code == 0 {
		w.code = code
	}
}

func (w *discardWriter) Write(p []byte) (int, error) {
	if w.code == 0 {
		w.code = http.StatusOK
	}
	w.n += int64(len(p))
	return len(p), nil
}

func (w *discardWriter) reset() {
	clear(w.h)
	if w.h == nil {
		w.h = http.Header{}
	}
	w.code, w.n = 0, 0
}

// serve runs one request; it fails the benchmark unless the status is
// want.
func (bs *benchServer) serve(tb testing.TB, w *discardWriter, r *http.Request, want int) {
	w.reset()
	bs.s.ServeHTTP(w, r)
	if w.code != want {
		tb.Fatalf("%s %s = %d; want %d", r.Method, r.URL, w.code, want)
	}
}

func (bs *benchServer) createBucket(tb testing.TB, name string) *index.Bucket {
	tb.Helper()
	bs.serve(tb, &discardWriter{}, benchRequest("PUT", "/"+name, nil), 200)
	b, err := bs.ix.GetBucket(context.Background(), name)
	if err != nil || !b.Live() {
		tb.Fatal(b, err)
	}
	return b
}

func randomBytes(seed uint64, n int) []byte {
	b := make([]byte, n)
	r := rand.New(rand.NewPCG(seed, 11))
	for i := 0; i+8 <= n; i += 8 {
		binary.LittleEndian.PutUint64(b[i:], r.Uint64())
	}
	return b
}

// stamp makes data unique to op: every chunk-sized piece gets op in its
// first 8 bytes, so no chunk repeats across ops.
func stamp(data []byte, op uint64, chunk int) {
	for off := 0; off+8 <= len(data); off += chunk {
		binary.BigEndian.PutUint64(data[off:], op)
	}
}

func BenchmarkIngest(b *testing.B) {
	const size, chunk = 32 << 20, 1 << 20
	data := randomBytes(1, size)
	b.Run("ref-sha256+md5/1goroutine", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			md := md5.New()
			for off := 0; off < size; off += chunk {
				_ = sha256.Sum256(data[off : off+chunk])
				md.Write(data[off : off+chunk])
			}
			_ = md.Sum(nil)
		}
	})
	b.Run("ref-sha256+md5/2goroutines", func(b *testing.B) {
		b.ReportAllocs()
		b.SetBytes(size)
		for b.Loop() {
			var wg sync.WaitGroup
			wg.Add(2)
			go func() {
				defer wg.Done()
				for off := 0; off < size; off += chunk {
					_ = sha256.Sum256(data[off : off+chunk])
				}
			}()
			go func() {
				defer wg.Done()
				md := md5.New()
				md.Write(data)
				_ = md.Sum(nil)
			}()
			wg.Wait()
		}
	})
	ingest := func(b *testing.B, fresh bool, alg string, seal *sse.Sealer) {
		bs := newBenchServer(b, false)
		bkt := &index.Bucket{Name: "bench", ID: index.BucketID{1}, Created: 1, Shards: 8}
		body := bytes.Clone(data)
		var spec *checksumSpec
		if alg != "" {
			spec = &checksumSpec{alg: alg}
		}
		ctx := context.Background()
		b.ReportAllocs()
		b.SetBytes(size)
		op := uint64(0)
		for b.Loop() {
			op++
			if fresh {
				stamp(body, op, chunk)
			}
			keep := bs.s.keepRefs(index.ObjectHolder(bkt, "bench/obj", index.NewWriteID()))
			out, err := bs.s.ingest(ctx, bytes.NewReader(body), size, maxPutBytes, keep, spec, true, seal)
			keep.stop()
			if err != nil || out.size != size || (seal == nil && len(out.chunks) != size/chunk) {
				b.Fatal(out, err)
			}
		}
	}
	b.Run("ingest/dedup", func(b *testing.B) { ingest(b, false, "", nil) })
	b.Run("ingest/dedup+crc32", func(b *testing.B) { ingest(b, false, "CRC32", nil) })
	b.Run("ingest/fresh", func(b *testing.B) { ingest(b, true, "", nil) })
	// Sealed chunks are always fresh: every one has its own nonce.
	b.Run("ingest/sealed", func(b *testing.B) { ingest(b, false, "", sse.NewSealer(sse.NewDataKey())) })
}

// BenchmarkSignRequest is the client-side share of the PUT benchmarks:
// building and signing one request.
func BenchmarkSignRequest(b *testing.B) {
	body := randomBytes(2, 4<<10)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		_ = benchRequest("PUT", fmt.Sprintf("/bench/obj-%010d", i), body)
	}
}

var benchSizes = []struct {
	name string
	size int
}{{"4KiB", 4 << 10}, {"1MiB", 1 << 20}}

func BenchmarkPutObject(b *testing.B) {
	for _, idx := range []string{"memidx", "diskidx"} {
		for _, sz := range benchSizes {
			b.Run(idx+"/"+sz.name+"/serial", func(b *testing.B) {
				bs := newBenchServer(b, idx == "diskidx")
				bs.createBucket(b, "bench")
				body := randomBytes(3, sz.size)
				w := &discardWriter{}
				b.ReportAllocs()
				b.SetBytes(int64(sz.size))
				i := uint64(0)
				for b.Loop() {
					i++
					stamp(body, i, 1<<20)
					bs.serve(b, w, benchRequest("PUT", fmt.Sprintf("/bench/obj-%010d", i), body), 200)
				}
			})
			b.Run(idx+"/"+sz.name+"/parallel32", func(b *testing.B) {
				bs := newBenchServer(b, idx == "diskidx")
				bs.createBucket(b, "bench")
				var n atomic.Uint64
				b.ReportAllocs()
				b.SetBytes(int64(sz.size))
				b.SetParallelism(16)
				b.RunParallel(func(pb *testing.PB) {
					body := randomBytes(n.Add(1)<<32, sz.size)
					w := &discardWriter{}
					for pb.Next() {
						i := n.Add(1)
						stamp(body, i, 1<<20)
						r := benchRequest("PUT", fmt.Sprintf("/bench/obj-%010d", i), body)
						w.reset()
						bs.s.ServeHTTP(w, r)
						if w.code != 200 {
							b.Errorf("PUT = %d", w.code)
							return
						}
					}
				})
			})
		}
	}
}

// prefillObjects PUTs n objects of size through the server and returns
// their keys.
func (bs *benchServer) prefillObjects(tb testing.TB, bucket string, n, size int) []string {
	tb.Helper()
	keys := make([]string, n)
	body := randomBytes(4, size)
	w := &discardWriter{}
	for i := range keys {
		keys[i] = fmt.Sprintf("obj-%010d", i)
		stamp(body, uint64(i), 1<<20)
		bs.serve(tb, w, benchRequest("PUT", "/"+bucket+"/"+keys[i], body), 200)
	}
	return keys
}

func BenchmarkGetObject(b *testing.B) {
	for _, sz := range benchSizes {
		n := 1000
		if sz.size > DefaultInlineMax {
			n = 64
		}
		bs := newBenchServer(b, true)
		bs.createBucket(b, "bench")
		keys := bs.prefillObjects(b, "bench", n, sz.size)
		signAll := func() []*http.Request {
			reqs := make([]*http.Request, len(keys))
			for i, k := range keys {
				reqs[i] = benchRequest("GET", "/bench/"+k, nil)
			}
			return reqs
		}
		get := func(w *discardWriter, proto *http.Request) error {
			r := *proto // the server replaces the body and context of its copy
			w.reset()
			bs.s.ServeHTTP(w, &r)
			if w.code != 200 || w.n != int64(sz.size) {
				return fmt.Errorf("GET = %d, %d bytes", w.code, w.n)
			}
			return nil
		}
		b.Run(sz.name+"/serial", func(b *testing.B) {
			reqs := signAll()
			w := &discardWriter{}
			r := rand.New(rand.NewPCG(1, 2))
			b.ReportAllocs()
			b.SetBytes(int64(sz.size))
			for b.Loop() {
				if err := get(w, reqs[r.IntN(len(reqs))]); err != nil {
					b.Fatal(err)
				}
			}
		})
		b.Run(sz.name+"/parallel32", func(b *testing.B) {
			// The server only reads a request's header and URL, so the
			// goroutines share the signed requests (each serves its own
			// shallow copy).
			reqs := signAll()
			var seed atomic.Uint64
			b.ReportAllocs()
			b.SetBytes(int64(sz.size))
			b.SetParallelism(16)
			b.RunParallel(func(pb *testing.PB) {
				w := &discardWriter{}
				r := rand.New(rand.NewPCG(seed.Add(1), 2))
				for pb.Next() {
					if err := get(w, reqs[r.IntN(len(reqs))]); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func BenchmarkListObjectsV2(b *testing.B) {
	const n, pageKeys = 10_000, 1000
	bs := newBenchServer(b, false)
	bkt := bs.createBucket(b, "bench")
	ctx := context.Background()
	inline := randomBytes(5, 1<<10)
	sum := md5.Sum(inline)
	var recs []index.Record
	for i := range n {
		v := &index.Version{
			ID: "null", Timestamp: bs.ix.Clock().Now(), WriteID: index.NewWriteID(), Size: int64(len(inline)),
			ETag: hex.EncodeToString(sum[:]), Owner: benchCreds.AccessKeyID, Inline: inline,
			Headers: []index.KV{{Name: "content-type", Value: "application/octet-stream"}},
		}
		recs = append(recs, index.ObjectRecord(bkt, fmt.Sprintf("run0/obj-%010d", i), v))
		if len(recs) == 1000 {
			if err := bs.ix.Put(ctx, recs...); err != nil {
				b.Fatal(err)
			}
			recs = recs[:0]
		}
	}
	// Walk once to learn the continuation tokens, then pre-sign each page.
	var targets []string
	target := fmt.Sprintf("/bench?list-type=2&max-keys=%d&prefix=run0%%2F", pageKeys)
	for {
		targets = append(targets, target)
		w := httptest.NewRecorder()
		bs.s.ServeHTTP(w, benchRequest("GET", target, nil))
		if w.Code != 200 {
			b.Fatalf("list = %d %s", w.Code, w.Body)
		}
		body := w.Body.String()
		i := strings.Index(body, "<NextContinuationToken>")
		if i < 0 {
			break
		}
		tok := body[i+len("<NextContinuationToken>"):]
		tok = tok[:strings.Index(tok, "<")]
		target = fmt.Sprintf("/bench?list-type=2&max-keys=%d&prefix=run0%%2F&continuation-token=%s", pageKeys, tok)
	}
	if len(targets) != n/pageKeys {
		b.Fatalf("%d pages; want %d", len(targets), n/pageKeys)
	}
	reqs := make([]*http.Request, len(targets))
	for i, t := range targets {
		reqs[i] = benchRequest("GET", t, nil)
	}
	b.Run("page1000", func(b *testing.B) {
		w := &discardWriter{}
		b.ReportAllocs()
		i := 0
		var bytesOut int64
		for b.Loop() {
			r := *reqs[i%len(reqs)]
			i++
			bs.serve(b, w, &r, 200)
			bytesOut += w.n
		}
		b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/pageKeys, "ns/key")
		b.ReportMetric(float64(bytesOut)/float64(b.N), "respB/op")
	})
}
