// awssdk_test.go: aws-sdk-go-v2 (service/s3) against ringstore.
//
// Goal: the SDK works with its DEFAULT settings, in particular its default
// request checksums (CRC32 on every PutObject and on operations that require
// a checksum, such as DeleteObjects, sent as x-amz-checksum-* headers over
// HTTP and as aws-chunked trailers over HTTPS), and gets S3's answers: bucket
// operations, put/get/head/delete, copy, ListObjectsV2 (paginator) and V1
// pages, DeleteObjects, 404s, conditional GET (304/412) and PUT
// (If-None-Match "*", If-Match), ranges (206 with Content-Range, 416),
// explicit CRC32C/SHA256 checksums returned with ChecksumMode ENABLED,
// presigned GET/PUT, and virtual-hosted-style addressing.
//
// Method: s3.New with only endpoint, path style, region and static
// credentials set; a recording transport shows what went on the wire. The
// HTTPS path runs through a TLS-terminating reverse proxy (tlsFront) in
// front of the plain-HTTP server. Virtual-hosted style uses a server started
// with --domain s3.local.test and a dialer that sends every host name to it.
package integration

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
)

// awsErr returns the HTTP status and S3 error code of an SDK error.
func awsErr(err error) (int, string) {
	status, code := 0, ""
	var re *awshttp.ResponseError
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	return status, code
}

func expectAWSErr(t *testing.T, what string, err error, status int, code string) {
	t.Helper()
	if err == nil {
		t.Errorf("%s: succeeded, want %d %s", what, status, code)
		return
	}
	gs, gc := awsErr(err)
	if gs != status || (code != "" && gc != code) {
		t.Errorf("%s: got status %d code %q (%v), want %d %s", what, gs, gc, err, status, code)
	}
}

func b64crc32(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.ChecksumIEEE(b)))
}

func b64crc32c(b []byte) string {
	return base64.StdEncoding.EncodeToString(binary.BigEndian.AppendUint32(nil, crc32.Checksum(b, crc32.MakeTable(crc32.Castagnoli))))
}

func b64sha256(b []byte) string {
	s := sha256.Sum256(b)
	return base64.StdEncoding.EncodeToString(s[:])
}

func awsGet(t *testing.T, c *s3.Client, in *s3.GetObjectInput) ([]byte, *s3.GetObjectOutput) {
	t.Helper()
	out, err := c.GetObject(testCtx(t, 2*time.Minute), in)
	if err != nil {
		t.Fatalf("GetObject %s: %v", aws.ToString(in.Key), err)
	}
	defer out.Body.Close()
	b, err := io.ReadAll(out.Body)
	if err != nil {
		t.Fatalf("GetObject %s: reading: %v", aws.ToString(in.Key), err)
	}
	return b, out
}

