// sse_test.go: server-side encryption through real clients.
//
// Goal: SSE-C and SSE-S3 work the way S3's clients expect, and encryption
// the store cannot do is refused: the aws CLI (v2, and v1 when present)
// with --sse-c and --sse, s3api calls with the key, without it and with a
// wrong one, copies that change the key, bucket default encryption;
// minio-go's encrypt.NewSSEC and encrypt.NewSSE (multipart, ranges,
// ComposeObject); aws-sdk-go-v2's SSECustomerKey parameters, explicit
// multipart calls and the transfer manager; boto3 when python3 has it.
// Finally nothing of an encrypted object's plaintext, nor of a customer
// key, is anywhere in the server's data directory (index and chunk files).
//
// Method: servers get SSE-S3 master keys through RINGSTORE_SSE_MASTER_KEY;
// clients reach them over loopback, where the store takes SSE-C keys on
// plain HTTP. Expected answers are S3's (see gateway/sse.go).
package integration

import (
	"bytes"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/s3/transfermanager"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/minio/minio-go/v7"
	"github.com/minio/minio-go/v7/pkg/encrypt"
)

// masterKeyEnv is the environment that gives a server one SSE-S3 master
// key, and the key.
func masterKeyEnv() (string, []byte) {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return "RINGSTORE_SSE_MASTER_KEY=k1:" + base64.StdEncoding.EncodeToString(k), k
}

func sseServer(t *testing.T) *Server {
	env, _ := masterKeyEnv()
	return startServer(t, ServerOptions{LogLevel: "info", Env: []string{env}})
}

// customer is an SSE-C key in the forms clients take it.
type customer struct{ raw []byte }

func newCustomer() customer {
	k := make([]byte, 32)
	_, _ = rand.Read(k)
	return customer{k}
}

func (c customer) b64() string { return base64.StdEncoding.EncodeToString(c.raw) }

func (c customer) md5() string {
	s := md5.Sum(c.raw)
	return base64.StdEncoding.EncodeToString(s[:])
}

func (c customer) header() http.Header {
	h := http.Header{}
	h.Set("x-amz-server-side-encryption-customer-algorithm", "AES256")
	h.Set("x-amz-server-side-encryption-customer-key", c.b64())
	h.Set("x-amz-server-side-encryption-customer-key-MD5", c.md5())
	return h
}

func TestSSEAWSCLI(t *testing.T) {
	t.Parallel()
	clis := awsCLIs(t)
	for _, version := range []string{"v2", "v1"} {
		t.Run(version, func(t *testing.T) {
			bin, ok := clis[version]
			if !ok {
				if version == "v2" {
					needTool(t, "/usr/bin/aws")
				}
				t.Skipf("no aws CLI %s on this machine", version)
			}
			t.Parallel()
			testSSEAWSCLI(t, bin)
		})
	}
}

