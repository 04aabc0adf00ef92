// minio_test.go: the minio-go client (v7) against ringstore.
//
// Goal: every bucket and object operation ringstore implements works through
// minio-go as it does against Amazon S3: bucket lifecycle and errors, object
// put/get/stat/remove, multi-chunk bodies, ranges, conditional reads,
// presigned URLs (with response-* overrides and expiry), unknown-length
// streams, multi-delete, copy with metadata COPY/REPLACE, stored content
// headers and user metadata, tagging, and S3's error codes for limits, bad
// names and bad credentials.
//
// Method: one server for TestMinio; each subtest runs in parallel in its own
// bucket. Where minio-go validates input on the client side (bucket names)
// the server is driven with raw signed requests instead, so the check is of
// the server. The big listing test is in minio_list_test.go.
package integration

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
	"github.com/minio/minio-go/v7/pkg/tags"
)

// minioErr returns the S3 error carried by err (zero value if none).
func minioErr(err error) minio.ErrorResponse { return minio.ToErrorResponse(err) }

// expectMinioErr checks that err is the S3 error code with HTTP status.
func expectMinioErr(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want %d %s", what, status, code)
		return
	}
	e := minioErr(err)
	if e.StatusCode != status || (code != "" && e.Code != code) {
		t.Errorf("%s: got %v (status %d, code %q), want %d %s", what, err, e.StatusCode, e.Code, status, code)
	}
}

// nonSeekable hides every method of r but Read.
type nonSeekable struct{ r io.Reader }

func (n nonSeekable) Read(p []byte) (int, error) { return n.r.Read(p) }