func TestAWSSDK(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ServerOptions{})
	c, _ := awsClient(t, srv, awsOptions{})

	newBucket := func(t *testing.T, c *s3.Client) string {
		t.Helper()
		b := bucketName(t)
		if _, err := c.CreateBucket(testCtx(t, time.Minute), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("CreateBucket %s: %v", b, err)
		}
		return b
	}

	t.Run("Buckets", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := bucketName(t)
		_, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)})
		var nf *types.NotFound
		if !errors.As(err, &nf) {
			t.Errorf("HeadBucket before create: %v, want NotFound", err)
		}
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("CreateBucket: %v", err)
		}
		hb, err := c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)})
		if err != nil {
			t.Errorf("HeadBucket: %v", err)
		} else if aws.ToString(hb.BucketRegion) != testRegion {
			t.Errorf("HeadBucket x-amz-bucket-region = %q, want %q", aws.ToString(hb.BucketRegion), testRegion)
		}
		_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)})
		var owned *types.BucketAlreadyOwnedByYou
		if !errors.As(err, &owned) {
			t.Errorf("CreateBucket twice: %v, want BucketAlreadyOwnedByYou", err)
		}
		// A LocationConstraint naming another region is refused.
		_, err = c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b + "-eu"),
			CreateBucketConfiguration: &types.CreateBucketConfiguration{LocationConstraint: types.BucketLocationConstraintEuWest1}})
		expectAWSErr(t, "CreateBucket with LocationConstraint eu-west-1 on a us-east-1 endpoint", err, 400, "IllegalLocationConstraintException")
		lb, err := c.ListBuckets(ctx, &s3.ListBucketsInput{})
		if err != nil {
			t.Fatalf("ListBuckets: %v", err)
		}
		if !slices.ContainsFunc(lb.Buckets, func(x types.Bucket) bool { return aws.ToString(x.Name) == b }) {
			t.Errorf("ListBuckets does not list %s", b)
		}
		if lb.Owner == nil || aws.ToString(lb.Owner.ID) == "" {
			t.Errorf("ListBuckets has no Owner ID")
		}
		loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(b)})
		if err != nil || loc.LocationConstraint != "" {
			t.Errorf("GetBucketLocation = %q, %v; want \"\" (us-east-1)", loc.LocationConstraint, err)
		}
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(b),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
			t.Errorf("PutBucketVersioning: %v", err)
		}
		if v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(b)}); err != nil || v.Status != types.BucketVersioningStatusEnabled {
			t.Errorf("GetBucketVersioning = %q, %v; want Enabled", v.Status, err)
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("k"), Body: strings.NewReader("x")}); err != nil {
			t.Fatal(err)
		}
		_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b)})
		expectAWSErr(t, "DeleteBucket of a non-empty bucket", err, 409, "BucketNotEmpty")
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("k")}); err != nil {
			t.Fatal(err)
		}
		// With versioning on, the object's old version keeps the bucket
		// non-empty in S3; suspend and check the plain case on a fresh one.
		b2 := newBucket(t, c)
		if _, err := c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b2)}); err != nil {
			t.Errorf("DeleteBucket: %v", err)
		}
		_, err = c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b2)})
		if !errors.As(err, &nf) {
			t.Errorf("HeadBucket after delete: %v, want NotFound", err)
		}
		_, err = c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b2)})
		var nsb *types.NoSuchBucket
		if s, code := awsErr(err); s != 404 || code != "NoSuchBucket" {
			t.Errorf("DeleteBucket of a missing bucket: %v, want 404 NoSuchBucket", err)
		}
		_, err = c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b2)})
		if !errors.As(err, &nsb) {
			t.Errorf("ListObjectsV2 of a missing bucket: %v, want NoSuchBucket", err)
		}
	})

	t.Run("Objects", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		c, wire := awsClient(t, srv, awsOptions{}) // its own wire log
		b := newBucket(t, c)
		data := randomBytes(2*1024*1024 + 77)
		put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("obj/one two+three"),
			Body: bytes.NewReader(data), ContentType: aws.String("application/x-one"),
			Metadata: map[string]string{"owner": "sdk", "Mixed-Case": "Value"}})
		if err != nil {
			t.Fatalf("PutObject: %v", err)
		}
		if got := aws.ToString(put.ETag); got != `"`+md5Hex(data)+`"` {
			t.Errorf("PutObject ETag %s, want quoted MD5", got)
		}
		// The SDK's default: a CRC32 checksum of the body in a header over
		// plain HTTP, which S3 verifies, keeps and returns.
		if h := wire.last(); h.Get("X-Amz-Checksum-Crc32") == "" {
			t.Errorf("SDK default PutObject carried no x-amz-checksum-crc32 (headers %v): the default-checksum path is not exercised", h)
		}
		if aws.ToString(put.ChecksumCRC32) != b64crc32(data) {
			t.Errorf("PutObject response x-amz-checksum-crc32 = %q, want %q", aws.ToString(put.ChecksumCRC32), b64crc32(data))
		}
		got, out := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("obj/one two+three"), ChecksumMode: types.ChecksumModeEnabled})
		if sha256Hex(got) != sha256Hex(data) {
			t.Errorf("GetObject content differs")
		}
		if aws.ToString(out.ContentType) != "application/x-one" || out.Metadata["owner"] != "sdk" || out.Metadata["mixed-case"] != "Value" {
			t.Errorf("GetObject type %q metadata %v", aws.ToString(out.ContentType), out.Metadata)
		}
		if aws.ToString(out.ChecksumCRC32) != b64crc32(data) {
			t.Errorf("GetObject ChecksumMode=ENABLED: x-amz-checksum-crc32 = %q, want %q (the SDK's default CRC32)", aws.ToString(out.ChecksumCRC32), b64crc32(data))
		}
		head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("obj/one two+three")})
		if err != nil || aws.ToInt64(head.ContentLength) != int64(len(data)) || aws.ToString(head.ETag) != `"`+md5Hex(data)+`"` {
			t.Errorf("HeadObject = %v %v, %v", aws.ToInt64(head.ContentLength), aws.ToString(head.ETag), err)
		}
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("obj/one two+three")}); err != nil {
			t.Fatalf("DeleteObject: %v", err)
		}
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("obj/one two+three")})
		var nf *types.NotFound
		if !errors.As(err, &nf) {
			t.Errorf("HeadObject after delete: %v, want NotFound (404)", err)
		}
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("obj/one two+three")})
		var nsk *types.NoSuchKey
		if !errors.As(err, &nsk) {
			t.Errorf("GetObject after delete: %v, want NoSuchKey", err)
		}
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("never")}); err != nil {
			t.Errorf("DeleteObject of a missing key: %v, want 204", err)
		}
		// Empty body.
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("empty"), Body: bytes.NewReader(nil)}); err != nil {
			t.Errorf("PutObject empty: %v", err)
		} else if got, _ := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("empty")}); len(got) != 0 {
			t.Errorf("empty object has %d bytes", len(got))
		}
	})

	t.Run("Checksums", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t, c)
		data := randomBytes(1<<20 + 4321)
		for _, alg := range []types.ChecksumAlgorithm{types.ChecksumAlgorithmCrc32c, types.ChecksumAlgorithmSha256, types.ChecksumAlgorithmCrc32} {
			key := "sum-" + string(alg)
			put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String(key), Body: bytes.NewReader(data), ChecksumAlgorithm: alg})
			if err != nil {
				t.Errorf("PutObject ChecksumAlgorithm %s: %v", alg, err)
				continue
			}
			want := map[types.ChecksumAlgorithm]string{types.ChecksumAlgorithmCrc32c: b64crc32c(data), types.ChecksumAlgorithmSha256: b64sha256(data), types.ChecksumAlgorithmCrc32: b64crc32(data)}[alg]
			pick := func(crc32, crc32c, sha *string) string {
				switch alg {
				case types.ChecksumAlgorithmCrc32c:
					return aws.ToString(crc32c)
				case types.ChecksumAlgorithmSha256:
					return aws.ToString(sha)
				}
				return aws.ToString(crc32)
			}
			if g := pick(put.ChecksumCRC32, put.ChecksumCRC32C, put.ChecksumSHA256); g != want {
				t.Errorf("PutObject %s: response checksum %q, want %q", alg, g, want)
			}
			got, out := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if !bytes.Equal(got, data) {
				t.Errorf("GetObject %s: content differs", key)
			}
			if g := pick(out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumSHA256); g != want {
				t.Errorf("GetObject ChecksumMode=ENABLED after %s put: checksum %q, want %q", alg, g, want)
			}
			ho, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String(key), ChecksumMode: types.ChecksumModeEnabled})
			if err != nil {
				t.Errorf("HeadObject: %v", err)
			} else if g := pick(ho.ChecksumCRC32, ho.ChecksumCRC32C, ho.ChecksumSHA256); g != want {
				t.Errorf("HeadObject ChecksumMode=ENABLED after %s put: checksum %q, want %q", alg, g, want)
			}
		}
		// A checksum value that does not match the body: BadDigest, and
		// nothing stored.
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("bad-sum"), Body: bytes.NewReader(data),
			ChecksumCRC32C: aws.String(b64crc32c([]byte("something else")))})
		expectAWSErr(t, "PutObject with a wrong x-amz-checksum-crc32c", err, 400, "BadDigest")
		if st := srv.objectStatus(t, b, "bad-sum"); st != 404 {
			t.Errorf("PutObject with a wrong checksum stored the object (HEAD %d)", st)
		}
	})

	t.Run("TrailingChecksumsOverTLS", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		endpoint, tr := tlsFront(t, srv)
		tc, twire := awsClient(t, srv, awsOptions{Endpoint: endpoint, Transport: tr})
		b := newBucket(t, tc)
		data := randomBytes(3*1024*1024 + 999)
		_, err := tc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("trailer.bin"), Body: bytes.NewReader(data)})
		h := twire.last()
		if h.Get("X-Amz-Trailer") != "x-amz-checksum-crc32" || h.Get("X-Amz-Content-Sha256") != "STREAMING-UNSIGNED-PAYLOAD-TRAILER" {
			t.Errorf("SDK default over TLS sent x-amz-trailer %q, x-amz-content-sha256 %q: the trailer path is not exercised", h.Get("X-Amz-Trailer"), h.Get("X-Amz-Content-Sha256"))
		}
		if err != nil {
			t.Errorf("PutObject over TLS (aws-chunked body with a CRC32 trailer, the SDK default): %v", err)
		} else {
			got, out := awsGet(t, tc, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("trailer.bin"), ChecksumMode: types.ChecksumModeEnabled})
			if sha256Hex(got) != sha256Hex(data) {
				t.Errorf("object uploaded with a trailer: content differs (%d bytes, want %d)", len(got), len(data))
			}
			if aws.ToString(out.ChecksumCRC32) != b64crc32(data) {
				t.Errorf("object uploaded with a trailer: x-amz-checksum-crc32 %q, want %q", aws.ToString(out.ChecksumCRC32), b64crc32(data))
			}
			if ce := aws.ToString(out.ContentEncoding); ce != "" {
				t.Errorf("object uploaded with aws-chunked has Content-Encoding %q, want none (aws-chunked is not stored)", ce)
			}
		}
		// An explicit algorithm and a non-seekable body with a known length.
		_, err = tc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("trailer-c.bin"),
			Body: nonSeekable{bytes.NewReader(data)}, ContentLength: aws.Int64(int64(len(data))),
			ChecksumAlgorithm: types.ChecksumAlgorithmCrc32c, ContentEncoding: aws.String("identity")})
		if err != nil {
			t.Fatalf("PutObject over TLS, non-seekable body, CRC32C trailer: %v", err)
		}
		got, out := awsGet(t, tc, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("trailer-c.bin"), ChecksumMode: types.ChecksumModeEnabled})
		if !bytes.Equal(got, data) || aws.ToString(out.ChecksumCRC32C) != b64crc32c(data) {
			t.Errorf("CRC32C trailer upload: equal=%v checksum %q want %q", bytes.Equal(got, data), aws.ToString(out.ChecksumCRC32C), b64crc32c(data))
		}
		if ce := aws.ToString(out.ContentEncoding); ce != "identity" {
			t.Errorf("Content-Encoding aws-chunked,identity stored as %q, want identity", ce)
		}
		// Everything else works through the proxy too.
		if _, err := tc.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(b), Delete: &types.Delete{
			Objects: []types.ObjectIdentifier{{Key: aws.String("trailer.bin")}, {Key: aws.String("trailer-c.bin")}}}}); err != nil {
			t.Errorf("DeleteObjects over TLS: %v", err)
		}
	})

	t.Run("Copy", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t, c)
		data := randomBytes(1<<20 + 10)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("src/ü key+1"), Body: bytes.NewReader(data),
			Metadata: map[string]string{"a": "1"}, ContentType: aws.String("text/x-src")}); err != nil {
			t.Fatal(err)
		}
		src := b + "/" + url.PathEscape("src/ü key+1")
		cp, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(b), Key: aws.String("dst/copy"), CopySource: aws.String(src)})
		if err != nil {
			t.Fatalf("CopyObject: %v", err)
		}
		if cp.CopyObjectResult == nil || aws.ToString(cp.CopyObjectResult.ETag) != `"`+md5Hex(data)+`"` || cp.CopyObjectResult.LastModified == nil {
			t.Errorf("CopyObjectResult = %+v", cp.CopyObjectResult)
		}
		got, out := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("dst/copy")})
		if !bytes.Equal(got, data) || out.Metadata["a"] != "1" || aws.ToString(out.ContentType) != "text/x-src" {
			t.Errorf("copy (COPY): equal=%v meta %v type %q", bytes.Equal(got, data), out.Metadata, aws.ToString(out.ContentType))
		}
		if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(b), Key: aws.String("dst/replace"), CopySource: aws.String(src),
			MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"b": "2"}, ContentType: aws.String("text/x-dst")}); err != nil {
			t.Fatalf("CopyObject REPLACE: %v", err)
		}
		_, out = awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("dst/replace")})
		if out.Metadata["a"] != "" || out.Metadata["b"] != "2" || aws.ToString(out.ContentType) != "text/x-dst" {
			t.Errorf("copy (REPLACE): meta %v type %q", out.Metadata, aws.ToString(out.ContentType))
		}
		_, err = c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(b), Key: aws.String("dst/x"), CopySource: aws.String(b + "/nope")})
		expectAWSErr(t, "CopyObject of a missing source", err, 404, "NoSuchKey")
	})

	t.Run("ListV2Paginator", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 2*time.Minute)
		b := newBucket(t, c)
		var keys []string
		for i, k := range oddKeys() {
			if i%4 == 0 || strings.HasPrefix(k, "folder") || strings.HasPrefix(k, "ü") {
				keys = append(keys, k)
			}
		}
		putKeys(t, ctx, c, b, keys)
		for _, tc := range []struct{ prefix, delim string }{
			{"", ""}, {"", "/"}, {"ü/", "/"}, {"ü", "/"}, {"", "-"}, {"dir0", "/"}, {"", "日本"}, {"a/b/", "/"},
			{"folder/", "/"}, {"with space/", " "}, {"pct%/", "%"}, {"hash#", "?"}, {"none", "/"},
		} {
			for _, maxKeys := range []int32{1, 37, 1000} {
				if maxKeys == 1 && tc.prefix == "" {
					continue // too many pages
				}
				what := fmt.Sprintf("ListObjectsV2 prefix %q delimiter %q max-keys %d", tc.prefix, tc.delim, maxKeys)
				want := listModel(keys, tc.prefix, tc.delim, "")
				got := awsListV2(t, ctx, c, b, tc.prefix, tc.delim, maxKeys, what)
				compareListing(t, what, want, got)
			}
		}
		// start-after.
		what := "ListObjectsV2 start-after"
		compareListing(t, what, listModel(keys, "", "", keys[len(keys)/3]), awsListV2(t, ctx, c, b, "", "", 50, what, keys[len(keys)/3]))
		// V1 with marker / NextMarker.
		for _, tc := range []struct{ prefix, delim string }{{"", ""}, {"", "/"}, {"ü/", "/"}, {"dir0", "/"}} {
			what := fmt.Sprintf("ListObjects (V1) prefix %q delimiter %q", tc.prefix, tc.delim)
			compareListing(t, what, listModel(keys, tc.prefix, tc.delim, ""), awsListV1(t, ctx, c, b, tc.prefix, tc.delim, 29, what))
		}
		// max-keys=0: S3 answers a page with no keys.
		out, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b), MaxKeys: aws.Int32(0)})
		if err != nil || len(out.Contents) != 0 {
			t.Errorf("ListObjectsV2 max-keys=0: %d keys, %v", len(out.Contents), err)
		}
	})

	t.Run("DeleteObjects", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t, c)
		keys := []string{"d/1", "d/2 two", "d/3+three", "d/4&four", "d/5<five>", "d/ü6"}
		putKeys(t, ctx, c, b, keys)
		ids := func(ks ...string) []types.ObjectIdentifier {
			var out []types.ObjectIdentifier
			for _, k := range ks {
				out = append(out, types.ObjectIdentifier{Key: aws.String(k)})
			}
			return out
		}
		out, err := c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(b), Delete: &types.Delete{Objects: ids("d/1", "d/2 two", "d/5<five>", "d/missing")}})
		if err != nil {
			t.Fatalf("DeleteObjects (the SDK sends a CRC32 checksum, no Content-MD5): %v", err)
		}
		var deleted []string
		for _, d := range out.Deleted {
			deleted = append(deleted, aws.ToString(d.Key))
		}
		slices.Sort(deleted)
		if !slices.Equal(deleted, []string{"d/1", "d/2 two", "d/5<five>", "d/missing"}) || len(out.Errors) != 0 {
			t.Errorf("DeleteObjects: deleted %q errors %v", deleted, out.Errors)
		}
		out, err = c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(b), Delete: &types.Delete{Objects: ids("d/3+three", "d/4&four"), Quiet: aws.Bool(true)}})
		if err != nil || len(out.Deleted) != 0 || len(out.Errors) != 0 {
			t.Errorf("DeleteObjects quiet: %v deleted %d errors %d; want nothing reported", err, len(out.Deleted), len(out.Errors))
		}
		if left := srv.listKeys(t, b, ""); !slices.Equal(left, []string{"d/ü6"}) {
			t.Errorf("keys left %q, want [d/ü6]", left)
		}
	})

	t.Run("ConditionalAndRanges", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t, c)
		data := randomBytes(100)
		put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("r"), Body: bytes.NewReader(data)})
		if err != nil {
			t.Fatal(err)
		}
		etag := aws.ToString(put.ETag)
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("r"), IfNoneMatch: aws.String(etag)})
		expectAWSErr(t, "GetObject If-None-Match current ETag", err, 304, "")
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("r"), IfMatch: aws.String(`"00000000000000000000000000000000"`)})
		expectAWSErr(t, "GetObject If-Match other ETag", err, 412, "PreconditionFailed")
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("r"), IfModifiedSince: aws.Time(time.Now().Add(time.Hour))})
		expectAWSErr(t, "HeadObject If-Modified-Since in the future", err, 304, "")
		_, err = c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("r"), IfUnmodifiedSince: aws.Time(time.Now().Add(-time.Hour))})
		expectAWSErr(t, "HeadObject If-Unmodified-Since an hour ago", err, 412, "")

		got, out := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("r"), Range: aws.String("bytes=10-19")})
		if !bytes.Equal(got, data[10:20]) || aws.ToString(out.ContentRange) != "bytes 10-19/100" || aws.ToInt64(out.ContentLength) != 10 {
			t.Errorf("Range bytes=10-19: %d bytes, Content-Range %q, Content-Length %d", len(got), aws.ToString(out.ContentRange), aws.ToInt64(out.ContentLength))
		}
		got, out = awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("r"), Range: aws.String("bytes=-7")})
		if !bytes.Equal(got, data[93:]) || aws.ToString(out.ContentRange) != "bytes 93-99/100" {
			t.Errorf("Range bytes=-7: %d bytes, Content-Range %q", len(got), aws.ToString(out.ContentRange))
		}
		got, out = awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("r"), Range: aws.String("bytes=95-")})
		if !bytes.Equal(got, data[95:]) || aws.ToString(out.ContentRange) != "bytes 95-99/100" {
			t.Errorf("Range bytes=95-: %d bytes, Content-Range %q", len(got), aws.ToString(out.ContentRange))
		}
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("r"), Range: aws.String("bytes=100-")})
		expectAWSErr(t, "GetObject Range bytes=100- of a 100-byte object", err, 416, "InvalidRange")
		// Raw, to see the status line and headers of the 206 and 416.
		r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "r", Header: http.Header{"Range": {"bytes=0-0"}}})
		if r.Status != 206 || r.Header.Get("Content-Range") != "bytes 0-0/100" || r.Header.Get("Content-Length") != "1" {
			t.Errorf("raw Range bytes=0-0: %d, Content-Range %q, Content-Length %q", r.Status, r.Header.Get("Content-Range"), r.Header.Get("Content-Length"))
		}
		expectError(t, "raw Range bytes=200-300", srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "r", Header: http.Header{"Range": {"bytes=200-300"}}}), 416, "InvalidRange")
	})

	t.Run("ConditionalPut", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t, c)
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("once"), Body: strings.NewReader("first"), IfNoneMatch: aws.String("*")}); err != nil {
			t.Fatalf("PutObject If-None-Match * on a new key: %v", err)
		}
		_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("once"), Body: strings.NewReader("second"), IfNoneMatch: aws.String("*")})
		expectAWSErr(t, "PutObject If-None-Match * on an existing key", err, 412, "PreconditionFailed")
		if got, _ := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("once")}); string(got) != "first" {
			t.Errorf("after a refused conditional PUT the object is %q, want first", got)
		}
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("once"), Body: strings.NewReader("third"), IfMatch: aws.String(`"` + md5Hex([]byte("nope")) + `"`)})
		expectAWSErr(t, "PutObject If-Match other ETag", err, 412, "PreconditionFailed")
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("once"), Body: strings.NewReader("fourth"), IfMatch: aws.String(`"` + md5Hex([]byte("first")) + `"`)}); err != nil {
			t.Errorf("PutObject If-Match current ETag: %v", err)
		}
		if got, _ := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("once")}); string(got) != "fourth" {
			t.Errorf("object is %q, want fourth", got)
		}
		_, err = c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("absent"), Body: strings.NewReader("x"), IfMatch: aws.String(`"` + md5Hex([]byte("x")) + `"`)})
		expectAWSErr(t, "PutObject If-Match on a missing key", err, 404, "NoSuchKey")

		// Racing If-None-Match * writers: exactly one wins.
		var wg sync.WaitGroup
		var mu sync.Mutex
		wins, fails := 0, 0
		for i := 0; i < 8; i++ {
			wg.Add(1)
			go func(i int) {
				defer wg.Done()
				_, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("race"), Body: strings.NewReader(fmt.Sprint(i)), IfNoneMatch: aws.String("*")})
				mu.Lock()
				defer mu.Unlock()
				if err == nil {
					wins++
				} else if s, _ := awsErr(err); s == 412 || s == 409 {
					fails++
				} else {
					t.Errorf("racing conditional PUT: %v", err)
				}
			}(i)
		}
		wg.Wait()
		if wins != 1 {
			t.Errorf("racing If-None-Match * PUTs: %d succeeded (%d refused), want exactly 1", wins, fails)
		}
	})

	t.Run("Presign", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t, c)
		pc := s3.NewPresignClient(c)
		data := randomBytes(70 * 1024)
		pp, err := pc.PresignPutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("pre sign/put+1")}, s3.WithPresignExpires(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		if r := sendPresigned(t, pp.Method, pp.URL, pp.SignedHeader, data); r.Status != 200 {
			t.Fatalf("presigned PUT: %s (URL %s)", r, pp.URL)
		}
		pg, err := pc.PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("pre sign/put+1"),
			ResponseContentType: aws.String("application/x-presigned")}, s3.WithPresignExpires(5*time.Minute))
		if err != nil {
			t.Fatal(err)
		}
		r := sendPresigned(t, pg.Method, pg.URL, pg.SignedHeader, nil)
		if r.Status != 200 || !bytes.Equal(r.Body, data) || r.Header.Get("Content-Type") != "application/x-presigned" {
			t.Errorf("presigned GET: %d, %d bytes, Content-Type %q", r.Status, len(r.Body), r.Header.Get("Content-Type"))
		}
		ph, err := pc.PresignHeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(b), Key: aws.String("pre sign/put+1")})
		if err != nil {
			t.Fatal(err)
		}
		if r := sendPresigned(t, ph.Method, ph.URL, ph.SignedHeader, nil); r.Status != 200 {
			t.Errorf("presigned HEAD: %d", r.Status)
		}
		// A presigned URL whose signature was tampered with.
		bad := strings.Replace(pg.URL, "X-Amz-Signature=", "X-Amz-Signature=0", 1)
		if r := sendPresigned(t, pg.Method, bad, pg.SignedHeader, nil); r.Status != 403 {
			t.Errorf("tampered presigned GET: %s, want 403", r)
		}
	})
}

