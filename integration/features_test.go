// features_test.go covers the S3 features of multipart, copies,
// checksums, conditional writes, versioning, tagging, object attributes and
// CORS with the two SDKs as applications use them: the aws-sdk-go-v2
// transfer manager moving a 200 MiB object in parts both ways, explicit SDK
// calls for each operation, and minio-go's high-level calls (ComposeObject
// builds on UploadPartCopy, versioned listings, tagging, CORS, attributes).
package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/cors"
	"github.com/minio/minio-go/v7/pkg/tags"
)

// fastRandom returns n pseudo-random bytes quickly (crypto quality is not
// needed, incompressible content is).
func fastRandom(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := 0; i+8 <= n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

func TestTransferManager200MiB(t *testing.T) {
	s := startServer(t, ServerOptions{LogLevel: "info"})
	c, _ := awsClient(t, s, awsOptions{})
	ctx := testCtx(t, 5*time.Minute)
	bucket := bucketName(t)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	data := fastRandom(200, 200<<20)
	want := sha256.Sum256(data)
	tm := transfermanager.New(c, func(o *transfermanager.Options) { o.PartSizeBytes = 16 << 20; o.Concurrency = 4 })
	if _, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: &bucket, Key: aws.String("big/object"), Body: bytes.NewReader(data)}); err != nil {
		t.Fatalf("transfer manager upload: %v", err)
	}
	head, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("big/object")})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToInt64(head.ContentLength) != int64(len(data)) || !strings.HasSuffix(aws.ToString(head.ETag), `-13"`) {
		t.Fatalf("uploaded object: %d bytes, ETag %s; want %d bytes in 13 parts", aws.ToInt64(head.ContentLength), aws.ToString(head.ETag), len(data))
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "download"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{Bucket: &bucket, Key: aws.String("big/object"), WriterAt: f}); err != nil {
		t.Fatalf("transfer manager download: %v", err)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		t.Fatal(err)
	}
	h := sha256.New()
	if n, err := io.Copy(h, f); err != nil || n != int64(len(data)) {
		t.Fatalf("downloaded %d bytes, %v", n, err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("transfer manager download differs from the upload")
	}
	// The streaming getter reads it again in ranged parts.
	out, err := tm.GetObject(ctx, &transfermanager.GetObjectInput{Bucket: &bucket, Key: aws.String("big/object")})
	if err != nil {
		t.Fatal(err)
	}
	h.Reset()
	if _, err := io.Copy(h, out.Body); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(h.Sum(nil), want[:]) {
		t.Fatal("transfer manager GetObject differs from the upload")
	}
}

func crc32B64(b []byte) string {
	v := crc32.ChecksumIEEE(b)
	return base64.StdEncoding.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
}

