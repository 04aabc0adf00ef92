package gateway

import (
	"crypto/md5"
	"encoding/base64"
	"strings"
	"testing"
)

func contentMD5Of(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

// TestUnsupportedHeadersAreRefused: object lock, appends, ACLs that grant
// anything beyond the owner's, and bucket options that need them are
// refused with S3's answers, and nothing is stored; the ACLs that say
// nothing new are taken, as S3 takes them with ACLs disabled.
func TestUnsupportedHeadersAreRefused(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/uns", nil)
	ts.must(200, "PUT", "/uns/src", []byte("source"))
	for _, c := range []struct {
		hdr    []string
		status int
		code   string
	}{
		{[]string{"x-amz-object-lock-mode", "GOVERNANCE", "x-amz-object-lock-retain-until-date", "2030-01-01T00:00:00Z"}, 400, "InvalidRequest"},
		{[]string{"x-amz-object-lock-legal-hold", "ON"}, 400, "InvalidRequest"},
		{[]string{"x-amz-object-lock-legal-hold", "OFF"}, 400, "InvalidRequest"},
		{[]string{"x-amz-write-offset-bytes", "6"}, 501, "NotImplemented"},
		{[]string{"x-amz-acl", "public-read"}, 400, "AccessControlListNotSupported"},
		{[]string{"x-amz-acl", "authenticated-read"}, 400, "AccessControlListNotSupported"},
		{[]string{"x-amz-grant-read", `uri="http://acs.amazonaws.com/groups/global/AllUsers"`}, 400, "AccessControlListNotSupported"},
		{[]string{"x-amz-grant-full-control", `id="abc"`}, 400, "AccessControlListNotSupported"},
	} {
		wantErr(t, ts.do("PUT", "/uns/x", []byte("data"), c.hdr...), c.status, c.code)
		wantErr(t, ts.do("PUT", "/uns/x", nil, append([]string{"x-amz-copy-source", "/uns/src"}, c.hdr...)...), c.status, c.code)
		wantErr(t, ts.do("POST", "/uns/x?uploads", nil, c.hdr...), c.status, c.code)
	}
	wantErr(t, ts.do("HEAD", "/uns/x", nil), 404, "NoSuchKey")
	for _, acl := range []string{"private", "bucket-owner-full-control"} {
		ts.must(200, "PUT", "/uns/x", []byte("data"), "x-amz-acl", acl)
	}

	for _, c := range []struct {
		hdr    []string
		status int
		code   string
	}{
		{[]string{"x-amz-bucket-object-lock-enabled", "true"}, 501, "NotImplemented"},
		{[]string{"x-amz-object-ownership", "ObjectWriter"}, 501, "NotImplemented"},
		{[]string{"x-amz-object-ownership", "BucketOwnerPreferred"}, 501, "NotImplemented"},
		{[]string{"x-amz-acl", "public-read-write"}, 400, "InvalidBucketAclWithObjectOwnership"},
		{[]string{"x-amz-grant-write", `id="abc"`}, 400, "InvalidBucketAclWithObjectOwnership"},
	} {
		wantErr(t, ts.do("PUT", "/uns2", nil, c.hdr...), c.status, c.code)
	}
	wantErr(t, ts.do("HEAD", "/uns2", nil), 404, "NoSuchBucket")
	ts.must(200, "PUT", "/uns2", nil, "x-amz-acl", "private", "x-amz-object-ownership", "BucketOwnerEnforced", "x-amz-bucket-object-lock-enabled", "false")
}

// TestUnsupportedDeleteConditionsAreRefused: a delete on a size or time
// condition, which S3 has for directory buckets only, deletes nothing.
func TestUnsupportedDeleteConditionsAreRefused(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/delc", nil)
	ts.must(200, "PUT", "/delc/x", []byte("data"))
	wantErr(t, ts.do("DELETE", "/delc/x", nil, "x-amz-if-match-size", "4"), 501, "NotImplemented")
	wantErr(t, ts.do("DELETE", "/delc/x", nil, "x-amz-if-match-last-modified-time", "Wed, 01 Jan 2025 00:00:00 GMT"), 501, "NotImplemented")
	body := []byte(`<Delete><Object><Key>x</Key><Size>4</Size></Object></Delete>`)
	w := ts.must(200, "POST", "/delc?delete", body, "Content-MD5", contentMD5Of(body))
	if !strings.Contains(w.Body.String(), "<Code>NotImplemented</Code>") {
		t.Fatalf("DeleteObjects with a size condition: %s", w.Body)
	}
	ts.must(200, "GET", "/delc/x", nil)
}