func testSSEAWSCLI(t *testing.T, bin string) {
	srv := sseServer(t)
	dir := t.TempDir()
	cli := toolRun{Bin: bin, Env: awsEnv(dir), Dir: dir}
	common := []string{"--endpoint-url", srv.Endpoint(), "--cli-read-timeout", "30"}
	aws := func(args ...string) string {
		t.Helper()
		return cli.must(t, append(common, args...)...)
	}
	awsFails := func(want string, args ...string) {
		t.Helper()
		out, err := cli.run(append(common, args...)...)
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Fatalf("aws %s: %v %s; want an error with %q", strings.Join(args, " "), err, out, want)
		}
	}
	b := bucketName(t)
	k, k2 := newCustomer(), newCustomer()
	writeFile(t, dir, "key", k.raw)
	writeFile(t, dir, "key2", k2.raw)
	small, big := fastRandom(1, 300<<10), fastRandom(2, 20<<20)
	writeFile(t, dir, "small", small)
	writeFile(t, dir, "big", big) // over the CLI's 8 MiB threshold: multipart
	sseC := []string{"--sse-c", "AES256", "--sse-c-key", "fileb://key"}
	aws("s3", "mb", "s3://"+b)

	for _, name := range []string{"small", "big"} {
		aws(append([]string{"s3", "cp", name, "s3://" + b + "/c/" + name, "--only-show-errors"}, sseC...)...)
		aws(append([]string{"s3", "cp", "s3://" + b + "/c/" + name, name + ".out", "--only-show-errors"}, sseC...)...)
		if got, _ := os.ReadFile(filepath.Join(dir, name+".out")); !bytes.Equal(got, map[string][]byte{"small": small, "big": big}[name]) {
			t.Fatalf("%s: downloaded other bytes", name)
		}
	}
	// Reading without the key, and with another one.
	awsFails("InvalidRequest", "s3api", "get-object", "--bucket", b, "--key", "c/small", "x.out")
	awsFails("AccessDenied", "s3api", "get-object", "--bucket", b, "--key", "c/small",
		"--sse-customer-algorithm", "AES256", "--sse-customer-key", "fileb://key2", "x.out")
	awsFails("400", "s3api", "head-object", "--bucket", b, "--key", "c/big")
	var head struct{ SSECustomerAlgorithm, SSECustomerKeyMD5, ServerSideEncryption string }
	out := aws("s3api", "head-object", "--bucket", b, "--key", "c/big", "--sse-customer-algorithm", "AES256", "--sse-customer-key", "fileb://key")
	if err := json.Unmarshal([]byte(out), &head); err != nil || head.SSECustomerAlgorithm != "AES256" || head.SSECustomerKeyMD5 != k.md5() {
		t.Fatalf("head-object with the key: %s", out)
	}
	// A range across chunk boundaries.
	aws("s3api", "get-object", "--bucket", b, "--key", "c/big", "--range", "bytes=1000000-3500000",
		"--sse-customer-algorithm", "AES256", "--sse-customer-key", "fileb://key", "range.out")
	if got, _ := os.ReadFile(filepath.Join(dir, "range.out")); !bytes.Equal(got, big[1000000:3500001]) {
		t.Fatal("range read returned other bytes")
	}
	// A copy to another key (multipart copy for the big one: UploadPartCopy).
	for _, name := range []string{"small", "big"} {
		aws("s3", "cp", "s3://"+b+"/c/"+name, "s3://"+b+"/c2/"+name, "--only-show-errors",
			"--sse-c-copy-source", "AES256", "--sse-c-copy-source-key", "fileb://key", "--sse-c", "AES256", "--sse-c-key", "fileb://key2")
		aws("s3", "cp", "s3://"+b+"/c2/"+name, name+".2", "--only-show-errors", "--sse-c", "AES256", "--sse-c-key", "fileb://key2")
		if got, _ := os.ReadFile(filepath.Join(dir, name+".2")); !bytes.Equal(got, map[string][]byte{"small": small, "big": big}[name]) {
			t.Fatalf("%s copied to another key: other bytes", name)
		}
		awsFails("AccessDenied", "s3api", "get-object", "--bucket", b, "--key", "c2/"+name,
			"--sse-customer-algorithm", "AES256", "--sse-customer-key", "fileb://key", "x.out")
	}
	// SSE-S3.
	aws("s3", "cp", "small", "s3://"+b+"/s/small", "--sse", "AES256", "--only-show-errors")
	out = aws("s3api", "head-object", "--bucket", b, "--key", "s/small")
	if err := json.Unmarshal([]byte(out), &head); err != nil || head.ServerSideEncryption != "AES256" {
		t.Fatalf("head-object of an SSE-S3 object: %s", out)
	}
	awsFails("NotImplemented", "s3", "cp", "small", "s3://"+b+"/k/small", "--sse", "aws:kms")
	// Bucket default encryption: S3's default, then set and deleted.
	var enc struct {
		ServerSideEncryptionConfiguration struct {
			Rules []struct {
				ApplyServerSideEncryptionByDefault struct{ SSEAlgorithm string }
			}
		}
	}
	out = aws("s3api", "get-bucket-encryption", "--bucket", b)
	if err := json.Unmarshal([]byte(out), &enc); err != nil || len(enc.ServerSideEncryptionConfiguration.Rules) != 1 ||
		enc.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != "AES256" {
		t.Fatalf("get-bucket-encryption: %s", out)
	}
	aws("s3api", "put-bucket-encryption", "--bucket", b, "--server-side-encryption-configuration",
		`{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"AES256"}}]}`)
	awsFails("NotImplemented", "s3api", "put-bucket-encryption", "--bucket", b, "--server-side-encryption-configuration",
		`{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}`)
	aws("s3api", "delete-bucket-encryption", "--bucket", b)
	aws("s3", "rm", "--recursive", "s3://"+b, "--only-show-errors")
	aws("s3", "rb", "s3://"+b)
}

