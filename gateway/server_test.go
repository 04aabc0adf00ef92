// server_test.go holds the in-process test server used by the gateway's
// unit tests: a real index on pebble's in-memory filesystem, a real chunk
// store in a temp dir, real SigV4 verification, driven through
// httptest with requests signed by package auth.
package gateway

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ringstore/ringstore/auth"
	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/ring"
)

var testCreds = auth.Credentials{AccessKeyID: "AKTEST", SecretAccessKey: "secret/test/key"}

type testServer struct {
	t     *testing.T
	s     *Server
	ix    *index.Index
	blobs *blobs.Store
}

func newTestServer(t *testing.T, mutate ...func(*Config)) *testServer {
	t.Helper()
	store, err := index.OpenStore("db", index.StoreOptions{FS: vfs.NewMem(), CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	bs, err := blobs.Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	layout := ring.SingleNode("n1", "", 16)
	rg, err := ring.NewRing(layout, ring.Assign(nil, layout))
	if err != nil {
		t.Fatal(err)
	}
	pl := index.RingPlacement(rg)
	ix := index.New(index.Config{Self: "n1", Placement: func() index.Placement { return pl }, Store: store, N: 1})
	chunks := blobs.NewReplicated(blobs.ReplicatedConfig{Self: "n1", Local: bs, Placement: func() blobs.Placement { return chunkPlacement{} }}, nil)
	cfg := Config{
		Index: ix, Chunks: chunks, Logger: slog.New(slog.NewTextHandler(io.Discard, nil)),
		Auth: &auth.Verifier{Region: "us-east-1", Lookup: func(id string) (string, bool) {
			return testCreds.SecretAccessKey, id == testCreds.AccessKeyID
		}},
		ChunkBytes: 64 << 10, InlineMax: 1 << 10,
	}
	for _, m := range mutate {
		m(&cfg)
	}
	ts := &testServer{t: t, s: New(cfg), ix: ix, blobs: bs}
	t.Cleanup(func() {
		if n := ts.s.bufs.out.Load(); n != 0 {
			t.Errorf("%d chunk buffers taken and not returned (or returned twice)", n)
		}
	})
	return ts
}

// do sends a signed request and returns the recorded response.
func (ts *testServer) do(method, target string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	ts.t.Helper()
	r := httptest.NewRequest(method, "http://s3.test"+target, bytes.NewReader(body))
	// A client on this machine, as the store's own clients are by default
	// (SSE-C keys are taken over plain HTTP only from loopback).
	r.RemoteAddr = "127.0.0.1:40000"
	for i := 0; i+1 < len(hdr); i += 2 {
		r.Header.Set(hdr[i], hdr[i+1])
	}
	signTestRequest(r, body)
	w := httptest.NewRecorder()
	ts.s.ServeHTTP(w, r)
	return w
}

// signTestRequest signs r, whose body is body, with the test
// credentials.
func signTestRequest(r *http.Request, body []byte) {
	sum := sha256.Sum256(body)
	auth.SignRequest(r, testCreds, "us-east-1", time.Now(), hex.EncodeToString(sum[:]))
}

// must sends a request that must answer with status.
func (ts *testServer) must(status int, method, target string, body []byte, hdr ...string) *httptest.ResponseRecorder {
	ts.t.Helper()
	w := ts.do(method, target, body, hdr...)
	if w.Code != status {
		ts.t.Fatalf("%s %s = %d %s; want %d", method, target, w.Code, w.Body.String(), status)
	}
	return w
}

// errCode returns the <Code> of an error response.
func errCode(w *httptest.ResponseRecorder) string {
	b := w.Body.String()
	i := strings.Index(b, "<Code>")
	j := strings.Index(b, "</Code>")
	if i < 0 || j < i {
		return w.Header().Get("x-amz-error-code")
	}
	return b[i+6 : j]
}

func TestRequestIDOnEveryResponse(t *testing.T) {
	ts := newTestServer(t)
	for _, w := range []*httptest.ResponseRecorder{
		ts.do("GET", "/", nil),
		ts.do("GET", "/nosuchbucket/x", nil),
		ts.do("PUT", "/B", nil),
	} {
		if w.Header().Get("x-amz-request-id") == "" || w.Header().Get("x-amz-id-2") == "" {
			t.Fatalf("response %d lacks request ids: %v", w.Code, w.Header())
		}
	}
}

func TestAnonymousDeniedRevealsNothing(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/secretbucket", nil)
	r := httptest.NewRequest("GET", "http://s3.test/secretbucket/secretkey", nil)
	w := httptest.NewRecorder()
	ts.s.ServeHTTP(w, r)
	if w.Code != 403 || errCode(w) != "AccessDenied" {
		t.Fatalf("anonymous GET = %d %s; want 403 AccessDenied", w.Code, w.Body)
	}
	if strings.Contains(w.Body.String(), "secret") {
		t.Fatalf("error to an anonymous caller names the resource: %s", w.Body)
	}
}

func TestObjectLifecycle(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/bkt", nil)
	if w := ts.do("PUT", "/bkt", nil); errCode(w) != "BucketAlreadyOwnedByYou" {
		t.Fatalf("second create = %s", w.Body)
	}
	for _, size := range []int{0, 10, 1 << 10, 1<<10 + 1, 64 << 10, 300 << 10} {
		data := bytes.Repeat([]byte{byte(size)}, size)
		key := "/bkt/obj-" + strings.Repeat("x", size%7)
		w := ts.must(200, "PUT", key, data, "Content-Type", "text/plain", "x-amz-meta-Color", "blue")
		etag := w.Header().Get("ETag")
		w = ts.must(200, "GET", key, nil)
		if !bytes.Equal(w.Body.Bytes(), data) {
			t.Fatalf("size %d: GET returned %d different bytes", size, w.Body.Len())
		}
		if w.Header().Get("ETag") != etag || w.Header().Get("Content-Type") != "text/plain" || metaHeader(w.Header(), "color") != "blue" {
			t.Fatalf("size %d: headers %v", size, w.Header())
		}
	}
	if w := ts.do("DELETE", "/bkt", nil); errCode(w) != "BucketNotEmpty" {
		t.Fatalf("delete non-empty bucket = %s", w.Body)
	}
	ts.must(204, "DELETE", "/bkt/obj-", nil)
	ts.must(204, "DELETE", "/bkt/obj-", nil) // idempotent
	if w := ts.do("GET", "/bkt/obj-", nil); w.Code != 404 || errCode(w) != "NoSuchKey" {
		t.Fatalf("GET deleted = %d %s", w.Code, w.Body)
	}
}

func TestBadDigestStoresNothing(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/bkt", nil)
	big := bytes.Repeat([]byte("z"), 200<<10)
	w := ts.do("PUT", "/bkt/k", big, "Content-MD5", "1B2M2Y8AsgTpgAmY7PhCfg==")
	if w.Code != 400 || errCode(w) != "BadDigest" {
		t.Fatalf("PUT with wrong Content-MD5 = %d %s", w.Code, w.Body)
	}
	if w := ts.do("HEAD", "/bkt/k", nil); w.Code != 404 {
		t.Fatalf("object visible after a failed PUT: %d", w.Code)
	}
	w = ts.do("PUT", "/bkt/k", big, "x-amz-checksum-crc32", "AAAAAA==")
	if w.Code != 400 || errCode(w) != "BadDigest" {
		t.Fatalf("PUT with wrong CRC32 = %d %s", w.Code, w.Body)
	}
}

type (
	blobsID = blobs.ID
	timeT   = time.Time
)

// chunkPlacement puts every chunk on the one test node.
type chunkPlacement struct{}

func (chunkPlacement) ChunkOwners(blobs.ID) []string    { return []string{"n1"} }
func (chunkPlacement) ChunkFallbacks(blobs.ID) []string { return nil }
func (chunkPlacement) ChunkWriteSets(blobs.ID) [][]string {
	return [][]string{{"n1"}}
}

// metaHeader reads user metadata as S3 sends it: a lower-case header name.
func metaHeader(h http.Header, name string) string {
	if v := h["x-amz-meta-"+name]; len(v) > 0 {
		return v[0]
	}
	return ""
}
