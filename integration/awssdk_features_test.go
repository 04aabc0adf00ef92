// awssdk_features_test.go: multipart upload, object versions and bucket
// CORS through aws-sdk-go-v2 (default checksums).
//
// Goal: the S3 features the tools above lean on for big files and that
// browsers need behave as in S3: multipart (create, upload parts with the
// SDK's default CRC32 checksums, list parts and uploads, complete with the
// S3 multipart ETag, part-number GETs, abort, and the errors NoSuchUpload,
// EntityTooSmall, InvalidPart, InvalidPartOrder); versioning (versions and
// delete markers in ListObjectVersions, GET/DELETE by versionId, removing a
// delete marker to restore); CORS (Put/Get/DeleteBucketCors, preflight
// OPTIONS allowed and refused, CORS headers on a real GET).
//
// Method: one server, one bucket per subtest, the SDK client from the
// harness; CORS preflights are plain unsigned OPTIONS requests, as browsers
// send them.
package integration

import (
	"bytes"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
)

// multipartETag is S3's ETag of a completed multipart upload.
func multipartETag(parts ...[]byte) string {
	var all []byte
	for _, p := range parts {
		s := md5.Sum(p)
		all = append(all, s[:]...)
	}
	s := md5.Sum(all)
	return fmt.Sprintf(`"%s-%d"`, hex.EncodeToString(s[:]), len(parts))
}

