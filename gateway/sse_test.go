// sse_test.go checks server-side encryption through the gateway, rule by
// rule as S3 states them: SSE-C keys are validated and required on every
// read and part (400 without, 403 or 400 with a wrong one), SSE-S3 needs
// master keys and survives their rotation, KMS is refused, responses
// carry the encryption headers, ranges and parts read back across chunk
// boundaries, copies re-seal whenever the key changes and share chunks
// only when it does not, bucket default encryption follows S3's, and no
// plaintext reaches a chunk file or an inline record.
package gateway

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"io/fs"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/sse"
)

// testKey is an SSE-C key with its headers.
type testKey struct{ raw []byte }

func newTestKey() testKey {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return testKey{k}
}

func (k testKey) b64() string { return base64.StdEncoding.EncodeToString(k.raw) }

func (k testKey) md5() string {
	s := md5.Sum(k.raw)
	return base64.StdEncoding.EncodeToString(s[:])
}

// hdr returns the SSE-C headers of k.
func (k testKey) hdr() []string {
	return []string{
		"x-amz-server-side-encryption-customer-algorithm", "AES256",
		"x-amz-server-side-encryption-customer-key", k.b64(),
		"x-amz-server-side-encryption-customer-key-MD5", k.md5(),
	}
}

// src returns the copy-source SSE-C headers of k.
func (k testKey) src() []string {
	return []string{
		"x-amz-copy-source-server-side-encryption-customer-algorithm", "AES256",
		"x-amz-copy-source-server-side-encryption-customer-key", k.b64(),
		"x-amz-copy-source-server-side-encryption-customer-key-MD5", k.md5(),
	}
}

func cat(hs ...[]string) []string {
	var out []string
	for _, h := range hs {
		out = append(out, h...)
	}
	return out
}