func TestSSEMinio(t *testing.T) {
	t.Parallel()
	srv := sseServer(t)
	mc := minioClient(t, srv)
	ctx := testCtx(t, 3*time.Minute)
	b := bucketName(t)
	if err := mc.MakeBucket(ctx, b, minio.MakeBucketOptions{Region: testRegion}); err != nil {
		t.Fatal(err)
	}
	k, _ := encrypt.NewSSEC(newCustomer().raw)
	other, _ := encrypt.NewSSEC(newCustomer().raw)
	get := func(name string, opts minio.GetObjectOptions) ([]byte, error) {
		obj, err := mc.GetObject(ctx, b, name, opts)
		if err != nil {
			return nil, err
		}
		defer obj.Close()
		return io.ReadAll(obj)
	}
	small, big := fastRandom(3, 100<<10), fastRandom(4, 17<<20)
	for name, data := range map[string][]byte{"small": small, "big": big} {
		if _, err := mc.PutObject(ctx, b, name, bytes.NewReader(data), int64(len(data)),
			minio.PutObjectOptions{ServerSideEncryption: k, PartSize: 5 << 20}); err != nil {
			t.Fatalf("PutObject %s with SSE-C: %v", name, err)
		}
		got, err := get(name, minio.GetObjectOptions{ServerSideEncryption: k})
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("GetObject %s with the key: %d bytes, %v", name, len(got), err)
		}
		_, err = get(name, minio.GetObjectOptions{})
		expectMinioErr(t, "GetObject without the key", err, 400, "InvalidRequest")
		_, err = get(name, minio.GetObjectOptions{ServerSideEncryption: other})
		expectMinioErr(t, "GetObject with another key", err, 403, "AccessDenied")
		info, err := mc.StatObject(ctx, b, name, minio.StatObjectOptions{ServerSideEncryption: k})
		if err != nil || info.Size != int64(len(data)) || info.Metadata.Get("X-Amz-Server-Side-Encryption-Customer-Algorithm") != "AES256" {
			t.Fatalf("StatObject %s: %+v, %v", name, info.Metadata, err)
		}
	}
	// A range within the multipart object, across a part boundary.
	opts := minio.GetObjectOptions{ServerSideEncryption: k}
	if err := opts.SetRange(5<<20-100, 5<<20+100); err != nil {
		t.Fatal(err)
	}
	if got, err := get("big", opts); err != nil || !bytes.Equal(got, big[5<<20-100:5<<20+101]) {
		t.Fatalf("ranged GetObject: %d bytes, %v", len(got), err)
	}
	// SSE-S3.
	if _, err := mc.PutObject(ctx, b, "s3", bytes.NewReader(small), int64(len(small)), minio.PutObjectOptions{ServerSideEncryption: encrypt.NewSSE()}); err != nil {
		t.Fatalf("PutObject with SSE-S3: %v", err)
	}
	if info, err := mc.StatObject(ctx, b, "s3", minio.StatObjectOptions{}); err != nil || info.Metadata.Get("X-Amz-Server-Side-Encryption") != "AES256" {
		t.Fatalf("StatObject of SSE-S3: %+v, %v", info.Metadata, err)
	}
	// CopyObject from SSE-C to another SSE-C key, and ComposeObject
	// (UploadPartCopy) of an SSE-C and an SSE-S3 object into SSE-C.
	if _, err := mc.CopyObject(ctx, minio.CopyDestOptions{Bucket: b, Object: "copy", Encryption: other},
		minio.CopySrcOptions{Bucket: b, Object: "small", Encryption: k}); err != nil {
		t.Fatalf("CopyObject: %v", err)
	}
	if got, err := get("copy", minio.GetObjectOptions{ServerSideEncryption: other}); err != nil || !bytes.Equal(got, small) {
		t.Fatalf("copy read with the new key: %v", err)
	}
	if _, err := mc.ComposeObject(ctx, minio.CopyDestOptions{Bucket: b, Object: "composed", Encryption: other},
		minio.CopySrcOptions{Bucket: b, Object: "big", Encryption: k}, minio.CopySrcOptions{Bucket: b, Object: "s3"}); err != nil {
		t.Fatalf("ComposeObject: %v", err)
	}
	if got, err := get("composed", minio.GetObjectOptions{ServerSideEncryption: other}); err != nil || !bytes.Equal(got, append(append([]byte(nil), big...), small...)) {
		t.Fatalf("composed object: %d bytes, %v", len(got), err)
	}
}