// sendPresigned sends a presigned request with its signed headers.
func sendPresigned(t *testing.T, method, u string, h http.Header, body []byte) rawResp {
	t.Helper()
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	r, err := http.NewRequest(method, u, rd)
	if err != nil {
		t.Fatal(err)
	}
	for k, vs := range h {
		if strings.EqualFold(k, "host") {
			continue
		}
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	return doHTTP(t, r)
}

// putKeys stores keys (body = key) with 8 workers.
func putKeys(t *testing.T, ctx context.Context, c *s3.Client, bucket string, keys []string) {
	t.Helper()
	ch := make(chan string)
	errs := make(chan error, len(keys))
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range ch {
				if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader(k)}); err != nil {
					errs <- fmt.Errorf("put %q: %w", k, err)
				}
			}
		}()
	}
	for _, k := range keys {
		ch <- k
	}
	close(ch)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// decodeKey undoes encoding-type=url.
func decodeKey(t *testing.T, s string, enc types.EncodingType) string {
	t.Helper()
	if enc != types.EncodingTypeUrl {
		return s
	}
	k, err := url.QueryUnescape(s)
	if err != nil {
		t.Errorf("key %q is not url-encoded: %v", s, err)
	}
	return k
}

// awsListV2 lists through the SDK's ListObjectsV2 paginator with
// encoding-type=url and checks each page: sorted, no more than maxKeys
// entries, KeyCount right, and ordered after the previous page.
func awsListV2(t *testing.T, ctx context.Context, c *s3.Client, bucket, prefix, delim string, maxKeys int32, what string, startAfter ...string) []string {
	t.Helper()
	in := &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(maxKeys), EncodingType: types.EncodingTypeUrl}
	if delim != "" {
		in.Delimiter = aws.String(delim)
	}
	if len(startAfter) > 0 {
		in.StartAfter = aws.String(startAfter[0])
	}
	p := s3.NewListObjectsV2Paginator(c, in)
	var all []string
	for pages := 0; p.HasMorePages(); pages++ {
		if pages > 5000 {
			t.Errorf("%s: more than 5000 pages", what)
			break
		}
		out, err := p.NextPage(ctx)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return all
		}
		var page []string
		for _, o := range out.Contents {
			page = append(page, keyEntry(decodeKey(t, aws.ToString(o.Key), out.EncodingType)))
		}
		for _, cp := range out.CommonPrefixes {
			page = append(page, prefixEntry(decodeKey(t, aws.ToString(cp.Prefix), out.EncodingType)))
		}
		if int32(len(page)) > maxKeys {
			t.Errorf("%s: a page has %d entries, more than max-keys", what, len(page))
		}
		if aws.ToInt32(out.KeyCount) != int32(len(page)) {
			t.Errorf("%s: KeyCount %d, page has %d entries", what, aws.ToInt32(out.KeyCount), len(page))
		}
		if aws.ToBool(out.IsTruncated) && len(page) == 0 {
			t.Errorf("%s: an empty truncated page", what)
		}
		slices.SortFunc(page, func(a, b string) int { return strings.Compare(a[2:], b[2:]) })
		all = append(all, page...)
	}
	if !slices.IsSortedFunc(all, func(a, b string) int { return strings.Compare(a[2:], b[2:]) }) {
		t.Errorf("%s: pages out of order", what)
	}
	return all
}