func TestMinio(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ServerOptions{})
	mc := minioClient(t, srv)

	newBucket := func(t *testing.T) string {
		t.Helper()
		b := bucketName(t)
		if err := mc.MakeBucket(testCtx(t, time.Minute), b, minio.MakeBucketOptions{Region: testRegion}); err != nil {
			t.Fatalf("MakeBucket %s: %v", b, err)
		}
		return b
	}

	t.Run("BucketLifecycle", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := bucketName(t)
		if ok, err := mc.BucketExists(ctx, b); err != nil || ok {
			t.Fatalf("BucketExists before create = %v, %v; want false, nil", ok, err)
		}
		if err := mc.MakeBucket(ctx, b, minio.MakeBucketOptions{Region: testRegion}); err != nil {
			t.Fatalf("MakeBucket: %v", err)
		}
		if ok, err := mc.BucketExists(ctx, b); err != nil || !ok {
			t.Fatalf("BucketExists after create = %v, %v; want true, nil", ok, err)
		}
		buckets, err := mc.ListBuckets(ctx)
		if err != nil {
			t.Fatalf("ListBuckets: %v", err)
		}
		found := false
		for _, bi := range buckets {
			if bi.Name == b {
				found = true
				if bi.CreationDate.IsZero() || time.Since(bi.CreationDate) > time.Hour || time.Until(bi.CreationDate) > time.Minute {
					t.Errorf("ListBuckets: %s has CreationDate %v, want about now", b, bi.CreationDate)
				}
			}
		}
		if !found {
			t.Errorf("ListBuckets does not list %s", b)
		}
		// minio-go answers GetBucketLocation from its Region option; a
		// client without one asks the server.
		probe, err := minio.New(srv.Addr, &minio.Options{Creds: miniocreds.NewStaticV4(testAccessKey, testSecretKey, "")})
		if err != nil {
			t.Fatal(err)
		}
		loc, err := probe.GetBucketLocation(ctx, b)
		if err != nil || loc != testRegion {
			t.Errorf("GetBucketLocation = %q, %v; want %q", loc, err, testRegion)
		}
		// S3 answers an empty LocationConstraint for us-east-1.
		if r := srv.do(t, rawReq{Method: "GET", Bucket: b, Query: "location"}); r.Status != 200 ||
			!bytes.Contains(r.Body, []byte("LocationConstraint")) || bytes.Contains(r.Body, []byte(">us-east-1<")) {
			t.Errorf("GET ?location: %s, want an empty LocationConstraint (us-east-1)", r)
		}
		expectMinioErr(t, "MakeBucket twice", mc.MakeBucket(ctx, b, minio.MakeBucketOptions{Region: testRegion}), 409, "BucketAlreadyOwnedByYou")

		// Versioning: unset, Enabled, Suspended.
		vc, err := mc.GetBucketVersioning(ctx, b)
		if err != nil || vc.Status != "" {
			t.Errorf("GetBucketVersioning of a new bucket = %+v, %v; want no status", vc, err)
		}
		if err := mc.EnableVersioning(ctx, b); err != nil {
			t.Errorf("EnableVersioning: %v", err)
		} else if vc, err := mc.GetBucketVersioning(ctx, b); err != nil || vc.Status != "Enabled" {
			t.Errorf("GetBucketVersioning after enable = %+v, %v; want Enabled", vc, err)
		}
		if err := mc.SuspendVersioning(ctx, b); err != nil {
			t.Errorf("SuspendVersioning: %v", err)
		} else if vc, err := mc.GetBucketVersioning(ctx, b); err != nil || vc.Status != "Suspended" {
			t.Errorf("GetBucketVersioning after suspend = %+v, %v; want Suspended", vc, err)
		}

		if err := mc.RemoveBucket(ctx, b); err != nil {
			t.Fatalf("RemoveBucket: %v", err)
		}
		if ok, err := mc.BucketExists(ctx, b); err != nil || ok {
			t.Errorf("BucketExists after remove = %v, %v; want false, nil", ok, err)
		}
		expectMinioErr(t, "RemoveBucket of a missing bucket", mc.RemoveBucket(ctx, b), 404, "NoSuchBucket")
		expectError(t, "GetBucketLocation of a missing bucket", srv.do(t, rawReq{Method: "GET", Bucket: b, Query: "location"}), 404, "NoSuchBucket")
		expectError(t, "ListObjects of a missing bucket", srv.do(t, rawReq{Method: "GET", Bucket: b, Query: "list-type=2"}), 404, "NoSuchBucket")
		if r := srv.do(t, rawReq{Method: "HEAD", Bucket: b}); r.Status != 404 {
			t.Errorf("HeadBucket of a missing bucket: %d, want 404", r.Status)
		}
		_, err = mc.PutObject(ctx, b, "k", strings.NewReader("x"), 1, minio.PutObjectOptions{})
		expectMinioErr(t, "PutObject into a missing bucket", err, 404, "NoSuchBucket")
	})

	t.Run("BucketNotEmpty", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		if _, err := mc.PutObject(ctx, b, "keep", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		expectMinioErr(t, "RemoveBucket of a non-empty bucket", mc.RemoveBucket(ctx, b), 409, "BucketNotEmpty")
		if ok, _ := mc.BucketExists(ctx, b); !ok {
			t.Errorf("bucket gone after a refused RemoveBucket")
		}
		if err := mc.RemoveObject(ctx, b, "keep", minio.RemoveObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if err := mc.RemoveBucket(ctx, b); err != nil {
			t.Errorf("RemoveBucket once empty: %v", err)
		}
	})

	t.Run("ObjectBasics", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		data := []byte("hello, ringstore\n")
		info, err := mc.PutObject(ctx, b, "dir/hello.txt", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ContentType: "text/plain"})
		if err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		if info.ETag != md5Hex(data) {
			t.Errorf("PutObject ETag = %q, want MD5 %q", info.ETag, md5Hex(data))
		}
		st, err := mc.StatObject(ctx, b, "dir/hello.txt", minio.StatObjectOptions{})
		if err != nil {
			t.Fatalf("StatObject: %v", err)
		}
		if st.Size != int64(len(data)) || st.ETag != md5Hex(data) || st.ContentType != "text/plain" {
			t.Errorf("StatObject = size %d etag %q type %q; want %d %q text/plain", st.Size, st.ETag, st.ContentType, len(data), md5Hex(data))
		}
		if d := time.Since(st.LastModified); d < -time.Minute || d > time.Hour {
			t.Errorf("StatObject LastModified = %v, want about now", st.LastModified)
		}
		got := minioGet(t, mc, b, "dir/hello.txt", minio.GetObjectOptions{})
		if !bytes.Equal(got, data) {
			t.Errorf("GetObject = %q, want %q", got, data)
		}
		// Overwrite, then an empty object.
		if _, err := mc.PutObject(ctx, b, "dir/hello.txt", strings.NewReader("v2"), 2, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		if got := minioGet(t, mc, b, "dir/hello.txt", minio.GetObjectOptions{}); string(got) != "v2" {
			t.Errorf("GetObject after overwrite = %q, want v2", got)
		}
		if _, err := mc.PutObject(ctx, b, "empty", bytes.NewReader(nil), 0, minio.PutObjectOptions{}); err != nil {
			t.Fatalf("PutObject empty: %v", err)
		}
		if st, err := mc.StatObject(ctx, b, "empty", minio.StatObjectOptions{}); err != nil || st.Size != 0 || st.ETag != md5Hex(nil) {
			t.Errorf("StatObject empty = %d %q %v; want 0 %q", st.Size, st.ETag, err, md5Hex(nil))
		}
		if st, err := mc.StatObject(ctx, b, "empty", minio.StatObjectOptions{}); err == nil && st.ContentType != "binary/octet-stream" && st.ContentType != "application/octet-stream" {
			t.Errorf("default Content-Type = %q, want binary/octet-stream", st.ContentType)
		}

		if err := mc.RemoveObject(ctx, b, "dir/hello.txt", minio.RemoveObjectOptions{}); err != nil {
			t.Fatalf("RemoveObject: %v", err)
		}
		_, err = mc.StatObject(ctx, b, "dir/hello.txt", minio.StatObjectOptions{})
		expectMinioErr(t, "StatObject after remove", err, 404, "NoSuchKey")
		obj, err := mc.GetObject(ctx, b, "dir/hello.txt", minio.GetObjectOptions{})
		if err == nil {
			_, err = io.ReadAll(obj)
			obj.Close()
		}
		expectMinioErr(t, "GetObject of a missing key", err, 404, "NoSuchKey")
		// S3 answers DELETE of a missing key with 204.
		if err := mc.RemoveObject(ctx, b, "never-there", minio.RemoveObjectOptions{}); err != nil {
			t.Errorf("RemoveObject of a missing key: %v (S3 answers 204)", err)
		}
		// The raw GET of a missing key is a NoSuchKey document naming it.
		r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "dir/hello.txt"})
		expectError(t, "raw GET of a missing key", r, 404, "NoSuchKey")
		if e := r.errorDoc(); e.Key != "" && e.Key != "dir/hello.txt" {
			t.Errorf("NoSuchKey names key %q, want dir/hello.txt", e.Key)
		}
	})

	t.Run("MultiChunkAndRanges", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 2*time.Minute)
		b := newBucket(t)
		data := randomBytes(5*1024*1024 + 512*1024) // 5.5 MiB: six 1 MiB chunks
		if _, err := mc.PutObject(ctx, b, "big.bin", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{DisableMultipart: true}); err != nil {
			t.Fatalf("PutObject 5.5 MiB: %v", err)
		}
		st, err := mc.StatObject(ctx, b, "big.bin", minio.StatObjectOptions{})
		if err != nil || st.Size != int64(len(data)) || st.ETag != md5Hex(data) {
			t.Fatalf("StatObject = %d %q %v; want %d %q", st.Size, st.ETag, err, len(data), md5Hex(data))
		}
		got := minioGet(t, mc, b, "big.bin", minio.GetObjectOptions{})
		if sha256Hex(got) != sha256Hex(data) {
			t.Fatalf("GetObject 5.5 MiB: SHA-256 differs (got %d bytes)", len(got))
		}
		for _, c := range []struct {
			name       string
			start, end int64 // minio-go SetRange arguments
			from, to   int   // expected slice of data
		}{
			{"across the first chunk boundary", 1048000, 1049600, 1048000, 1049601},
			{"exactly one chunk", 1 << 20, 2<<20 - 1, 1 << 20, 2 << 20},
			{"one byte at a boundary", 3<<20 - 1, 3<<20 - 1, 3<<20 - 1, 3 << 20},
			{"open range", 5000000, 0, 5000000, len(data)},
			{"suffix range", 0, -100000, len(data) - 100000, len(data)},
			{"end beyond size", 5700000, 9999999, 5700000, len(data)},
			{"first byte", 0, 0, 0, 1},
		} {
			var o minio.GetObjectOptions
			if err := o.SetRange(c.start, c.end); err != nil {
				t.Fatalf("%s: SetRange: %v", c.name, err)
			}
			got := minioGet(t, mc, b, "big.bin", o)
			if !bytes.Equal(got, data[c.from:c.to]) {
				t.Errorf("range %s (%d,%d): got %d bytes, want bytes [%d,%d) (%d bytes)", c.name, c.start, c.end, len(got), c.from, c.to, c.to-c.from)
			}
		}
		// Reading at offsets through ReadAt/Seek uses ranges too.
		obj, err := mc.GetObject(ctx, b, "big.bin", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		defer obj.Close()
		buf := make([]byte, 4096)
		if _, err := obj.ReadAt(buf, 4<<20-2048); err != nil {
			t.Errorf("ReadAt across the 4 MiB boundary: %v", err)
		} else if !bytes.Equal(buf, data[4<<20-2048:4<<20+2048]) {
			t.Errorf("ReadAt across the 4 MiB boundary returned other bytes")
		}
	})

	t.Run("Conditional", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		data := []byte("conditional body")
		if _, err := mc.PutObject(ctx, b, "c", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		st, err := mc.StatObject(ctx, b, "c", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		etag, lm := st.ETag, st.LastModified
		get := func(set func(o *minio.GetObjectOptions) error) ([]byte, error) {
			var o minio.GetObjectOptions
			if err := set(&o); err != nil {
				t.Fatal(err)
			}
			obj, err := mc.GetObject(ctx, b, "c", o)
			if err != nil {
				return nil, err
			}
			defer obj.Close()
			return io.ReadAll(obj)
		}
		if got, err := get(func(o *minio.GetObjectOptions) error { return o.SetMatchETag(etag) }); err != nil || !bytes.Equal(got, data) {
			t.Errorf("If-Match current ETag: %q, %v; want the body", got, err)
		}
		_, err = get(func(o *minio.GetObjectOptions) error { return o.SetMatchETag("0123456789abcdef0123456789abcdef") })
		expectMinioErr(t, "If-Match other ETag", err, 412, "PreconditionFailed")
		_, err = get(func(o *minio.GetObjectOptions) error { return o.SetMatchETagExcept(etag) })
		expectMinioErr(t, "If-None-Match current ETag", err, 304, "")
		if got, err := get(func(o *minio.GetObjectOptions) error { return o.SetMatchETagExcept("0123456789abcdef0123456789abcdef") }); err != nil || !bytes.Equal(got, data) {
			t.Errorf("If-None-Match other ETag: %q, %v; want the body", got, err)
		}
		_, err = get(func(o *minio.GetObjectOptions) error { return o.SetModified(lm.Add(time.Hour)) })
		expectMinioErr(t, "If-Modified-Since after Last-Modified", err, 304, "")
		if got, err := get(func(o *minio.GetObjectOptions) error { return o.SetModified(lm.Add(-time.Hour)) }); err != nil || !bytes.Equal(got, data) {
			t.Errorf("If-Modified-Since before Last-Modified: %q, %v; want the body", got, err)
		}
		_, err = get(func(o *minio.GetObjectOptions) error { return o.SetUnmodified(lm.Add(-time.Hour)) })
		expectMinioErr(t, "If-Unmodified-Since before Last-Modified", err, 412, "PreconditionFailed")
		if got, err := get(func(o *minio.GetObjectOptions) error { return o.SetUnmodified(lm.Add(time.Hour)) }); err != nil || !bytes.Equal(got, data) {
			t.Errorf("If-Unmodified-Since after Last-Modified: %q, %v; want the body", got, err)
		}
		// S3 (RFC 9110): If-Match true + If-Unmodified-Since false -> 200;
		// If-None-Match false + If-Modified-Since true -> 304.
		if got, err := get(func(o *minio.GetObjectOptions) error {
			_ = o.SetMatchETag(etag)
			return o.SetUnmodified(lm.Add(-time.Hour))
		}); err != nil || !bytes.Equal(got, data) {
			t.Errorf("If-Match true with If-Unmodified-Since false: %v; want 200 (S3 ignores If-Unmodified-Since when If-Match holds)", err)
		}
		_, err = get(func(o *minio.GetObjectOptions) error {
			_ = o.SetMatchETagExcept(etag)
			return o.SetModified(lm.Add(-time.Hour))
		})
		expectMinioErr(t, "If-None-Match false with If-Modified-Since true", err, 304, "")
		// Conditional HEAD behaves the same.
		so := minio.StatObjectOptions{}
		_ = so.SetMatchETag("0123456789abcdef0123456789abcdef")
		_, err = mc.StatObject(ctx, b, "c", so)
		expectMinioErr(t, "StatObject If-Match other ETag", err, 412, "")
	})

	t.Run("PresignedURLs", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		data := []byte(`{"presigned": true}`)
		key := "pre/signed obj+1.json"
		if _, err := mc.PutObject(ctx, b, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ContentType: "application/json"}); err != nil {
			t.Fatal(err)
		}
		// Presigned GET with response-* overrides.
		params := url.Values{
			"response-content-type":        {"text/x-override"},
			"response-content-disposition": {`attachment; filename="x.json"`},
			"response-cache-control":       {"no-store"},
		}
		u, err := mc.PresignedGetObject(ctx, b, key, time.Minute, params)
		if err != nil {
			t.Fatal(err)
		}
		r := plainHTTP(t, "GET", u.String(), nil)
		if r.Status != 200 || !bytes.Equal(r.Body, data) {
			t.Fatalf("presigned GET: %s", r)
		}
		if ct := r.Header.Get("Content-Type"); ct != "text/x-override" {
			t.Errorf("presigned GET with response-content-type: Content-Type %q, want text/x-override", ct)
		}
		if cd := r.Header.Get("Content-Disposition"); cd != `attachment; filename="x.json"` {
			t.Errorf("response-content-disposition: Content-Disposition %q", cd)
		}
		if cc := r.Header.Get("Cache-Control"); cc != "no-store" {
			t.Errorf("response-cache-control: Cache-Control %q", cc)
		}
		// Without overrides the stored type comes back.
		u, _ = mc.PresignedGetObject(ctx, b, key, time.Minute, nil)
		if r := plainHTTP(t, "GET", u.String(), nil); r.Status != 200 || r.Header.Get("Content-Type") != "application/json" {
			t.Errorf("presigned GET: %s, Content-Type %q", r, r.Header.Get("Content-Type"))
		}
		// Presigned HEAD.
		u, _ = mc.PresignedHeadObject(ctx, b, key, time.Minute, nil)
		if r := plainHTTP(t, "HEAD", u.String(), nil); r.Status != 200 || r.Header.Get("Content-Length") != "19" {
			t.Errorf("presigned HEAD: %s, Content-Length %q", r, r.Header.Get("Content-Length"))
		}
		// A presigned GET used for another key is refused.
		u, _ = mc.PresignedGetObject(ctx, b, key, time.Minute, nil)
		other := strings.Replace(u.String(), "obj%2B1", "obj%2B2", 1)
		if r := plainHTTP(t, "GET", other, nil); r.Status != 403 || r.errorDoc().Code != "SignatureDoesNotMatch" {
			t.Errorf("presigned GET for another key: %s, want 403 SignatureDoesNotMatch", r)
		}

		// Presigned PUT through plain net/http.
		up := randomBytes(300 * 1024)
		pu, err := mc.PresignedPutObject(ctx, b, "uploaded/via presign.bin", time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		if r := plainHTTP(t, "PUT", pu.String(), up); r.Status != 200 {
			t.Fatalf("presigned PUT: %s", r)
		} else if et := strings.Trim(r.Header.Get("ETag"), `"`); et != md5Hex(up) {
			t.Errorf("presigned PUT ETag %q, want %q", et, md5Hex(up))
		}
		if got := minioGet(t, mc, b, "uploaded/via presign.bin", minio.GetObjectOptions{}); !bytes.Equal(got, up) {
			t.Errorf("object uploaded by presigned PUT differs (%d bytes, want %d)", len(got), len(up))
		}
	})

	t.Run("PresignedExpiry", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		if _, err := mc.PutObject(ctx, b, "k", strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		// Signed an hour ago, valid for a minute: long expired.
		past := srv.presignRaw(t, "GET", b, "k", "", time.Now().Add(-time.Hour), time.Minute)
		r := plainHTTP(t, "GET", past, nil)
		expectError(t, "GET with a presigned URL that expired an hour ago", r, 403, "AccessDenied")
		// The same signing path, valid now, works (so the 403 was expiry).
		fresh := srv.presignRaw(t, "GET", b, "k", "", time.Now(), time.Minute)
		if r := plainHTTP(t, "GET", fresh, nil); r.Status != 200 || string(r.Body) != "x" {
			t.Errorf("GET with a fresh presigned URL: %s", r)
		}
		// minio-go with a 1 s expiry, used after it has passed.
		u, err := mc.PresignedGetObject(ctx, b, "k", time.Second, nil)
		if err != nil {
			t.Fatal(err)
		}
		u2, _ := mc.PresignedPutObject(ctx, b, "k2", time.Second)
		time.Sleep(2100 * time.Millisecond)
		expectError(t, "GET with a presigned URL after its 1s expiry", plainHTTP(t, "GET", u.String(), nil), 403, "AccessDenied")
		expectError(t, "PUT with a presigned URL after its 1s expiry", plainHTTP(t, "PUT", u2.String(), []byte("late")), 403, "AccessDenied")
		if st := srv.objectStatus(t, b, "k2"); st != 404 {
			t.Errorf("expired presigned PUT stored the object (HEAD %d)", st)
		}
	})

	t.Run("StreamUnknownLength", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 2*time.Minute)
		b := newBucket(t)
		data := randomBytes(12 * 1024 * 1024)
		// Size -1 and a reader that cannot seek: minio-go streams it as a
		// multipart upload in PartSize parts.
		info, err := mc.PutObject(ctx, b, "stream.bin", nonSeekable{bytes.NewReader(data)}, -1,
			minio.PutObjectOptions{PartSize: 5 << 20, ContentType: "application/x-stream"})
		if err != nil {
			t.Fatalf("PutObject of unknown length (multipart): %v", err)
		}
		if info.Size != int64(len(data)) {
			t.Errorf("UploadInfo.Size = %d, want %d", info.Size, len(data))
		}
		st, err := mc.StatObject(ctx, b, "stream.bin", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.Size != int64(len(data)) || st.ContentType != "application/x-stream" {
			t.Errorf("StatObject = size %d type %q", st.Size, st.ContentType)
		}
		if !strings.HasSuffix(st.ETag, "-3") {
			t.Errorf("multipart ETag %q, want the S3 form md5-of-md5s-3", st.ETag)
		}
		if got := minioGet(t, mc, b, "stream.bin", minio.GetObjectOptions{}); sha256Hex(got) != sha256Hex(data) {
			t.Errorf("streamed object: SHA-256 differs (%d bytes)", len(got))
		}
	})

	t.Run("RemoveObjects", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		var keys []string
		for i := 0; i < 30; i++ {
			k := "rm/" + fmt.Sprintf("%c-%03d", 'a'+i%26, i) + []string{"", " sp", "+plus", "&amp"}[i%4]
			keys = append(keys, k)
			if _, err := mc.PutObject(ctx, b, k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{}); err != nil {
				t.Fatal(err)
			}
		}
		slices.Sort(keys)
		ch := make(chan minio.ObjectInfo)
		go func() {
			defer close(ch)
			for _, k := range keys[:20] {
				ch <- minio.ObjectInfo{Key: k}
			}
			ch <- minio.ObjectInfo{Key: "rm/not-there"} // S3 reports it deleted too
		}()
		for e := range mc.RemoveObjects(ctx, b, ch, minio.RemoveObjectsOptions{}) {
			t.Errorf("RemoveObjects: %s: %v", e.ObjectName, e.Err)
		}
		left := listAllMinio(t, mc, b, minio.ListObjectsOptions{Prefix: "rm/", Recursive: true})
		if !slices.Equal(left, keys[20:]) {
			t.Errorf("after RemoveObjects: %d keys left %q, want %q", len(left), left, keys[20:])
		}

		// Quiet mode (raw): success entries are left out of the result.
		body := `<Delete><Quiet>true</Quiet>`
		for _, k := range keys[20:25] {
			body += "<Object><Key>" + xmlEscape(k) + "</Key></Object>"
		}
		body += "</Delete>"
		r := srv.do(t, rawReq{Method: "POST", Bucket: b, Query: "delete", Body: []byte(body),
			Header: http.Header{"Content-Md5": {contentMD5([]byte(body))}}})
		if r.Status != 200 {
			t.Fatalf("DeleteObjects quiet: %s", r)
		}
		if bytes.Contains(r.Body, []byte("<Deleted>")) || bytes.Contains(r.Body, []byte("<Error>")) {
			t.Errorf("DeleteObjects quiet answered %s, want a DeleteResult with no Deleted entries", r.Body)
		}
		left = listAllMinio(t, mc, b, minio.ListObjectsOptions{Prefix: "rm/", Recursive: true})
		if !slices.Equal(left, keys[25:]) {
			t.Errorf("after quiet delete: keys left %q, want %q", left, keys[25:])
		}
		// Verbose mode (raw): every key is reported, missing ones too.
		body = `<Delete><Object><Key>` + xmlEscape(keys[25]) + `</Key></Object><Object><Key>rm/ghost</Key></Object></Delete>`
		r = srv.do(t, rawReq{Method: "POST", Bucket: b, Query: "delete", Body: []byte(body),
			Header: http.Header{"Content-Md5": {contentMD5([]byte(body))}}})
		if r.Status != 200 || bytes.Count(r.Body, []byte("<Deleted>")) != 2 {
			t.Errorf("DeleteObjects verbose: %s, want two Deleted entries", r)
		}
	})

	t.Run("CopyObject", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		b2 := newBucket(t)
		data := randomBytes(1500 * 1024) // two chunks
		_, err := mc.PutObject(ctx, b, "src/obj 1", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
			ContentType: "image/x-test", CacheControl: "max-age=60",
			UserMetadata: map[string]string{"Origin": "source", "Color": "blue"},
		})
		if err != nil {
			t.Fatal(err)
		}
		// COPY directive: the source's metadata and headers come along.
		if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: b2, Object: "dst/copied+1"},
			minio.CopySrcOptions{Bucket: b, Object: "src/obj 1"}); err != nil {
			t.Fatalf("CopyObject (COPY): %v", err)
		}
		st, err := mc.StatObject(ctx, b2, "dst/copied+1", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.Size != int64(len(data)) || st.ETag != md5Hex(data) || st.ContentType != "image/x-test" ||
			st.UserMetadata["Origin"] != "source" || st.UserMetadata["Color"] != "blue" || st.Metadata.Get("Cache-Control") != "max-age=60" {
			t.Errorf("copy (COPY) = size %d etag %q type %q meta %v cache %q", st.Size, st.ETag, st.ContentType, st.UserMetadata, st.Metadata.Get("Cache-Control"))
		}
		if got := minioGet(t, mc, b2, "dst/copied+1", minio.GetObjectOptions{}); sha256Hex(got) != sha256Hex(data) {
			t.Errorf("copied content differs")
		}
		// REPLACE directive: only the new metadata.
		if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: b, Object: "dst/replaced",
			ReplaceMetadata: true, UserMetadata: map[string]string{"Fresh": "yes"}, ContentType: "text/x-new"},
			minio.CopySrcOptions{Bucket: b, Object: "src/obj 1"}); err != nil {
			t.Fatalf("CopyObject (REPLACE): %v", err)
		}
		st, err = mc.StatObject(ctx, b, "dst/replaced", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.ContentType != "text/x-new" || st.UserMetadata["Fresh"] != "yes" || st.UserMetadata["Origin"] != "" || st.UserMetadata["Color"] != "" {
			t.Errorf("copy (REPLACE) = type %q meta %v; want text/x-new and only Fresh=yes", st.ContentType, st.UserMetadata)
		}
		// Copying an object onto itself is allowed only with REPLACE.
		if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: b, Object: "src/obj 1", ReplaceMetadata: true,
			UserMetadata: map[string]string{"Origin": "rewritten"}}, minio.CopySrcOptions{Bucket: b, Object: "src/obj 1"}); err != nil {
			t.Errorf("self-copy with REPLACE: %v", err)
		} else if st, err := mc.StatObject(ctx, b, "src/obj 1", minio.StatObjectOptions{}); err != nil || st.UserMetadata["Origin"] != "rewritten" || st.Size != int64(len(data)) {
			t.Errorf("after self-copy with REPLACE: %v meta %v size %d", err, st.UserMetadata, st.Size)
		}
		_, err = mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: b, Object: "src/obj 1"}, minio.CopySrcOptions{Bucket: b, Object: "src/obj 1"})
		expectMinioErr(t, "self-copy without changing anything", err, 400, "InvalidRequest")
		// Copy of a missing source.
		_, err = mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: b, Object: "x"}, minio.CopySrcOptions{Bucket: b, Object: "no/such"})
		expectMinioErr(t, "copy of a missing source", err, 404, "NoSuchKey")
		// Conditional copy.
		_, err = mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: b, Object: "x"}, minio.CopySrcOptions{Bucket: b, Object: "dst/replaced", MatchETag: "0123456789abcdef0123456789abcdef"})
		expectMinioErr(t, "copy with x-amz-copy-source-if-match other ETag", err, 412, "PreconditionFailed")
	})

	t.Run("StoredHeadersAndMetadata", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		expires := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
		data := []byte("not really gzip")
		_, err := mc.PutObject(ctx, b, "headers", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{
			ContentType:        "text/csv; charset=utf-8",
			ContentEncoding:    "gzip",
			ContentDisposition: `attachment; filename="report.csv"`,
			ContentLanguage:    "de-CH",
			CacheControl:       "public, max-age=3600",
			Expires:            expires,
			UserMetadata:       map[string]string{"Project": "ringstore", "multi-word-name": "two words", "empty-ish": "-"},
		})
		if err != nil {
			t.Fatalf("PutObject with headers: %v", err)
		}
		want := map[string]string{
			"Content-Type":               "text/csv; charset=utf-8",
			"Content-Encoding":           "gzip",
			"Content-Disposition":        `attachment; filename="report.csv"`,
			"Content-Language":           "de-CH",
			"Cache-Control":              "public, max-age=3600",
			"Expires":                    expires.Format(http.TimeFormat),
			"X-Amz-Meta-Project":         "ringstore",
			"X-Amz-Meta-Multi-Word-Name": "two words",
			"X-Amz-Meta-Empty-Ish":       "-",
		}
		for _, method := range []string{"GET", "HEAD"} {
			r := srv.do(t, rawReq{Method: method, Bucket: b, Key: "headers"})
			if r.Status != 200 {
				t.Fatalf("%s: %s", method, r)
			}
			for k, v := range want {
				if got := r.Header.Get(k); got != v {
					t.Errorf("%s: %s = %q, want %q", method, k, got, v)
				}
			}
			if method == "GET" && !bytes.Equal(r.Body, data) {
				t.Errorf("GET body = %q (the stored bytes must come back as stored, encoding untouched)", r.Body)
			}
			if et := r.Header.Get("ETag"); et != `"`+md5Hex(data)+`"` {
				t.Errorf("%s: ETag %q, want quoted MD5", method, et)
			}
			if lm, err := http.ParseTime(r.Header.Get("Last-Modified")); err != nil || time.Since(lm) > time.Hour {
				t.Errorf("%s: Last-Modified %q", method, r.Header.Get("Last-Modified"))
			}
			if r.Header.Get("Accept-Ranges") != "bytes" {
				t.Errorf("%s: Accept-Ranges %q, want bytes", method, r.Header.Get("Accept-Ranges"))
			}
		}
		st, err := mc.StatObject(ctx, b, "headers", minio.StatObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		if st.UserMetadata["Project"] != "ringstore" || st.UserMetadata["Multi-Word-Name"] != "two words" || !st.Expires.Equal(expires) {
			t.Errorf("StatObject user metadata %v expires %v", st.UserMetadata, st.Expires)
		}
		// Metadata at exactly 2 KiB is accepted; over it, MetadataTooLarge.
		ok := map[string]string{"k": strings.Repeat("v", 2048-1)}
		if _, err := mc.PutObject(ctx, b, "meta-2k", strings.NewReader("x"), 1, minio.PutObjectOptions{UserMetadata: ok}); err != nil {
			t.Errorf("PutObject with 2 KiB of user metadata: %v", err)
		}
		big := map[string]string{"a": strings.Repeat("v", 1100), "b": strings.Repeat("w", 1100)}
		_, err = mc.PutObject(ctx, b, "meta-big", strings.NewReader("x"), 1, minio.PutObjectOptions{UserMetadata: big})
		expectMinioErr(t, "PutObject with 2.2 KiB of user metadata", err, 400, "MetadataTooLarge")
		if st := srv.objectStatus(t, b, "meta-big"); st != 404 {
			t.Errorf("refused PutObject stored the object (HEAD %d)", st)
		}
	})

	t.Run("KeyLimits", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		k1024 := strings.Repeat("k", 1020) + "/end"
		if _, err := mc.PutObject(ctx, b, k1024, strings.NewReader("x"), 1, minio.PutObjectOptions{}); err != nil {
			t.Errorf("PutObject with a 1024-byte key: %v", err)
		}
		// minio-go refuses longer keys itself, so these go raw.
		k1025 := strings.Repeat("k", 1021) + "/end"
		expectError(t, "PUT with a 1025-byte key", srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: k1025, Body: []byte("x")}), 400, "KeyTooLongError")
		// Multi-byte: 342 x "€" (3 bytes) = 1026 bytes, 342 characters.
		expectError(t, "PUT with a 1026-byte UTF-8 key", srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: strings.Repeat("€", 342), Body: []byte("x")}), 400, "KeyTooLongError")
		if keys := listAllMinio(t, mc, b, minio.ListObjectsOptions{Recursive: true}); len(keys) != 1 || keys[0] != k1024 {
			t.Errorf("bucket lists %d keys, want just the 1024-byte one", len(keys))
		}
	})

	t.Run("InvalidBucketNames", func(t *testing.T) {
		t.Parallel()
		for _, name := range []string{"A", "ab", "-abc", "abc-", "a..b", "192.168.1.1", "Abc", "a_b", "abc.", ".abc",
			"a-.b", "a.-b", strings.Repeat("a", 64), "xn--abc", "abc-s3alias"} {
			r := srv.do(t, rawReq{Method: "PUT", Bucket: name})
			expectError(t, "CreateBucket "+name, r, 400, "InvalidBucketName")
		}
		for _, name := range []string{"abc", "a.b-c", "1-2-3", strings.Repeat("a", 63), "my.bucket.name"} {
			r := srv.do(t, rawReq{Method: "PUT", Bucket: name})
			if r.Status != 200 {
				t.Errorf("CreateBucket %q (a valid name): %s", name, r)
			}
			srv.do(t, rawReq{Method: "DELETE", Bucket: name})
		}
	})

	t.Run("BadCredentials", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		_, err := minioClientWith(t, srv, "NOSUCHACCESSKEY00000", testSecretKey).ListBuckets(ctx)
		expectMinioErr(t, "ListBuckets with an unknown access key", err, 403, "InvalidAccessKeyId")
		_, err = minioClientWith(t, srv, testAccessKey, "wrong-secret-key-wrong-secret-key-wrong0").ListBuckets(ctx)
		expectMinioErr(t, "ListBuckets with a wrong secret", err, 403, "SignatureDoesNotMatch")
		b := newBucket(t)
		_, err = minioClientWith(t, srv, testAccessKey, "wrong-secret").PutObject(ctx, b, "k", strings.NewReader("x"), 1, minio.PutObjectOptions{})
		expectMinioErr(t, "PutObject with a wrong secret", err, 403, "SignatureDoesNotMatch")
		if st := srv.objectStatus(t, b, "k"); st != 404 {
			t.Errorf("PutObject with a wrong secret stored the object (HEAD %d)", st)
		}
	})

	t.Run("Tagging", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		if _, err := mc.PutObject(ctx, b, "tagged", strings.NewReader("x"), 1, minio.PutObjectOptions{UserTags: map[string]string{"stage": "put"}}); err != nil {
			t.Fatal(err)
		}
		tg, err := mc.GetObjectTagging(ctx, b, "tagged", minio.GetObjectTaggingOptions{})
		if err != nil || tg.ToMap()["stage"] != "put" {
			t.Errorf("GetObjectTagging after PutObject with tags = %v, %v", tg, err)
		}
		nt, _ := tags.NewTags(map[string]string{"team": "storage", "env": "test run"}, true)
		if err := mc.PutObjectTagging(ctx, b, "tagged", nt, minio.PutObjectTaggingOptions{}); err != nil {
			t.Fatalf("PutObjectTagging: %v", err)
		}
		tg, err = mc.GetObjectTagging(ctx, b, "tagged", minio.GetObjectTaggingOptions{})
		if err != nil || len(tg.ToMap()) != 2 || tg.ToMap()["env"] != "test run" {
			t.Errorf("GetObjectTagging = %v, %v; want team and env", tg, err)
		}
		if err := mc.RemoveObjectTagging(ctx, b, "tagged", minio.RemoveObjectTaggingOptions{}); err != nil {
			t.Errorf("RemoveObjectTagging: %v", err)
		}
		if tg, err := mc.GetObjectTagging(ctx, b, "tagged", minio.GetObjectTaggingOptions{}); err != nil || len(tg.ToMap()) != 0 {
			t.Errorf("GetObjectTagging after remove = %v, %v; want none", tg, err)
		}
		_, err = mc.GetObjectTagging(ctx, b, "untagged-missing", minio.GetObjectTaggingOptions{})
		expectMinioErr(t, "GetObjectTagging of a missing key", err, 404, "NoSuchKey")
	})
}