func TestSSEAWSSDK(t *testing.T) {
	t.Parallel()
	srv := sseServer(t)
	c, _ := awsClient(t, srv, awsOptions{})
	ctx := testCtx(t, 3*time.Minute)
	b := bucketName(t)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: &b}); err != nil {
		t.Fatal(err)
	}
	k, other := newCustomer(), newCustomer()
	withKey := func(k customer) (*string, *string, *string) {
		return aws.String("AES256"), aws.String(k.b64()), aws.String(k.md5())
	}
	alg, key, keyMD5 := withKey(k)
	data := fastRandom(5, 2<<20+3)
	put, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("c"), Body: bytes.NewReader(data),
		SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: keyMD5})
	if err != nil || aws.ToString(put.SSECustomerKeyMD5) != k.md5() {
		t.Fatalf("PutObject with SSE-C: %+v, %v", put, err)
	}
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("c")}); apiCode(err) != "InvalidRequest" {
		t.Fatalf("GetObject without the key: %v", err)
	}
	oa, okey, omd5 := withKey(other)
	if _, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("c"), SSECustomerAlgorithm: oa, SSECustomerKey: okey, SSECustomerKeyMD5: omd5}); apiCode(err) != "AccessDenied" {
		t.Fatalf("GetObject with another key: %v", err)
	}
	got, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("c"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: keyMD5})
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(body, data) || aws.ToString(got.SSECustomerAlgorithm) != "AES256" {
		t.Fatalf("GetObject with the key: %d bytes, algorithm %q", len(body), aws.ToString(got.SSECustomerAlgorithm))
	}
	if h, err := c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: &b, Key: aws.String("c"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: keyMD5}); err != nil || aws.ToString(h.SSECustomerKeyMD5) != k.md5() {
		t.Fatalf("HeadObject: %v", err)
	}

	// Multipart by hand: every part needs the key; a part copied from an
	// SSE-S3 object is sealed under the upload's key.
	s3src := fastRandom(6, 1<<20)
	if out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("s3src"), Body: bytes.NewReader(s3src), ServerSideEncryption: types.ServerSideEncryptionAes256}); err != nil || out.ServerSideEncryption != types.ServerSideEncryptionAes256 {
		t.Fatalf("PutObject with SSE-S3: %v", err)
	}
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: &b, Key: aws.String("kms"), Body: bytes.NewReader(s3src), ServerSideEncryption: types.ServerSideEncryptionAwsKms}); apiCode(err) != "NotImplemented" {
		t.Fatalf("PutObject with aws:kms: %v", err)
	}
	mpu, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: &b, Key: aws.String("mp"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: keyMD5})
	if err != nil {
		t.Fatal(err)
	}
	p1 := fastRandom(7, 5<<20)
	// (A small body: a refused request's body is read only up to net/http's
	// 256 KiB before the connection closes under the client.)
	if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &b, Key: aws.String("mp"), UploadId: mpu.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(p1[:1000])}); apiCode(err) != "InvalidRequest" {
		t.Fatalf("UploadPart without the key: %v", err)
	}
	up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: &b, Key: aws.String("mp"), UploadId: mpu.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(p1),
		SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: keyMD5})
	if err != nil {
		t.Fatal(err)
	}
	upc, err := c.UploadPartCopy(ctx, &s3.UploadPartCopyInput{Bucket: &b, Key: aws.String("mp"), UploadId: mpu.UploadId, PartNumber: aws.Int32(2),
		CopySource: aws.String(b + "/s3src"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: keyMD5})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: &b, Key: aws.String("mp"), UploadId: mpu.UploadId,
		MultipartUpload: &types.CompletedMultipartUpload{Parts: []types.CompletedPart{
			{PartNumber: aws.Int32(1), ETag: up.ETag, ChecksumCRC32: up.ChecksumCRC32},
			{PartNumber: aws.Int32(2), ETag: upc.CopyPartResult.ETag},
		}}}); err != nil {
		t.Fatalf("CompleteMultipartUpload: %v", err)
	}
	got, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: &b, Key: aws.String("mp"), SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: keyMD5})
	if err != nil {
		t.Fatal(err)
	}
	body, _ = io.ReadAll(got.Body)
	got.Body.Close()
	if !bytes.Equal(body, append(append([]byte(nil), p1...), s3src...)) {
		t.Fatal("multipart SSE-C object reads back other bytes")
	}

	// The transfer manager, both ways, in 8 MiB parts.
	tm := transfermanager.New(c, func(o *transfermanager.Options) { o.PartSizeBytes = 8 << 20; o.Concurrency = 4 })
	big := fastRandom(8, 40<<20)
	if _, err := tm.UploadObject(ctx, &transfermanager.UploadObjectInput{Bucket: &b, Key: aws.String("tm"), Body: bytes.NewReader(big),
		SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: keyMD5}); err != nil {
		t.Fatalf("transfer manager upload: %v", err)
	}
	f, err := os.Create(filepath.Join(t.TempDir(), "tm"))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := tm.DownloadObject(ctx, &transfermanager.DownloadObjectInput{Bucket: &b, Key: aws.String("tm"), WriterAt: f,
		SSECustomerAlgorithm: alg, SSECustomerKey: key, SSECustomerKeyMD5: keyMD5}); err != nil {
		t.Fatalf("transfer manager download: %v", err)
	}
	if back, _ := os.ReadFile(f.Name()); !bytes.Equal(back, big) {
		t.Fatal("transfer manager round trip: other bytes")
	}

	// Bucket default encryption through the SDK.
	if _, err := c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: &b, ServerSideEncryptionConfiguration: &types.ServerSideEncryptionConfiguration{
		Rules: []types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &types.ServerSideEncryptionByDefault{SSEAlgorithm: types.ServerSideEncryptionAes256}}},
	}}); err != nil {
		t.Fatalf("PutBucketEncryption: %v", err)
	}
	ge, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: &b})
	if err != nil || ge.ServerSideEncryptionConfiguration.Rules[0].ApplyServerSideEncryptionByDefault.SSEAlgorithm != types.ServerSideEncryptionAes256 {
		t.Fatalf("GetBucketEncryption: %v", err)
	}
	if _, err := c.DeleteBucketEncryption(ctx, &s3.DeleteBucketEncryptionInput{Bucket: &b}); err != nil {
		t.Fatal(err)
	}
}