// awsListV1 lists with ListObjects (V1), following NextMarker (which S3
// returns when a delimiter is given) or else the last key.
func awsListV1(t *testing.T, ctx context.Context, c *s3.Client, bucket, prefix, delim string, maxKeys int32, what string) []string {
	t.Helper()
	var all []string
	marker := ""
	for pages := 0; pages < 5000; pages++ {
		in := &s3.ListObjectsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix), MaxKeys: aws.Int32(maxKeys), EncodingType: types.EncodingTypeUrl}
		if delim != "" {
			in.Delimiter = aws.String(delim)
		}
		if marker != "" {
			in.Marker = aws.String(marker)
		}
		out, err := c.ListObjects(ctx, in)
		if err != nil {
			t.Errorf("%s: %v", what, err)
			return all
		}
		last := ""
		for _, o := range out.Contents {
			last = decodeKey(t, aws.ToString(o.Key), out.EncodingType)
			all = append(all, keyEntry(last))
		}
		for _, cp := range out.CommonPrefixes {
			all = append(all, prefixEntry(decodeKey(t, aws.ToString(cp.Prefix), out.EncodingType)))
		}
		if !aws.ToBool(out.IsTruncated) {
			slices.SortFunc(all, func(a, b string) int { return strings.Compare(a[2:], b[2:]) })
			return all
		}
		if nm := aws.ToString(out.NextMarker); nm != "" {
			marker = decodeKey(t, nm, out.EncodingType)
		} else if delim != "" {
			t.Errorf("%s: truncated page without NextMarker although a delimiter was given", what)
			return all
		} else {
			marker = last
		}
	}
	t.Errorf("%s: too many pages", what)
	return all
}

