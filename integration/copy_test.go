// copy_test.go shows that copies move no bytes: a large object is
// written, then copied with CopyObject and with UploadPartCopy, and the
// bytes in the server's chunk directory are measured before and after.
// The copies must add none, and read back identical. The object is 1 GiB
// with -ringstore.long, 128 MiB otherwise.
package integration

import (
	"bytes"
	"crypto/sha256"
	"io"
	"io/fs"
	"path/filepath"

	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
)

// chunkBytes sums the sizes of the chunk files under a data directory.
func chunkBytes(t *testing.T, dataDir string) int64 {
	t.Helper()
	var n int64
	err := filepath.WalkDir(filepath.Join(dataDir, "blobs", "chunks"), func(_ string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		info, err := d.Info()
		if err == nil {
			n += info.Size()
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCopiesWriteMetadataOnly(t *testing.T) {
	size := 128 << 20
	if *flagLong {
		size = 1 << 30
	}
	s := startServer(t, ServerOptions{LogLevel: "info"})
	ctx := testCtx(t, 5*time.Minute)
	mc := minioClient(t, s)
	bucket := bucketName(t)
	if err := mc.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	data := fastRandom(42, size)
	want := sha256.Sum256(data)
	if _, err := mc.PutObject(ctx, bucket, "original", bytes.NewReader(data), int64(size), minio.PutObjectOptions{DisableMultipart: true}); err != nil {
		t.Fatal(err)
	}
	before := chunkBytes(t, s.DataDir)
	if before < int64(size) {
		t.Fatalf("chunk directory holds %d bytes after a %d-byte PUT", before, size)
	}
	c, _ := awsClient(t, s, awsOptions{})
	if _, err := c.CopyObject(ctx, &s3.CopyObjectInput{Bucket: &bucket, Key: aws.String("copy"), CopySource: aws.String(bucket + "/original")}); err != nil {
		t.Fatalf("CopyObject: %v", err)
	}
	afterCopy := chunkBytes(t, s.DataDir)
	up, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &bucket, Key: aws.String("part-copy")})
	if err != nil {
		t.Fatal(err)
	}
	pc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &bucket, Key: aws.String("part-copy"), UploadId: up.UploadId,
		PartNumber: aws.Int32(1), CopySource: aws.String(bucket + "/original")})
	if err != nil {
		t.Fatalf("UploadPartCopy: %v", err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &bucket, Key: aws.String("part-copy"), UploadId: up.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{{PartNumber: aws.Int32(1), ETag: pc.CopyPartResult.ETag}}}}); err != nil {
		t.Fatal(err)
	}
	afterPartCopy := chunkBytes(t, s.DataDir)
	t.Logf("%d MiB object: chunk bytes %d before, +%d by CopyObject, +%d by UploadPartCopy", size>>20, before, afterCopy-before, afterPartCopy-afterCopy)
	if afterCopy != before || afterPartCopy != before {
		t.Fatalf("copies wrote chunk bytes: CopyObject +%d, UploadPartCopy +%d; want 0", afterCopy-before, afterPartCopy-afterCopy)
	}
	for _, key := range []string{"copy", "part-copy"} {
		obj, err := mc.GetObject(ctx, bucket, key, minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		h := sha256.New()
		n, err := io.Copy(h, obj)
		obj.Close()
		if err != nil || n != int64(size) || !bytes.Equal(h.Sum(nil), want[:]) {
			t.Fatalf("%s reads back %d bytes (%v) that differ from the original", key, n, err)
		}
	}

}