// boto3Script exercises SSE through boto3, the library under the aws CLI.
const boto3Script = `
import os, sys, io, boto3, botocore
from boto3.s3.transfer import TransferConfig
endpoint, bucket, ak, sk = sys.argv[1:5]
s3 = boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id=ak, aws_secret_access_key=sk,
    config=botocore.config.Config(s3={"addressing_style": "path"}, retries={"max_attempts": 1}))
key, key2 = os.urandom(32), os.urandom(32)
C = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=key)
C2 = dict(SSECustomerAlgorithm="AES256", SSECustomerKey=key2)
s3.create_bucket(Bucket=bucket)
data = os.urandom(300000)
s3.put_object(Bucket=bucket, Key="c", Body=data, **C)
assert s3.get_object(Bucket=bucket, Key="c", **C)["Body"].read() == data
def fails(status, code, f, **kw):
    try:
        f(**kw)
    except botocore.exceptions.ClientError as e:
        got = (e.response["ResponseMetadata"]["HTTPStatusCode"], e.response["Error"]["Code"])
        assert got == (status, code) or (code == "" and got[0] == status), got
        return
    raise AssertionError("succeeded")
fails(400, "InvalidRequest", s3.get_object, Bucket=bucket, Key="c")
fails(403, "AccessDenied", s3.get_object, Bucket=bucket, Key="c", **C2)
fails(400, "", s3.head_object, Bucket=bucket, Key="c")
h = s3.head_object(Bucket=bucket, Key="c", **C)
assert h["SSECustomerAlgorithm"] == "AES256", h
big = os.urandom(12 << 20)
cfg = TransferConfig(multipart_threshold=5 << 20, multipart_chunksize=5 << 20)
s3.upload_fileobj(io.BytesIO(big), bucket, "big", ExtraArgs=C, Config=cfg)
out = io.BytesIO()
s3.download_fileobj(bucket, "big", out, ExtraArgs=C, Config=cfg)
assert out.getvalue() == big
s3.copy_object(Bucket=bucket, Key="c2", CopySource={"Bucket": bucket, "Key": "c"},
    CopySourceSSECustomerAlgorithm="AES256", CopySourceSSECustomerKey=key, **C2)
assert s3.get_object(Bucket=bucket, Key="c2", **C2)["Body"].read() == data
fails(403, "AccessDenied", s3.get_object, Bucket=bucket, Key="c2", **C)
r = s3.put_object(Bucket=bucket, Key="s", Body=data, ServerSideEncryption="AES256")
assert r["ServerSideEncryption"] == "AES256", r
assert s3.get_object(Bucket=bucket, Key="s")["ServerSideEncryption"] == "AES256"
fails(501, "NotImplemented", s3.put_object, Bucket=bucket, Key="k", Body=data, ServerSideEncryption="aws:kms")
print("OK")
`