func TestAWSSDKVirtualHost(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ServerOptions{Domain: "s3.local.test"})
	vc, wire := awsVHostClient(t, srv)
	pathc, _ := awsClient(t, srv, awsOptions{})
	ctx := testCtx(t, time.Minute)
	b := bucketName(t)
	if _, err := vc.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Fatalf("CreateBucket (virtual-hosted): %v", err)
	}
	if h := wire.last().Get(hostHeader); h != b+".s3.local.test:"+srv.Port() {
		t.Errorf("request went to host %q, want %s.s3.local.test:%s (virtual-hosted style not exercised)", h, b, srv.Port())
	}
	if _, err := vc.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Errorf("HeadBucket (virtual-hosted): %v", err)
	}
	data := randomBytes(1<<20 + 5)
	keys := []string{"v/obj 1", "v/ü+2", "v/sub/3", "top"}
	for _, k := range keys {
		if _, err := vc.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String(k), Body: bytes.NewReader(data)}); err != nil {
			t.Fatalf("PutObject %q (virtual-hosted): %v", k, err)
		}
	}
	for _, k := range keys {
		if got, _ := awsGet(t, vc, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(k)}); !bytes.Equal(got, data) {
			t.Errorf("GetObject %q (virtual-hosted): content differs", k)
		}
	}
	// The same objects, path-style, on the same server.
	if got, _ := awsGet(t, pathc, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("v/ü+2")}); !bytes.Equal(got, data) {
		t.Errorf("GetObject path-style on a --domain server: content differs")
	}
	compareListing(t, "ListObjectsV2 (virtual-hosted)", listModel(keys, "v/", "/", ""), awsListV2(t, ctx, vc, b, "v/", "/", 2, "ListObjectsV2 (virtual-hosted)"))
	if _, err := vc.CopyObject(ctx, &s3.CopyObjectInput{Bucket: aws.String(b), Key: aws.String("copy"), CopySource: aws.String(b + "/top")}); err != nil {
		t.Errorf("CopyObject (virtual-hosted): %v", err)
	}
	if _, err := vc.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(b)}); err != nil {
		t.Errorf("GetBucketLocation (virtual-hosted): %v", err)
	}
	// A presigned virtual-hosted URL.
	pg, err := s3.NewPresignClient(vc).PresignGetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("v/obj 1")})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(pg.URL, "://"+b+".s3.local.test") {
		t.Errorf("presigned URL %s is not virtual-hosted", pg.URL)
	}
	req, _ := http.NewRequest("GET", pg.URL, nil)
	hc := &http.Client{Transport: vhostTransport(srv)}
	if resp, err := hc.Do(req); err != nil {
		t.Errorf("presigned virtual-hosted GET: %v", err)
	} else {
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !bytes.Equal(body, data) {
			t.Errorf("presigned virtual-hosted GET: %d, %d bytes", resp.StatusCode, len(body))
		}
	}
	// A missing bucket named by host.
	_, err = vc.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b + "-missing"), Key: aws.String("x")})
	expectAWSErr(t, "GetObject in a missing bucket (virtual-hosted)", err, 404, "NoSuchBucket")
	// Clean up with DeleteObjects and DeleteBucket, virtual-hosted.
	var ids []types.ObjectIdentifier
	for _, k := range append(keys, "copy") {
		ids = append(ids, types.ObjectIdentifier{Key: aws.String(k)})
	}
	if out, err := vc.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: aws.String(b), Delete: &types.Delete{Objects: ids}}); err != nil || len(out.Deleted) != len(ids) {
		t.Errorf("DeleteObjects (virtual-hosted): %v", err)
	}
	if _, err := vc.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Errorf("DeleteBucket (virtual-hosted): %v", err)
	}
}