// minioGet reads a whole object.
func minioGet(t *testing.T, mc *minio.Client, bucket, key string, o minio.GetObjectOptions) []byte {
	t.Helper()
	obj, err := mc.GetObject(testCtx(t, 2*time.Minute), bucket, key, o)
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	defer obj.Close()
	b, err := io.ReadAll(obj)
	if err != nil {
		t.Fatalf("GetObject %s: %v", key, err)
	}
	return b
}

// listAllMinio returns the sorted keys and prefixes a minio-go listing
// yields.
func listAllMinio(t *testing.T, mc *minio.Client, bucket string, o minio.ListObjectsOptions) []string {
	t.Helper()
	var out []string
	for oi := range mc.ListObjects(testCtx(t, time.Minute), bucket, o) {
		if oi.Err != nil {
			t.Fatalf("ListObjects %s: %v", bucket, oi.Err)
		}
		out = append(out, oi.Key)
	}
	slices.Sort(out)
	return out
}

// plainHTTP sends an unsigned request (a presigned URL) with net/http.
func plainHTTP(t *testing.T, method, u string, body []byte) rawResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	return doHTTP(t, r)
}

func xmlEscape(s string) string {
	var buf bytes.Buffer
	_ = xml.EscapeText(&buf, []byte(s))
	return buf.String()
}