func TestSSEBoto3(t *testing.T) {
	t.Parallel()
	// The python3 on PATH, or Debian's, where .ci/run installs boto3.
	py := ""
	var why []string
	for _, cand := range []string{"python3", "/usr/bin/python3"} {
		p, err := exec.LookPath(cand)
		if err != nil {
			continue
		}
		out, err := exec.Command(p, "-c", "import boto3").CombinedOutput()
		if err == nil {
			py = p
			break
		}
		why = append(why, p+": "+strings.TrimSpace(string(out)))
	}
	if py == "" {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no python3 with boto3 (%s); .ci/run installs python3-boto3", strings.Join(why, "; "))
		}
		t.Skipf("no python3 with boto3 (%s): the aws CLI tests cover botocore", strings.Join(why, "; "))
	}
	srv := sseServer(t)
	dir := t.TempDir()
	script := writeFile(t, dir, "sse.py", []byte(boto3Script))
	run := toolRun{Bin: py, Env: toolEnv(), Dir: dir, Timeout: 3 * time.Minute}
	out := run.must(t, script, srv.Endpoint(), bucketName(t), testAccessKey, testSecretKey)
	if strings.TrimSpace(out) != "OK" {
		t.Fatalf("boto3 script: %s", out)
	}
}

// TestSSENothingInPlaintextOnDisk stores encrypted objects of every shape
// (inline, chunked, multipart; SSE-C and SSE-S3) and then reads every file
// of the data directory, index and chunks, for any 32-byte window of their
// plaintext and for the customer key. A plaintext object stored on the
// same directory is found by the same scan, so the scan can see.
func TestSSENothingInPlaintextOnDisk(t *testing.T) {
	t.Parallel()
	control := fastRandom(99, 50<<10)
	plain := startServer(t, ServerOptions{LogLevel: "info"})
	b := bucketName(t)
	plain.mustCreateBucket(t, b)
	plain.mustPut(t, b, "control", control)
	dataDir := plain.DataDir
	plain.Stop()

	env, masterKey := masterKeyEnv()
	srv := startServer(t, ServerOptions{LogLevel: "info", DataDir: dataDir, Env: []string{env}})
	k := newCustomer()
	secrets := map[string][]byte{}
	put := func(name string, data []byte, h http.Header) {
		t.Helper()
		if r := srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: name, Body: data, Header: h}); r.Status != 200 {
			t.Fatalf("put %s: %s", name, r)
		}
		secrets[name] = data
	}
	sseS3 := http.Header{"X-Amz-Server-Side-Encryption": {"AES256"}}
	put("c-inline", fastRandom(11, 40<<10), k.header())
	put("c-chunked", fastRandom(12, 3<<20+5), k.header())
	put("s3-inline", fastRandom(13, 40<<10), sseS3)
	put("s3-default", fastRandom(14, 3<<20), nil)
	mc := minioClient(t, srv)
	ssec, _ := encrypt.NewSSEC(k.raw)
	ctx := testCtx(t, 2*time.Minute)
	for name, sse := range map[string]encrypt.ServerSide{"c-multipart": ssec, "s3-multipart": encrypt.NewSSE()} {
		data := fastRandom(uint64(len(name)), 11<<20)
		if _, err := mc.PutObject(ctx, b, name, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{ServerSideEncryption: sse, PartSize: 5 << 20}); err != nil {
			t.Fatalf("multipart %s: %v", name, err)
		}
		secrets[name] = data
	}
	// Everything reads back before the scan.
	for name, data := range secrets {
		h := http.Header{}
		if strings.HasPrefix(name, "c-") {
			h = k.header()
		}
		if r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: name, Header: h}); r.Status != 200 || !bytes.Equal(r.Body, data) {
			t.Fatalf("get %s: %d, %d bytes", name, r.Status, len(r.Body))
		}
	}
	srv.Stop()

	type needle struct {
		what string
		b    []byte
	}
	var needles []needle
	for name, data := range secrets {
		for _, off := range []int{0, len(data) / 3, len(data) / 2, len(data) - 32} {
			needles = append(needles, needle{fmt.Sprintf("%s at %d", name, off), data[off : off+32]})
		}
	}
	needles = append(needles, needle{"the customer key", k.raw}, needle{"the customer key in base64", []byte(k.b64())},
		needle{"the master key", masterKey}, needle{"the master key in base64", []byte(base64.StdEncoding.EncodeToString(masterKey))})
	controlSeen, files, bytesRead := false, 0, 0
	err := filepath.WalkDir(dataDir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		content, err := os.ReadFile(p)
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		files++
		bytesRead += len(content)
		for _, n := range needles {
			if bytes.Contains(content, n.b) {
				t.Errorf("%s is in %s", n.what, p)
			}
		}
		controlSeen = controlSeen || bytes.Contains(content, control[1000:1032])
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if !controlSeen {
		t.Fatalf("the plaintext control object was not found in %d files (%d bytes): the scan proves nothing", files, bytesRead)
	}
	t.Logf("scanned %d files, %d bytes", files, bytesRead)
}