func TestSDKMultipartCopiesAndAttributes(t *testing.T) {
	s := startServer(t, ServerOptions{LogLevel: "info"})
	c, _ := awsClient(t, s, awsOptions{})
	ctx := testCtx(t, 3*time.Minute)
	bucket := bucketName(t)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &bucket}); err != nil {
		t.Fatal(err)
	}
	src := fastRandom(1, 7<<20+5)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &bucket, Key: aws.String("src"), Body: bytes.NewReader(src)}); err != nil {
		t.Fatal(err)
	}
	// A FULL_OBJECT CRC32 upload: part 1 uploaded, part 2 copied from a
	// range of src, part 3 uploaded.
	key := aws.String("assembled")
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: key,
		ChecksumAlgorithm: types.ChecksumAlgorithmCrc32, ChecksumType: types.ChecksumTypeFullObject})
	if err != nil {
		t.Fatal(err)
	}
	p1, p3 := fastRandom(2, 5<<20), fastRandom(3, 12345)
	var parts []types.CompletedPart
	r1, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(1),
		Body: bytes.NewReader(p1), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatal(err)
	}
	parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(1), ETag: r1.ETag, ChecksumCRC32: r1.ChecksumCRC32})
	r2, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &bucket, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(2),
		CopySource: aws.String(bucket + "/src"), CopySourceRange: aws.String(fmt.Sprintf("bytes=%d-%d", 1<<20, 6<<20-1))})
	if err != nil {
		t.Fatalf("UploadPartCopy: %v", err)
	}
	p2 := src[1<<20 : 6<<20]
	parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(2), ETag: r2.CopyPartResult.ETag, ChecksumCRC32: r2.CopyPartResult.ChecksumCRC32})
	r3, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &bucket, Key: key, UploadId: up.UploadId, PartNumber: aws.Int32(3),
		Body: bytes.NewReader(p3), ChecksumAlgorithm: types.ChecksumAlgorithmCrc32})
	if err != nil {
		t.Fatal(err)
	}
	parts = append(parts, types.CompletedPart{PartNumber: aws.Int32(3), ETag: r3.ETag, ChecksumCRC32: r3.ChecksumCRC32})
	// ListParts, one part a page.
	var listed []int32
	var marker *string
	for {
		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: &bucket, Key: key, UploadId: up.UploadId, MaxParts: aws.Int32(1), PartNumberMarker: marker})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range lp.Parts {
			listed = append(listed, aws.ToInt32(p.PartNumber))
		}
		if !aws.ToBool(lp.IsTruncated) {
			break
		}
		marker = lp.NextPartNumberMarker
	}
	if fmt.Sprint(listed) != "[1 2 3]" {
		t.Fatalf("ListParts pages = %v", listed)
	}
	done, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: key, UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: parts}})
	if err != nil {
		t.Fatalf("complete: %v", err)
	}
	whole := append(append(append([]byte(nil), p1...), p2...), p3...)
	if got := aws.ToString(done.ChecksumCRC32); got != crc32B64(whole) {
		t.Fatalf("full-object CRC32 = %s; want %s", got, crc32B64(whole))
	}
	get, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: key, ChecksumMode: types.ChecksumModeEnabled})
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(get.Body)
	get.Body.Close()
	if err != nil || !bytes.Equal(got, whole) {
		t.Fatalf("assembled object: %d bytes, %v", len(got), err)
	}
	part2, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &bucket, Key: key, PartNumber: aws.Int32(2)})
	if err != nil {
		t.Fatal(err)
	}
	got, _ = io.ReadAll(part2.Body)
	part2.Body.Close()
	if !bytes.Equal(got, p2) || aws.ToInt32(part2.PartsCount) != 3 {
		t.Fatalf("GET partNumber=2: %d bytes, parts count %d", len(got), aws.ToInt32(part2.PartsCount))
	}
	attrs, err := c.GetObjectAttributes(ctx, &s3.GetObjectAttributesInput{Bucket: &bucket, Key: key,
		ObjectAttributes: []types.ObjectAttributes{types.ObjectAttributesEtag, types.ObjectAttributesObjectParts, types.ObjectAttributesObjectSize, types.ObjectAttributesChecksum, types.ObjectAttributesStorageClass}})
	if err != nil {
		t.Fatalf("GetObjectAttributes: %v", err)
	}
	if aws.ToInt64(attrs.ObjectSize) != int64(len(whole)) || attrs.ObjectParts == nil || aws.ToInt32(attrs.ObjectParts.TotalPartsCount) != 3 ||
		attrs.Checksum == nil || aws.ToString(attrs.Checksum.ChecksumCRC32) != crc32B64(whole) {
		t.Fatalf("GetObjectAttributes = size %d parts %+v checksum %+v", aws.ToInt64(attrs.ObjectSize), attrs.ObjectParts, attrs.Checksum)
	}

	// ListMultipartUploads, one upload a page, over three keys.
	var ids []string
	for i := 0; i < 3; i++ {
		u, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String(fmt.Sprintf("pending/%d", i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(u.UploadId))
	}
	var seen []string
	var km, um *string
	for {
		lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: &bucket, MaxUploads: aws.Int32(1), KeyMarker: km, UploadIdMarker: um})
		if err != nil {
			t.Fatal(err)
		}
		for _, u := range lu.Uploads {
			seen = append(seen, aws.ToString(u.UploadId))
		}
		if !aws.ToBool(lu.IsTruncated) {
			break
		}
		km, um = lu.NextKeyMarker, lu.NextUploadIdMarker
	}
	if fmt.Sprint(seen) != fmt.Sprint(ids) {
		t.Fatalf("ListMultipartUploads pages = %v; want %v", seen, ids)
	}
	for i, id := range ids {
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: &bucket, Key: aws.String(fmt.Sprintf("pending/%d", i)), UploadId: aws.String(id)}); err != nil {
			t.Fatal(err)
		}
	}

	// Copies: metadata REPLACE with a source condition; tagging; a
	// conditional delete.
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("copy"), CopySource: aws.String(bucket + "/src"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"kind": "copy"}, CopySourceIfMatch: aws.String("nope")}); apiCode(err) != "PreconditionFailed" {
		t.Fatalf("copy with a failing source condition: %v", err)
	}
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("copy"), CopySource: aws.String(bucket + "/src"),
		MetadataDirective: types.MetadataDirectiveReplace, Metadata: map[string]string{"kind": "copy"}, Tagging: aws.String("t=1"), TaggingDirective: types.TaggingDirectiveReplace}); err != nil {
		t.Fatal(err)
	}
	ch, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &bucket, Key: aws.String("copy")})
	if err != nil || ch.Metadata["kind"] != "copy" || aws.ToInt64(ch.ContentLength) != int64(len(src)) {
		t.Fatalf("copied object: %+v, %v", ch, err)
	}
	tg, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: aws.String("copy")})
	if err != nil || len(tg.TagSet) != 1 || aws.ToString(tg.TagSet[0].Key) != "t" {
		t.Fatalf("tags of the copy: %+v, %v", tg, err)
	}
	if _, err := c.PutObjectTagging(ctx, &s3.PutObjectTaggingInput{Bucket: &bucket, Key: aws.String("copy"),
		Tagging: &types.Tagging{TagSet: []types.Tag{{Key: aws.String("a"), Value: aws.String("1")}, {Key: aws.String("b"), Value: aws.String("2")}}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.DeleteObjectTagging(ctx, &s3.DeleteObjectTaggingInput{Bucket: &bucket, Key: aws.String("copy")}); err != nil {
		t.Fatal(err)
	}
	if tg, err := c.GetObjectTagging(ctx, &s3.GetObjectTaggingInput{Bucket: &bucket, Key: aws.String("copy")}); err != nil || len(tg.TagSet) != 0 {
		t.Fatalf("tags after delete: %+v, %v", tg, err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("copy"), IfMatch: aws.String(`"0123"`)}); apiCode(err) != "PreconditionFailed" {
		t.Fatalf("DeleteObject with a wrong If-Match: %v", err)
	}
	if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: &bucket, Key: aws.String("copy"), IfMatch: ch.ETag}); err != nil {
		t.Fatalf("DeleteObject with the right If-Match: %v", err)
	}
}