func TestAWSSDKFeatures(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ServerOptions{})
	c, _ := awsClient(t, srv, awsOptions{})
	newBucket := func(t *testing.T) string {
		t.Helper()
		b := bucketName(t)
		if _, err := c.CreateBucket(testCtx(t, time.Minute), &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatalf("CreateBucket %s: %v", b, err)
		}
		return b
	}

	t.Run("Multipart", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, 2*time.Minute)
		b := newBucket(t)
		key := "mp/big object+1"
		parts := [][]byte{randomBytes(5 << 20), randomBytes(5 << 20), randomBytes(1<<20 + 17)}
		cr, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(key),
			ContentType: aws.String("application/x-mp"), Metadata: map[string]string{"via": "multipart"}})
		if err != nil {
			t.Fatalf("CreateMultipartUpload: %v", err)
		}
		uid := cr.UploadId
		lu, err := c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(b)})
		if err != nil || len(lu.Uploads) != 1 || aws.ToString(lu.Uploads[0].UploadId) != aws.ToString(uid) || aws.ToString(lu.Uploads[0].Key) != key {
			t.Errorf("ListMultipartUploads = %+v, %v; want the one upload", lu, err)
		}
		var done []types.CompletedPart
		// Upload out of order; S3 assembles by part number.
		for _, i := range []int{2, 0, 1} {
			up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(b), Key: aws.String(key), UploadId: uid,
				PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(parts[i])})
			if err != nil {
				t.Fatalf("UploadPart %d: %v", i+1, err)
			}
			if aws.ToString(up.ETag) != `"`+md5Hex(parts[i])+`"` {
				t.Errorf("UploadPart %d ETag %s, want the part's MD5", i+1, aws.ToString(up.ETag))
			}
			done = append(done, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1)), ChecksumCRC32: up.ChecksumCRC32})
		}
		slices.SortFunc(done, func(a, b types.CompletedPart) int { return int(*a.PartNumber - *b.PartNumber) })
		lp, err := c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(b), Key: aws.String(key), UploadId: uid})
		if err != nil || len(lp.Parts) != 3 {
			t.Errorf("ListParts: %v, %d parts; want 3", err, len(lp.Parts))
		} else {
			for i, p := range lp.Parts {
				if aws.ToInt32(p.PartNumber) != int32(i+1) || aws.ToInt64(p.Size) != int64(len(parts[i])) || aws.ToString(p.ETag) != `"`+md5Hex(parts[i])+`"` {
					t.Errorf("ListParts part %d = number %d size %d etag %s", i+1, aws.ToInt32(p.PartNumber), aws.ToInt64(p.Size), aws.ToString(p.ETag))
				}
			}
		}
		// Not visible before completion.
		if st := srv.objectStatus(t, b, key); st != 404 {
			t.Errorf("HEAD of an uncompleted multipart upload's key: %d, want 404", st)
		}
		// Refused completions leave the upload as it was.
		completeMain := func(ps []types.CompletedPart) (*s3.CompleteMultipartUploadOutput, error) {
			return c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(b), Key: aws.String(key), UploadId: uid,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: ps}})
		}
		_, err = completeMain([]types.CompletedPart{done[1], done[0], done[2]})
		expectAWSErr(t, "CompleteMultipartUpload with parts out of order", err, 400, "InvalidPartOrder")
		wrong := slices.Clone(done)
		wrong[0].ETag, wrong[0].ChecksumCRC32 = aws.String(`"`+md5Hex([]byte("other"))+`"`), nil
		_, err = completeMain(wrong)
		expectAWSErr(t, "CompleteMultipartUpload naming a part ETag that was not uploaded", err, 400, "InvalidPart")
		_, err = completeMain([]types.CompletedPart{done[0], done[1], {ETag: done[2].ETag, PartNumber: aws.Int32(9)}})
		expectAWSErr(t, "CompleteMultipartUpload naming a part number that was not uploaded", err, 400, "InvalidPart")
		comp, err := completeMain(done)
		if err != nil {
			t.Fatalf("CompleteMultipartUpload: %v", err)
		}
		if want := multipartETag(parts...); aws.ToString(comp.ETag) != want {
			t.Errorf("multipart ETag %s, want %s", aws.ToString(comp.ETag), want)
		}
		whole := bytes.Join(parts, nil)
		got, out := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(key)})
		if sha256Hex(got) != sha256Hex(whole) {
			t.Errorf("completed multipart object differs (%d bytes, want %d)", len(got), len(whole))
		}
		if aws.ToString(out.ContentType) != "application/x-mp" || out.Metadata["via"] != "multipart" {
			t.Errorf("multipart object: Content-Type %q metadata %v (set at CreateMultipartUpload)", aws.ToString(out.ContentType), out.Metadata)
		}
		// A range across the part boundary.
		got, _ = awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(key), Range: aws.String(fmt.Sprintf("bytes=%d-%d", 5<<20-10, 5<<20+9))})
		if !bytes.Equal(got, whole[5<<20-10:5<<20+10]) {
			t.Errorf("range across the part 1/2 boundary differs")
		}
		// GET with partNumber.
		got, out = awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String(key), PartNumber: aws.Int32(2)})
		if !bytes.Equal(got, parts[1]) || aws.ToInt32(out.PartsCount) != 3 {
			t.Errorf("GetObject partNumber=2: %d bytes (want %d), PartsCount %d (want 3)", len(got), len(parts[1]), aws.ToInt32(out.PartsCount))
		}
		lu, err = c.ListMultipartUploads(ctx, &s3.ListMultipartUploadsInput{Bucket: aws.String(b)})
		if err != nil || len(lu.Uploads) != 0 {
			t.Errorf("ListMultipartUploads after completion: %d uploads, %v; want none", len(lu.Uploads), err)
		}
		_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(b), Key: aws.String(key), UploadId: uid, PartNumber: aws.Int32(4), Body: strings.NewReader("late")})
		expectAWSErr(t, "UploadPart to a completed upload", err, 404, "NoSuchUpload")

		// Abort.
		cr2, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b), Key: aws.String("mp/aborted")})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(b), Key: aws.String("mp/aborted"), UploadId: cr2.UploadId, PartNumber: aws.Int32(1), Body: bytes.NewReader(parts[2])}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.AbortMultipartUpload(ctx, &s3.AbortMultipartUploadInput{Bucket: aws.String(b), Key: aws.String("mp/aborted"), UploadId: cr2.UploadId}); err != nil {
			t.Errorf("AbortMultipartUpload: %v", err)
		}
		_, err = c.ListParts(ctx, &s3.ListPartsInput{Bucket: aws.String(b), Key: aws.String("mp/aborted"), UploadId: cr2.UploadId})
		expectAWSErr(t, "ListParts of an aborted upload", err, 404, "NoSuchUpload")
		if st := srv.objectStatus(t, b, "mp/aborted"); st != 404 {
			t.Errorf("aborted upload left an object (HEAD %d)", st)
		}

		// Errors at completion.
		cr3, err := c.CreateMultipartUpload(ctx, &s3.CreateMultipartUploadInput{Bucket: aws.String(b), Key: aws.String("mp/bad")})
		if err != nil {
			t.Fatal(err)
		}
		small := []byte("tiny first part")
		var bad []types.CompletedPart
		for i, p := range [][]byte{small, parts[2]} {
			up, err := c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(b), Key: aws.String("mp/bad"), UploadId: cr3.UploadId, PartNumber: aws.Int32(int32(i + 1)), Body: bytes.NewReader(p)})
			if err != nil {
				t.Fatal(err)
			}
			bad = append(bad, types.CompletedPart{ETag: up.ETag, PartNumber: aws.Int32(int32(i + 1)), ChecksumCRC32: up.ChecksumCRC32})
		}
		complete := func(ps []types.CompletedPart) error {
			_, err := c.CompleteMultipartUpload(ctx, &s3.CompleteMultipartUploadInput{Bucket: aws.String(b), Key: aws.String("mp/bad"), UploadId: cr3.UploadId,
				MultipartUpload: &types.CompletedMultipartUpload{Parts: ps}})
			return err
		}
		expectAWSErr(t, "CompleteMultipartUpload with a 15-byte first part", complete(bad), 400, "EntityTooSmall")
		if st := srv.objectStatus(t, b, "mp/bad"); st != 404 {
			t.Errorf("refused completions left an object (HEAD %d)", st)
		}
		_, err = c.UploadPart(ctx, &s3.UploadPartInput{Bucket: aws.String(b), Key: aws.String("mp/bad"), UploadId: aws.String("no-such-upload-id"), PartNumber: aws.Int32(1), Body: strings.NewReader("x")})
		expectAWSErr(t, "UploadPart with an unknown upload id", err, 404, "NoSuchUpload")
	})

	t.Run("Versions", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(b),
			VersioningConfiguration: &types.VersioningConfiguration{Status: types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatal(err)
		}
		var vids []string
		for _, body := range []string{"version one", "version two"} {
			out, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), Body: strings.NewReader(body)})
			if err != nil {
				t.Fatal(err)
			}
			if aws.ToString(out.VersionId) == "" || aws.ToString(out.VersionId) == "null" {
				t.Errorf("PutObject in a versioned bucket returned version id %q", aws.ToString(out.VersionId))
			}
			vids = append(vids, aws.ToString(out.VersionId))
		}
		del, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("doc")})
		if err != nil {
			t.Fatal(err)
		}
		if !aws.ToBool(del.DeleteMarker) || aws.ToString(del.VersionId) == "" {
			t.Errorf("DeleteObject in a versioned bucket: DeleteMarker %v VersionId %q; want a delete marker", aws.ToBool(del.DeleteMarker), aws.ToString(del.VersionId))
		}
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("doc")})
		expectAWSErr(t, "GetObject whose latest version is a delete marker", err, 404, "NoSuchKey")
		got, _ := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), VersionId: aws.String(vids[0])})
		if string(got) != "version one" {
			t.Errorf("GetObject versionId=first: %q", got)
		}
		lv, err := c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: aws.String(b)})
		if err != nil {
			t.Fatalf("ListObjectVersions: %v", err)
		}
		var listed []string
		for _, v := range lv.Versions {
			listed = append(listed, aws.ToString(v.VersionId))
			if aws.ToBool(v.IsLatest) {
				t.Errorf("version %s is IsLatest although a delete marker is newer", aws.ToString(v.VersionId))
			}
		}
		if !slices.Equal(listed, []string{vids[1], vids[0]}) {
			t.Errorf("ListObjectVersions versions %q, want newest first %q", listed, []string{vids[1], vids[0]})
		}
		if len(lv.DeleteMarkers) != 1 || !aws.ToBool(lv.DeleteMarkers[0].IsLatest) || aws.ToString(lv.DeleteMarkers[0].VersionId) != aws.ToString(del.VersionId) {
			t.Errorf("ListObjectVersions delete markers %+v, want the one latest marker", lv.DeleteMarkers)
		}
		// Removing the delete marker brings version two back.
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), VersionId: del.VersionId}); err != nil {
			t.Fatalf("DeleteObject of the delete marker: %v", err)
		}
		if got, _ := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("doc")}); string(got) != "version two" {
			t.Errorf("after removing the delete marker: %q, want version two", got)
		}
		// Deleting a version permanently.
		if _, err := c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), VersionId: aws.String(vids[1])}); err != nil {
			t.Fatal(err)
		}
		if got, _ := awsGet(t, c, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("doc")}); string(got) != "version one" {
			t.Errorf("after deleting version two: %q, want version one", got)
		}
		_, err = c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("doc"), VersionId: aws.String(vids[1])})
		expectAWSErr(t, "GetObject of a deleted version", err, 404, "NoSuchVersion")
	})

	t.Run("CORS", func(t *testing.T) {
		t.Parallel()
		ctx := testCtx(t, time.Minute)
		b := newBucket(t)
		_, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String(b)})
		expectAWSErr(t, "GetBucketCors without a configuration", err, 404, "NoSuchCORSConfiguration")
		_, err = c.PutBucketCors(ctx, &s3.PutBucketCorsInput{Bucket: aws.String(b), CORSConfiguration: &types.CORSConfiguration{CORSRules: []types.CORSRule{{
			AllowedOrigins: []string{"https://app.example"},
			AllowedMethods: []string{"GET", "PUT"},
			AllowedHeaders: []string{"*"},
			ExposeHeaders:  []string{"ETag", "x-amz-request-id"},
			MaxAgeSeconds:  aws.Int32(600),
		}}}})
		if err != nil {
			t.Fatalf("PutBucketCors: %v", err)
		}
		gc, err := c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String(b)})
		if err != nil || len(gc.CORSRules) != 1 || !slices.Equal(gc.CORSRules[0].AllowedMethods, []string{"GET", "PUT"}) || aws.ToInt32(gc.CORSRules[0].MaxAgeSeconds) != 600 {
			t.Errorf("GetBucketCors = %+v, %v", gc, err)
		}
		srv.mustPut(t, b, "page.json", []byte("{}"))

		preflight := func(origin, method string) rawResp {
			r := srv.newRaw(t, rawReq{Method: "OPTIONS", Bucket: b, Key: "page.json", Anonymous: true})
			r.Header.Set("Origin", origin)
			r.Header.Set("Access-Control-Request-Method", method)
			r.Header.Set("Access-Control-Request-Headers", "content-type, x-amz-date")
			return doHTTP(t, r)
		}
		r := preflight("https://app.example", "PUT")
		if r.Status != 200 || r.Header.Get("Access-Control-Allow-Origin") != "https://app.example" ||
			!strings.Contains(r.Header.Get("Access-Control-Allow-Methods"), "PUT") || r.Header.Get("Access-Control-Max-Age") != "600" {
			t.Errorf("allowed preflight: %s, Allow-Origin %q Allow-Methods %q Max-Age %q", r, r.Header.Get("Access-Control-Allow-Origin"),
				r.Header.Get("Access-Control-Allow-Methods"), r.Header.Get("Access-Control-Max-Age"))
		}
		if h := strings.ToLower(r.Header.Get("Access-Control-Allow-Headers")); !strings.Contains(h, "content-type") {
			t.Errorf("allowed preflight: Access-Control-Allow-Headers %q, want the requested headers", h)
		}
		expectError(t, "preflight from another origin", preflight("https://evil.example", "GET"), 403, "AccessForbidden")
		expectError(t, "preflight for a method not allowed", preflight("https://app.example", "DELETE"), 403, "AccessForbidden")

		// A real (signed) GET with an Origin header gets the CORS headers.
		g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "page.json", Header: http.Header{"Origin": {"https://app.example"}}})
		if g.Status != 200 || g.Header.Get("Access-Control-Allow-Origin") != "https://app.example" || !strings.Contains(g.Header.Get("Access-Control-Expose-Headers"), "ETag") {
			t.Errorf("GET with Origin: %d, Allow-Origin %q, Expose-Headers %q", g.Status, g.Header.Get("Access-Control-Allow-Origin"), g.Header.Get("Access-Control-Expose-Headers"))
		}
		if _, err := c.DeleteBucketCors(ctx, &s3.DeleteBucketCorsInput{Bucket: aws.String(b)}); err != nil {
			t.Errorf("DeleteBucketCors: %v", err)
		}
		_, err = c.GetBucketCors(ctx, &s3.GetBucketCorsInput{Bucket: aws.String(b)})
		expectAWSErr(t, "GetBucketCors after delete", err, 404, "NoSuchCORSConfiguration")
		expectError(t, "preflight after DeleteBucketCors", preflight("https://app.example", "GET"), 403, "AccessForbidden")
	})
}