func testKeyring(t testing.TB, ids ...string) *sse.Keyring {
	t.Helper()
	var text []string
	for _, id := range ids {
		k := sha256.Sum256([]byte(id)) // fixed per id, so two keyrings share keys
		text = append(text, id+":"+base64.StdEncoding.EncodeToString(k[:]))
	}
	kr, err := sse.ParseKeyring(strings.Join(text, "\n"))
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

// withConfig returns a second gateway over ts's stores, configured by
// mutate: another node of the same cluster, or the same node restarted
// with other flags.
func (ts *testServer) withConfig(mutate func(*Config)) *testServer {
	cfg := ts.s.cfg
	mutate(&cfg)
	return &testServer{t: ts.t, s: New(cfg), ix: ts.ix, blobs: ts.blobs}
}

func withKeys(t testing.TB, ids ...string) func(*Config) {
	kr := testKeyring(t, ids...)
	return func(c *Config) { c.MasterKeys = kr; c.MinPartBytes = 1 }
}

func wantErr(t *testing.T, w *httptest.ResponseRecorder, status int, code string) {
	t.Helper()
	if w.Code != status || errCode(w) != code {
		t.Fatalf("got %d %s (%s); want %d %s", w.Code, errCode(w), w.Body, status, code)
	}
}

// version reads the stored record of bucket/key's latest version.
func (ts *testServer) version(bucket, key string) *index.Version {
	ts.t.Helper()
	b, err := ts.ix.GetBucket(ts.t.Context(), bucket)
	if err != nil {
		ts.t.Fatal(err)
	}
	o, err := ts.ix.GetObject(ts.t.Context(), b, key)
	if err != nil || o == nil {
		ts.t.Fatalf("object %s/%s: %v", bucket, key, err)
	}
	return o.Latest()
}

func TestSSECPutGetHead(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/ssec", nil)
	k, other := newTestKey(), newTestKey()
	for _, size := range []int{0, 100, 1 << 10, 64<<10 - 28, 64 << 10, 300<<10 + 7} {
		name := fmt.Sprintf("/ssec/o%d", size)
		data := randBytes(uint64(size), size)
		w := ts.must(200, "PUT", name, data, k.hdr()...)
		plainMD5 := fmt.Sprintf(`"%x"`, md5.Sum(data))
		if w.Header().Get("ETag") == plainMD5 || len(w.Header().Get("ETag")) != 34 {
			t.Fatalf("size %d: SSE-C ETag %s is the plaintext's MD5 or malformed", size, w.Header().Get("ETag"))
		}
		if w.Header().Get("x-amz-server-side-encryption-customer-algorithm") != "AES256" || w.Header().Get("x-amz-server-side-encryption-customer-key-MD5") != k.md5() {
			t.Fatalf("size %d: PUT response headers %v", size, w.Header())
		}
		etag := w.Header().Get("ETag")
		wantErr(t, ts.do("GET", name, nil), 400, "InvalidRequest")
		wantErr(t, ts.do("GET", name, nil, other.hdr()...), 403, "AccessDenied")
		wantErr(t, ts.do("HEAD", name, nil), 400, "InvalidRequest")
		wantErr(t, ts.do("HEAD", name, nil, other.hdr()...), 403, "AccessDenied")
		g := ts.must(200, "GET", name, nil, k.hdr()...)
		if !bytes.Equal(g.Body.Bytes(), data) {
			t.Fatalf("size %d: GET returned other bytes", size)
		}
		for _, resp := range []*httptest.ResponseRecorder{g, ts.must(200, "HEAD", name, nil, k.hdr()...)} {
			h := resp.Header()
			if h.Get("x-amz-server-side-encryption-customer-algorithm") != "AES256" || h.Get("x-amz-server-side-encryption-customer-key-MD5") != k.md5() ||
				h.Get("ETag") != etag || h.Get("Content-Length") != fmt.Sprint(size) || h.Get("x-amz-server-side-encryption") != "" {
				t.Fatalf("size %d: response headers %v", size, h)
			}
		}
		v := ts.version("ssec", name[len("/ssec/"):])
		if v.Encryption.KindOf() != index.EncryptionC || v.Size != int64(size) {
			t.Fatalf("size %d: stored version %+v", size, v)
		}
	}
	// The key of an encrypted object on a plaintext one, and on none.
	ts.must(200, "PUT", "/ssec/plain", []byte("plain"))
	wantErr(t, ts.do("GET", "/ssec/plain", nil, k.hdr()...), 400, "InvalidRequest")
	wantErr(t, ts.do("GET", "/ssec/plain", nil, "x-amz-server-side-encryption", "AES256"), 400, "InvalidArgument")
	// Attributes are an SSE-C object's too.
	wantErr(t, ts.do("GET", "/ssec/o100?attributes", nil, "x-amz-object-attributes", "ETag"), 400, "InvalidRequest")
	ts.must(200, "GET", "/ssec/o100?attributes", nil, cat([]string{"x-amz-object-attributes", "ETag"}, k.hdr())...)
	// Deleting and tagging need no key, as in S3.
	ts.must(200, "PUT", "/ssec/o100?tagging", []byte(`<Tagging><TagSet><Tag><Key>a</Key><Value>b</Value></Tag></TagSet></Tagging>`))
	ts.must(204, "DELETE", "/ssec/o100", nil)
}

func TestSSECHeaderValidation(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/val", nil)
	k := newTestKey()
	const alg, key, md = "x-amz-server-side-encryption-customer-algorithm", "x-amz-server-side-encryption-customer-key", "x-amz-server-side-encryption-customer-key-MD5"
	short := base64.StdEncoding.EncodeToString(k.raw[:16])
	shortMD5 := md5.Sum(k.raw[:16])
	for _, c := range []struct {
		name   string
		hdr    []string
		status int
		code   string
	}{
		{"no MD5", []string{alg, "AES256", key, k.b64()}, 400, "InvalidArgument"},
		{"no key", []string{alg, "AES256", md, k.md5()}, 400, "InvalidArgument"},
		{"no algorithm", []string{key, k.b64(), md, k.md5()}, 400, "InvalidArgument"},
		{"wrong MD5", []string{alg, "AES256", key, k.b64(), md, newTestKey().md5()}, 400, "InvalidArgument"},
		{"MD5 not base64", []string{alg, "AES256", key, k.b64(), md, "%%%"}, 400, "InvalidArgument"},
		{"key not base64", []string{alg, "AES256", key, "not base64!", md, k.md5()}, 400, "InvalidArgument"},
		{"128-bit key", []string{alg, "AES256", key, short, md, base64.StdEncoding.EncodeToString(shortMD5[:])}, 400, "InvalidArgument"},
		{"algorithm AES128", []string{alg, "AES128", key, k.b64(), md, k.md5()}, 400, "InvalidEncryptionAlgorithmError"},
		{"SSE-C and SSE-S3", cat(k.hdr(), []string{"x-amz-server-side-encryption", "AES256"}), 400, "InvalidArgument"},
		{"aws:kms", []string{"x-amz-server-side-encryption", "aws:kms"}, 501, "NotImplemented"},
		{"aws:kms:dsse", []string{"x-amz-server-side-encryption", "aws:kms:dsse"}, 501, "NotImplemented"},
		{"unknown method", []string{"x-amz-server-side-encryption", "rot13"}, 400, "InvalidArgument"},
		{"KMS key id alone", []string{"x-amz-server-side-encryption-aws-kms-key-id", "k"}, 400, "InvalidArgument"},
		{"KMS context alone", []string{"x-amz-server-side-encryption-context", "e30="}, 400, "InvalidArgument"},
		{"bucket key", []string{"x-amz-server-side-encryption-bucket-key-enabled", "true"}, 501, "NotImplemented"},
		{"SSE-S3 without master keys", []string{"x-amz-server-side-encryption", "AES256"}, 501, "NotImplemented"},
	} {
		t.Run(c.name, func(t *testing.T) {
			wantErr(t, ts.do("PUT", "/val/x", []byte("data"), c.hdr...), c.status, c.code)
			wantErr(t, ts.do("POST", "/val/x?uploads", nil, c.hdr...), c.status, c.code)
		})
	}
	// Nothing was stored by any of them.
	wantErr(t, ts.do("HEAD", "/val/x", nil), 404, "NoSuchKey")
	if w := ts.must(200, "GET", "/val?uploads", nil); strings.Contains(w.Body.String(), "<Upload>") {
		t.Fatalf("a refused CreateMultipartUpload left an upload: %s", w.Body)
	}
	ts.must(200, "PUT", "/val/x", []byte("data"), "x-amz-server-side-encryption-bucket-key-enabled", "false")
}

func TestSSECNeedsAPrivateConnection(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/tls", nil)
	k := newTestKey()
	send := func(s *Server, remote string, tlsOn bool) *httptest.ResponseRecorder {
		r := httptest.NewRequest("PUT", "http://s3.test/tls/x", bytes.NewReader([]byte("data")))
		r.RemoteAddr = remote
		if tlsOn {
			r.TLS = &tls.ConnectionState{}
		}
		hs := k.hdr()
		for i := 0; i < len(hs); i += 2 {
			r.Header.Set(hs[i], hs[i+1])
		}
		signTestRequest(r, []byte("data"))
		w := httptest.NewRecorder()
		s.ServeHTTP(w, r)
		return w
	}
	wantErr(t, send(ts.s, "192.0.2.7:5000", false), 400, "InvalidRequest")
	for _, remote := range []string{"127.0.0.1:5000", "[::1]:5000"} {
		if w := send(ts.s, remote, false); w.Code != 200 {
			t.Fatalf("loopback %s: %d %s", remote, w.Code, w.Body)
		}
	}
	if w := send(ts.s, "192.0.2.7:5000", true); w.Code != 200 {
		t.Fatalf("over TLS: %d %s", w.Code, w.Body)
	}
	behindProxy := ts.withConfig(func(c *Config) { c.SSECOverHTTP = true })
	if w := send(behindProxy.s, "192.0.2.7:5000", false); w.Code != 200 {
		t.Fatalf("with SSECOverHTTP: %d %s", w.Code, w.Body)
	}
}

func TestSSERangeReadsAcrossChunks(t *testing.T) {
	ts := newTestServer(t, withKeys(t, "k1"))
	ts.must(200, "PUT", "/rng", nil)
	k := newTestKey()
	// Sealed chunks hold 64 KiB - 28 of plaintext: ranges cross their
	// boundaries at other offsets than plaintext chunks do.
	const piece = 64<<10 - sse.Overhead
	data := randBytes(9, 5*piece+1234)
	ts.must(200, "PUT", "/rng/c", data, k.hdr()...)
	ts.must(200, "PUT", "/rng/s", data, "x-amz-server-side-encryption", "AES256")
	n := len(data)
	ranges := [][2]int{{0, 0}, {0, piece - 1}, {piece - 1, piece}, {piece - 5, piece + 5}, {2*piece - 1, 3*piece + 1},
		{n - 1, n - 1}, {n - 1300, n - 1}, {17, n - 1}, {piece, 2*piece - 1}}
	for _, name := range []string{"/rng/c", "/rng/s"} {
		var hdr []string
		if name == "/rng/c" {
			hdr = k.hdr()
		}
		for _, rg := range ranges {
			w := ts.must(206, "GET", name, nil, cat(hdr, []string{"Range", fmt.Sprintf("bytes=%d-%d", rg[0], rg[1])})...)
			if !bytes.Equal(w.Body.Bytes(), data[rg[0]:rg[1]+1]) {
				t.Fatalf("%s bytes=%d-%d: wrong bytes", name, rg[0], rg[1])
			}
		}
		w := ts.must(206, "GET", name, nil, cat(hdr, []string{"Range", "bytes=-70000"})...)
		if !bytes.Equal(w.Body.Bytes(), data[n-70000:]) {
			t.Fatalf("%s: suffix range: wrong bytes", name)
		}
	}
	// Every stored chunk is a full buffer (the O_DIRECT size) but the last.
	v := ts.version("rng", "c")
	for i, c := range v.Chunks {
		if i < len(v.Chunks)-1 && c.Size != piece {
			t.Fatalf("chunk %d holds %d plaintext bytes; want %d", i, c.Size, piece)
		}
	}
}

func TestSSES3AndMasterKeyRotation(t *testing.T) {
	ts := newTestServer(t, withKeys(t, "k1"))
	ts.must(200, "PUT", "/sse3", nil)
	small, large := []byte("small object"), randBytes(3, 200<<10)
	for name, data := range map[string][]byte{"/sse3/small": small, "/sse3/large": large} {
		w := ts.must(200, "PUT", name, data, "x-amz-server-side-encryption", "AES256")
		if w.Header().Get("x-amz-server-side-encryption") != "AES256" || w.Header().Get("ETag") != fmt.Sprintf(`"%x"`, md5.Sum(data)) {
			t.Fatalf("%s: PUT headers %v", name, w.Header())
		}
		for _, m := range []string{"GET", "HEAD"} {
			if h := ts.must(200, m, name, nil).Header(); h.Get("x-amz-server-side-encryption") != "AES256" {
				t.Fatalf("%s %s: no SSE header: %v", m, name, h)
			}
		}
	}
	// With master keys, an object without headers is SSE-S3 too, as in S3.
	w := ts.must(200, "PUT", "/sse3/default", []byte("by default"))
	if w.Header().Get("x-amz-server-side-encryption") != "AES256" || ts.version("sse3", "default").Encryption.KeyID != "k1" {
		t.Fatalf("default encryption: %v", w.Header())
	}
	// SSE-C headers on an SSE-S3 object are not its parameters.
	wantErr(t, ts.do("GET", "/sse3/small", nil, newTestKey().hdr()...), 400, "InvalidRequest")

	// Rotation: k2 is added after k1; old objects still read, new ones
	// use k2.
	rotated := ts.withConfig(withKeys(t, "k1", "k2"))
	for name, data := range map[string][]byte{"/sse3/small": small, "/sse3/large": large} {
		if g := rotated.must(200, "GET", name, nil); !bytes.Equal(g.Body.Bytes(), data) {
			t.Fatalf("%s after rotation: wrong bytes", name)
		}
	}
	rotated.must(200, "PUT", "/sse3/new", large, "x-amz-server-side-encryption", "AES256")
	if id := ts.version("sse3", "new").Encryption.KeyID; id != "k2" {
		t.Fatalf("new object wrapped with %q; want k2", id)
	}
	// Copying an object onto itself re-wraps its data key with the
	// newest master key (the step before k1 can go), without new chunks.
	before := blobBytes(t, ts)
	rotated.must(200, "PUT", "/sse3/large", nil, "x-amz-copy-source", "/sse3/large", "x-amz-server-side-encryption", "AES256")
	if after := blobBytes(t, ts); after != before {
		t.Fatalf("re-wrapping wrote %d chunk bytes", after-before)
	}
	if id := ts.version("sse3", "large").Encryption.KeyID; id != "k2" {
		t.Fatalf("re-wrapped with %q; want k2", id)
	}
	onlyK2 := ts.withConfig(withKeys(t, "k2"))
	if g := onlyK2.must(200, "GET", "/sse3/large", nil); !bytes.Equal(g.Body.Bytes(), large) {
		t.Fatal("re-wrapped object unreadable without k1")
	}
	// An object whose master key is gone is an error, never plaintext.
	wantErr(t, onlyK2.do("GET", "/sse3/small", nil), 500, "InternalError")
	// A node without master keys refuses SSE-S3 objects, and takes
	// plaintext by default.
	none := ts.withConfig(func(c *Config) { c.MasterKeys = nil })
	wantErr(t, none.do("GET", "/sse3/small", nil), 500, "InternalError")
	wantErr(t, none.do("PUT", "/sse3/x", small, "x-amz-server-side-encryption", "AES256"), 501, "NotImplemented")
	if w := none.must(200, "PUT", "/sse3/x", small); w.Header().Get("x-amz-server-side-encryption") != "" {
		t.Fatal("plaintext object reported as encrypted")
	}
}

func TestSSEMultipart(t *testing.T) {
	ts := newTestServer(t, withKeys(t, "k1"))
	ts.must(200, "PUT", "/mpu", nil)
	k, other := newTestKey(), newTestKey()
	p1, p2 := randBytes(1, 150<<10+3), randBytes(2, 70<<10)

	id := initiate(t, ts, "/mpu/c", k.hdr()...)
	part := func(n int) string { return fmt.Sprintf("/mpu/c?partNumber=%d&uploadId=%s", n, id) }
	wantErr(t, ts.do("PUT", part(1), p1), 400, "InvalidRequest")
	wantErr(t, ts.do("PUT", part(1), p1, other.hdr()...), 400, "InvalidRequest")
	w := ts.must(200, "PUT", part(1), p1, k.hdr()...)
	e1 := w.Header().Get("ETag")
	if e1 == fmt.Sprintf(`"%x"`, md5.Sum(p1)) || w.Header().Get("x-amz-server-side-encryption-customer-key-MD5") != k.md5() {
		t.Fatalf("SSE-C part: ETag %s, headers %v", e1, w.Header())
	}
	// Part 2 is copied from an object under another key.
	ts.must(200, "PUT", "/mpu/src", p2, other.hdr()...)
	wantErr(t, ts.do("PUT", part(2), nil, cat(k.hdr(), []string{"x-amz-copy-source", "/mpu/src"})...), 400, "InvalidRequest")
	wantErr(t, ts.do("PUT", part(2), nil, cat(k.hdr(), k.src(), []string{"x-amz-copy-source", "/mpu/src"})...), 403, "AccessDenied")
	wantErr(t, ts.do("PUT", part(2), nil, cat(other.src(), []string{"x-amz-copy-source", "/mpu/src"})...), 400, "InvalidRequest")
	w = ts.must(200, "PUT", part(2), nil, cat(k.hdr(), other.src(), []string{"x-amz-copy-source", "/mpu/src"})...)
	var cp struct{ ETag string }
	_ = xml.Unmarshal(w.Body.Bytes(), &cp)
	// Completion needs no key; a wrong one is refused.
	body := completeBody(map[int]string{1: e1, 2: cp.ETag}, []int{1, 2})
	wantErr(t, ts.do("POST", "/mpu/c?uploadId="+id, body, other.hdr()...), 400, "InvalidRequest")
	w = ts.must(200, "POST", "/mpu/c?uploadId="+id, body)
	whole := append(append([]byte(nil), p1...), p2...)
	wantErr(t, ts.do("GET", "/mpu/c", nil), 400, "InvalidRequest")
	if g := ts.must(200, "GET", "/mpu/c", nil, k.hdr()...); !bytes.Equal(g.Body.Bytes(), whole) {
		t.Fatal("completed SSE-C upload reads back other bytes")
	}
	if g := ts.must(206, "GET", "/mpu/c?partNumber=2", nil, k.hdr()...); !bytes.Equal(g.Body.Bytes(), p2) {
		t.Fatal("part 2 reads back other bytes")
	}
	if g := ts.must(206, "GET", "/mpu/c", nil, cat(k.hdr(), []string{"Range", fmt.Sprintf("bytes=%d-%d", len(p1)-10, len(p1)+10)})...); !bytes.Equal(g.Body.Bytes(), whole[len(p1)-10:len(p1)+11]) {
		t.Fatal("range across the parts reads back other bytes")
	}

	// SSE-S3 upload: no key on the parts, the header on every answer.
	id = initiate(t, ts, "/mpu/s", "x-amz-server-side-encryption", "AES256")
	w = ts.must(200, "PUT", fmt.Sprintf("/mpu/s?partNumber=1&uploadId=%s", id), p1)
	if w.Header().Get("x-amz-server-side-encryption") != "AES256" || w.Header().Get("ETag") != fmt.Sprintf(`"%x"`, md5.Sum(p1)) {
		t.Fatalf("SSE-S3 part headers %v", w.Header())
	}
	wantErr(t, ts.do("PUT", fmt.Sprintf("/mpu/s?partNumber=2&uploadId=%s", id), p2, k.hdr()...), 400, "InvalidRequest")
	w = ts.must(200, "POST", "/mpu/s?uploadId="+id, completeBody(map[int]string{1: w.Header().Get("ETag")}, []int{1}))
	if w.Header().Get("x-amz-server-side-encryption") != "AES256" {
		t.Fatalf("complete headers %v", w.Header())
	}
	if g := ts.must(200, "GET", "/mpu/s", nil); !bytes.Equal(g.Body.Bytes(), p1) || g.Header().Get("x-amz-server-side-encryption") != "AES256" {
		t.Fatal("SSE-S3 multipart object reads back wrong")
	}
}

func TestSSECopies(t *testing.T) {
	ts := newTestServer(t, withKeys(t, "k1"), func(c *Config) { c.InlineMax = 1 << 10 })
	ts.must(200, "PUT", "/cpy", nil)
	a, b := newTestKey(), newTestKey()
	for _, size := range []int{100, 200<<10 + 9} {
		data := randBytes(uint64(size), size)
		// One source of each kind.
		plainTS := ts.withConfig(func(c *Config) { c.MasterKeys = nil })
		plainTS.must(200, "PUT", "/cpy/plain", data)
		ts.must(200, "PUT", "/cpy/c", data, a.hdr()...)
		ts.must(200, "PUT", "/cpy/s3", data, "x-amz-server-side-encryption", "AES256")

		type step struct {
			name   string
			srv    *testServer
			hdr    []string
			read   []string // headers to read the copy with
			kind   uint8
			shares bool
		}
		for _, c := range []step{
			{"plain to plain", plainTS, []string{"x-amz-copy-source", "/cpy/plain"}, nil, 0, true},
			{"plain to SSE-C", ts, cat([]string{"x-amz-copy-source", "/cpy/plain"}, b.hdr()), b.hdr(), index.EncryptionC, false},
			{"SSE-C to another key", ts, cat([]string{"x-amz-copy-source", "/cpy/c"}, a.src(), b.hdr()), b.hdr(), index.EncryptionC, false},
			{"SSE-C to the same key", ts, cat([]string{"x-amz-copy-source", "/cpy/c"}, a.src(), a.hdr()), a.hdr(), index.EncryptionC, true},
			{"SSE-C to SSE-S3", ts, cat([]string{"x-amz-copy-source", "/cpy/c"}, a.src(), []string{"x-amz-server-side-encryption", "AES256"}), nil, index.EncryptionS3, false},
			{"SSE-C to plaintext", plainTS, cat([]string{"x-amz-copy-source", "/cpy/c"}, a.src()), nil, 0, false},
			{"SSE-S3 to SSE-S3", ts, []string{"x-amz-copy-source", "/cpy/s3"}, nil, index.EncryptionS3, true},
			{"SSE-S3 to SSE-C", ts, cat([]string{"x-amz-copy-source", "/cpy/s3"}, a.hdr()), a.hdr(), index.EncryptionC, false},
		} {
			srcChunks := ts.version("cpy", strings.TrimPrefix(c.hdr[1], "/cpy/")).Chunks
			w := c.srv.must(200, "PUT", "/cpy/dst", nil, c.hdr...)
			v := ts.version("cpy", "dst")
			if size > 1<<10 && slices.Equal(v.Chunks, srcChunks) != c.shares {
				t.Fatalf("%s, %d bytes: shares the source's chunks: %v; want %v", c.name, size, !c.shares, c.shares)
			}
			if v.Encryption.KindOf() != c.kind {
				t.Fatalf("%s: copy stored as kind %d", c.name, v.Encryption.KindOf())
			}
			g := c.srv.must(200, "GET", "/cpy/dst", nil, c.read...)
			if !bytes.Equal(g.Body.Bytes(), data) {
				t.Fatalf("%s, %d bytes: copy reads back other bytes", c.name, size)
			}
			var res struct{ ETag string }
			_ = xml.Unmarshal(w.Body.Bytes(), &res)
			plainETag := fmt.Sprintf(`"%x"`, md5.Sum(data))
			if (res.ETag == plainETag) == (c.kind == index.EncryptionC) || g.Header().Get("ETag") != res.ETag {
				t.Fatalf("%s: copy ETag %s (GET %s), plaintext MD5 %s", c.name, res.ETag, g.Header().Get("ETag"), plainETag)
			}
			if c.kind == index.EncryptionC && w.Header().Get("x-amz-server-side-encryption-customer-key-MD5") == "" ||
				c.kind == index.EncryptionS3 && w.Header().Get("x-amz-server-side-encryption") != "AES256" {
				t.Fatalf("%s: copy response headers %v", c.name, w.Header())
			}
			if c.kind == index.EncryptionC && slices.Equal(c.read, b.hdr()) {
				wantErr(t, ts.do("GET", "/cpy/dst", nil, a.hdr()...), 403, "AccessDenied")
			}
		}
		wantErr(t, ts.do("PUT", "/cpy/dst", nil, "x-amz-copy-source", "/cpy/c"), 400, "InvalidRequest")
		wantErr(t, ts.do("PUT", "/cpy/dst", nil, cat([]string{"x-amz-copy-source", "/cpy/c"}, b.src())...), 403, "AccessDenied")
		wantErr(t, ts.do("PUT", "/cpy/dst", nil, cat([]string{"x-amz-copy-source", "/cpy/s3"}, b.src())...), 400, "InvalidRequest")
		// Re-keying an SSE-C object in place: allowed, it changes the
		// encryption; afterwards only the new key reads it.
		ts.must(200, "PUT", "/cpy/c", nil, cat([]string{"x-amz-copy-source", "/cpy/c"}, a.src(), b.hdr())...)
		wantErr(t, ts.do("GET", "/cpy/c", nil, a.hdr()...), 403, "AccessDenied")
		if g := ts.must(200, "GET", "/cpy/c", nil, b.hdr()...); !bytes.Equal(g.Body.Bytes(), data) {
			t.Fatal("re-keyed object reads back other bytes")
		}
	}
}

func TestBucketEncryption(t *testing.T) {
	conf := func(alg string, extra string) []byte {
		return []byte(`<ServerSideEncryptionConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>` +
			alg + `</SSEAlgorithm></ApplyServerSideEncryptionByDefault>` + extra + `</Rule></ServerSideEncryptionConfiguration>`)
	}
	put := func(ts *testServer, body []byte) *httptest.ResponseRecorder {
		sum := md5.Sum(body)
		return ts.do("PUT", "/bde?encryption", body, "Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	}
	plain := newTestServer(t)
	plain.must(200, "PUT", "/bde", nil)
	wantErr(t, plain.do("GET", "/bde?encryption", nil), 404, "ServerSideEncryptionConfigurationNotFoundError")
	wantErr(t, put(plain, conf("AES256", "")), 501, "NotImplemented")

	ts := plain.withConfig(withKeys(t, "k1"))
	w := ts.must(200, "GET", "/bde?encryption", nil)
	if !strings.Contains(w.Body.String(), "<SSEAlgorithm>AES256</SSEAlgorithm>") || !strings.Contains(w.Body.String(), "<BucketKeyEnabled>false</BucketKeyEnabled>") {
		t.Fatalf("default configuration = %s", w.Body)
	}
	wantErr(t, ts.do("PUT", "/bde?encryption", conf("AES256", "")), 400, "InvalidRequest") // no Content-MD5
	wantErr(t, put(ts, conf("aws:kms", "")), 501, "NotImplemented")
	wantErr(t, put(ts, conf("aws:kms:dsse", "")), 501, "NotImplemented")
	wantErr(t, put(ts, conf("DES", "")), 400, "MalformedXML")
	wantErr(t, put(ts, []byte("<ServerSideEncryptionConfiguration/>")), 400, "MalformedXML")
	wantErr(t, put(ts, conf("AES256", "<BucketKeyEnabled>true</BucketKeyEnabled>")), 501, "NotImplemented")
	wantErr(t, put(ts, conf("AES256", "<BlockedEncryptionTypes><EncryptionType>SSE-KMS</EncryptionType></BlockedEncryptionTypes>")), 400, "MalformedXML")

	// Blocking SSE-C, as S3's BlockedEncryptionTypes does.
	if w := put(ts, conf("AES256", "<BucketKeyEnabled>false</BucketKeyEnabled><BlockedEncryptionTypes><EncryptionType>SSE-C</EncryptionType></BlockedEncryptionTypes>")); w.Code != 200 {
		t.Fatalf("put configuration: %d %s", w.Code, w.Body)
	}
	if w := ts.must(200, "GET", "/bde?encryption", nil); !strings.Contains(w.Body.String(), "<EncryptionType>SSE-C</EncryptionType>") {
		t.Fatalf("configuration = %s", w.Body)
	}
	k := newTestKey()
	wantErr(t, ts.do("PUT", "/bde/x", []byte("x"), k.hdr()...), 403, "AccessDenied")
	wantErr(t, ts.do("POST", "/bde/x?uploads", nil, k.hdr()...), 403, "AccessDenied")
	if w := ts.must(200, "PUT", "/bde/x", []byte("x")); w.Header().Get("x-amz-server-side-encryption") != "AES256" {
		t.Fatalf("default-encrypted PUT headers %v", w.Header())
	}
	ts.must(204, "DELETE", "/bde?encryption", nil)
	ts.must(200, "PUT", "/bde/x", []byte("x"), k.hdr()...)
	if w := ts.must(200, "GET", "/bde?encryption", nil); strings.Contains(w.Body.String(), "Blocked") {
		t.Fatalf("configuration after delete = %s", w.Body)
	}
}

// TestNoPlaintextAtRest: chunk files and records of encrypted objects
// hold none of their plaintext, and equal plaintexts under different
// keys share no chunk, while plaintext objects still deduplicate.
func TestNoPlaintextAtRest(t *testing.T) {
	ts := newTestServer(t, withKeys(t, "k1"))
	ts.must(200, "PUT", "/rest", nil)
	marker := []byte("RINGSTORE-PLAINTEXT-MARKER-")
	body := bytes.Repeat(marker, (300<<10)/len(marker))
	small := bytes.Repeat(marker, 20)
	a, b := newTestKey(), newTestKey()
	ts.must(200, "PUT", "/rest/c1", body, a.hdr()...)
	ts.must(200, "PUT", "/rest/c2", body, b.hdr()...)
	ts.must(200, "PUT", "/rest/s1", body, "x-amz-server-side-encryption", "AES256")
	ts.must(200, "PUT", "/rest/s2", body, "x-amz-server-side-encryption", "AES256")
	ts.must(200, "PUT", "/rest/inline-c", small, a.hdr()...)
	ts.must(200, "PUT", "/rest/inline-s", small, "x-amz-server-side-encryption", "AES256")
	seen := map[index.BlobID]string{}
	for _, name := range []string{"c1", "c2", "s1", "s2"} {
		for _, c := range ts.version("rest", name).Chunks {
			if prev, dup := seen[c.ID]; dup {
				t.Fatalf("%s and %s share chunk %s", prev, name, c.ID)
			}
			seen[c.ID] = name
		}
	}
	for _, name := range []string{"inline-c", "inline-s"} {
		v := ts.version("rest", name)
		if v.Inline == nil || bytes.Contains(v.Inline, marker[:16]) {
			t.Fatalf("%s: inline body holds plaintext", name)
		}
	}
	scanned := 0
	err := filepath.WalkDir(ts.blobs.Dir(), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		scanned += len(b)
		if bytes.Contains(b, marker[:16]) {
			t.Errorf("%s holds plaintext", p)
		}
		return nil
	})
	if err != nil || scanned < 4*len(body) {
		t.Fatalf("scanned %d bytes: %v", scanned, err)
	}
	// Plaintext objects still share chunks.
	plain := ts.withConfig(func(c *Config) { c.MasterKeys = nil })
	plain.must(200, "PUT", "/rest/p1", body)
	plain.must(200, "PUT", "/rest/p2", body)
	if p1, p2 := ts.version("rest", "p1").Chunks, ts.version("rest", "p2").Chunks; p1[0].ID != p2[0].ID {
		t.Fatal("equal plaintext objects no longer share chunks")
	}
}

func FuzzParseSSEConfig(f *testing.F) {
	f.Add([]byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault></Rule></ServerSideEncryptionConfiguration>`))
	f.Add([]byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>AES256</SSEAlgorithm></ApplyServerSideEncryptionByDefault><BlockedEncryptionTypes><EncryptionType>SSE-C</EncryptionType><EncryptionType>NONE</EncryptionType></BlockedEncryptionTypes><BucketKeyEnabled>false</BucketKeyEnabled></Rule></ServerSideEncryptionConfiguration>`))
	f.Add([]byte(`<ServerSideEncryptionConfiguration><Rule><ApplyServerSideEncryptionByDefault><SSEAlgorithm>aws:kms</SSEAlgorithm><KMSMasterKeyID>x</KMSMasterKeyID></ApplyServerSideEncryptionByDefault></Rule><Rule/></ServerSideEncryptionConfiguration>`))
	f.Fuzz(func(t *testing.T, body []byte) {
		val, err := parseSSEConfig(body, true)
		if err != nil {
			if asAPIError(err) == ErrInternal {
				t.Fatalf("an XML body gave a non-S3 error: %v", err)
			}
			return
		}
		// What is stored decodes, and renders a document that parses to
		// the same register value.
		d, err := decodeBucketDefault(val)
		if err != nil {
			t.Fatalf("stored %q does not decode: %v", val, err)
		}
		off := false
		rule := sseRule{Apply: &sseDefault{SSEAlgorithm: d.algorithm}, BucketKeyEnabled: &off}
		if len(d.blocked) > 0 {
			rule.Blocked = &sseBlockedTypes{Types: d.blocked}
		}
		out, err := xml.Marshal(sseConfiguration{NS: s3NS, Rules: []sseRule{rule}})
		if err != nil {
			t.Fatal(err)
		}
		again, err := parseSSEConfig(out, true)
		if err != nil || again != val {
			t.Fatalf("%q rendered as %s parses to %q, %v", val, out, again, err)
		}
	})
}

func FuzzParseCustomerKey(f *testing.F) {
	k := newTestKey()
	f.Add("AES256", k.b64(), k.md5())
	f.Add("AES256", k.b64(), "")
	f.Add("", "", "")
	f.Fuzz(func(t *testing.T, alg, key, md string) {
		h := http.Header{}
		for name, v := range map[string]string{"Algorithm": alg, "Key": key, "Key-Md5": md} {
			if v != "" {
				h.Set(customerPrefix+name, v)
			}
		}
		ck, err := parseCustomerKey(h, customerPrefix)
		if err != nil {
			if asAPIError(err).Status != 400 {
				t.Fatalf("status %d", asAPIError(err).Status)
			}
			return
		}
		if ck == nil {
			if alg != "" || key != "" || md != "" {
				t.Fatal("headers given, no key and no error")
			}
			return
		}
		sum := md5.Sum(ck.key)
		if alg != "AES256" || len(ck.key) != 32 || base64.StdEncoding.EncodeToString(sum[:]) != ck.md5 {
			t.Fatalf("accepted alg %q, key of %d bytes, MD5 %s", alg, len(ck.key), hex.EncodeToString(sum[:]))
		}
	})
}