func TestMinioFeatures(t *testing.T) {
	s := startServer(t, ServerOptions{LogLevel: "info"})
	c := minioClient(t, s)
	ctx := testCtx(t, 3*time.Minute)
	bucket := bucketName(t)
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	a, b := fastRandom(10, 6<<20), fastRandom(11, 2<<20+3)
	for k, d := range map[string][]byte{"a": a, "b": b} {
		if _, err := c.PutObject(ctx, bucket, k, bytes.NewReader(d), int64(len(d)), minio.PutObjectOptions{PartSize: 5 << 20}); err != nil {
			t.Fatal(err)
		}
	}
	// ComposeObject: server-side concatenation through UploadPartCopy.
	if _, err := c.ComposeObject(ctx, minio.CopyDestOptions{Bucket: bucket, Object: "ab"},
		minio.CopySrcOptions{Bucket: bucket, Object: "a"}, minio.CopySrcOptions{Bucket: bucket, Object: "b"}); err != nil {
		t.Fatalf("ComposeObject: %v", err)
	}
	obj, err := c.GetObject(ctx, bucket, "ab", minio.GetObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(obj)
	obj.Close()
	if !bytes.Equal(got, append(append([]byte(nil), a...), b...)) {
		t.Fatalf("composed object: %d bytes that differ", len(got))
	}
	// Versioning: enable, overwrite, delete, list versions.
	if err := c.EnableVersioning(ctx, bucket); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 3; i++ {
		if _, err := c.PutObject(ctx, bucket, "v", strings.NewReader(fmt.Sprint(i)), 1, minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	if err := c.RemoveObject(ctx, bucket, "v", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	versions, markers := 0, 0
	for info := range c.ListObjects(ctx, bucket, minio.ListObjectsOptions{Prefix: "v", WithVersions: true}) {
		if info.Err != nil {
			t.Fatal(info.Err)
		}
		if info.IsDeleteMarker {
			markers++
		} else {
			versions++
		}
	}
	if versions != 3 || markers != 1 {
		t.Fatalf("versions listing: %d versions, %d delete markers; want 3 and 1", versions, markers)
	}
	// Tagging.
	tg, _ := tags.NewTags(map[string]string{"project": "ringstore"}, true)
	if err := c.PutObjectTagging(ctx, bucket, "ab", tg, minio.PutObjectTaggingOptions{}); err != nil {
		t.Fatal(err)
	}
	if got, err := c.GetObjectTagging(ctx, bucket, "ab", minio.GetObjectTaggingOptions{}); err != nil || got.ToMap()["project"] != "ringstore" {
		t.Fatalf("GetObjectTagging = %v, %v", got, err)
	}
	// Attributes of the composed (multipart) object.
	attrs, err := c.GetObjectAttributes(ctx, bucket, "ab", minio.ObjectAttributesOptions{})
	if err != nil {
		t.Fatalf("GetObjectAttributes: %v", err)
	}
	if attrs.ObjectSize != len(a)+len(b) || attrs.ObjectParts.PartsCount != 2 {
		t.Fatalf("attributes: size %d parts %d", attrs.ObjectSize, attrs.ObjectParts.PartsCount)
	}
	// CORS.
	conf := cors.NewConfig([]cors.Rule{{AllowedOrigin: []string{"https://app.example"}, AllowedMethod: []string{"GET", "PUT"}, AllowedHeader: []string{"*"}}})
	if err := c.SetBucketCors(ctx, bucket, conf); err != nil {
		t.Fatalf("SetBucketCors: %v", err)
	}
	if got, err := c.GetBucketCors(ctx, bucket); err != nil || len(got.CORSRules) != 1 {
		t.Fatalf("GetBucketCors = %+v, %v", got, err)
	}
	// An abandoned upload is listed and can be removed.
	core := minio.Core{Client: c}
	id, err := core.NewMultipartUpload(ctx, bucket, "abandoned", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveIncompleteUpload(ctx, bucket, "abandoned"); err != nil {
		t.Fatalf("RemoveIncompleteUpload: %v", err)
	}
	if _, err := core.ListObjectParts(ctx, bucket, "abandoned", id, 0, 10); err == nil {
		t.Fatal("parts of an aborted upload are still listed")
	}
}