// TestSSEMasterKeyRotation follows the rotation docs/ARCHITECTURE.md gives,
// on one data directory across restarts: objects written under k1 read
// after k2 is added and written after it use k2; a copy onto itself (the
// aws CLI's, when present) re-wraps an object under k2; with k1 dropped
// the re-wrapped object reads and the other answers 500, never plaintext;
// with a key file others can read the server does not start.
func TestSSEMasterKeyRotation(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	k1, k2 := make([]byte, 32), make([]byte, 32)
	_, _ = rand.Read(k1)
	_, _ = rand.Read(k2)
	line := func(id string, k []byte) string { return id + ":" + base64.StdEncoding.EncodeToString(k) + "\n" }
	keyFile := filepath.Join(dir, "master-keys")
	writeKeys := func(text string) {
		t.Helper()
		if err := os.WriteFile(keyFile, []byte(text), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	writeKeys("# ringstore master keys\n" + line("k1", k1))
	srv := startServer(t, ServerOptions{LogLevel: "info", Env: []string{"RINGSTORE_SSE_MASTER_KEY_FILE=" + keyFile}})
	b := bucketName(t)
	srv.mustCreateBucket(t, b)
	a, c := fastRandom(21, 2<<20), fastRandom(22, 2<<20)
	srv.mustPut(t, b, "a", a) // SSE-S3 by default: the server has master keys
	srv.mustPut(t, b, "c", c)
	head := func(key string) rawResp {
		t.Helper()
		return srv.do(t, rawReq{Method: "HEAD", Bucket: b, Key: key})
	}
	if h := head("a"); h.Header.Get("X-Amz-Server-Side-Encryption") != "AES256" {
		t.Fatalf("default-encrypted object: %v", h.Header)
	}

	writeKeys(line("k1", k1) + line("k2", k2))
	srv.Restart()
	if r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "a"}); r.Status != 200 || !bytes.Equal(r.Body, a) {
		t.Fatalf("k1 object after adding k2: %s", r)
	}
	srv.mustPut(t, b, "new", c)
	// Re-wrap "a" under k2 by copying it onto itself.
	if bin, ok := awsCLIs(t)["v2"]; ok {
		cli := toolRun{Bin: bin, Env: awsEnv(t.TempDir())}
		cli.must(t, "--endpoint-url", srv.Endpoint(), "s3", "cp", "s3://"+b+"/a", "s3://"+b+"/a", "--sse", "AES256", "--only-show-errors")
	} else if r := srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: "a", Header: http.Header{
		"X-Amz-Copy-Source": {"/" + b + "/a"}, "X-Amz-Server-Side-Encryption": {"AES256"}}}); r.Status != 200 {
		t.Fatalf("copy onto itself: %s", r)
	}

	writeKeys(line("k2", k2))
	srv.Restart()
	for key, want := range map[string][]byte{"a": a, "new": c} {
		if r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: key}); r.Status != 200 || !bytes.Equal(r.Body, want) {
			t.Fatalf("%s under k2 alone: %s", key, r)
		}
	}
	expectError(t, "an object whose master key was dropped", srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "c"}), 500, "InternalError")
	// The log is whole once the process has exited.
	srv.Stop()
	if !strings.Contains(srv.Log(), `no master key with that id \"k1\"`) {
		t.Errorf("the log does not name the missing key k1:\n%s", srv.logTail(5))
	}
	if err := os.Chmod(keyFile, 0o644); err != nil {
		t.Fatal(err)
	}
	srv.opts.Env = []string{"RINGSTORE_SSE_MASTER_KEY_FILE=" + keyFile}
	if err := srv.start(); err == nil || !strings.Contains(srv.Log(), "chmod 600") {
		t.Fatalf("started with a key file others can read: %v", err)
	}
}
