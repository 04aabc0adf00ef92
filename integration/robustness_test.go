// robustness_test.go: malformed and hostile requests over raw HTTP.
//
// Goal: ringstore refuses bad requests the way S3 does, with S3's error
// code and status, an S3 XML error document (Code, Message, RequestId), the
// x-amz-request-id / x-amz-id-2 headers on every response, and without
// changing any state: malformed XML bodies, bodies shorter than their
// Content-Length, x-amz-content-sha256 and Content-MD5 mismatches, wrong
// trailing checksums, unknown subresources, anonymous requests, clock skew,
// garbage Range and If-Modified-Since headers.
//
// Method: requests are built by hand and signed with the AWS SDK's SigV4
// signer (Server.do), or written straight to a TCP connection when the
// request itself must be broken (a short body). After each refused write
// the test checks with HEAD / ListObjectsV2 that nothing was stored.
package integration

import (
	"bufio"
	"bytes"
	"encoding/xml"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// checkIDs fails unless the response carries S3's request id headers.
func checkIDs(t *testing.T, what string, r rawResp) {
	t.Helper()
	if r.Header.Get("x-amz-request-id") == "" || r.Header.Get("x-amz-id-2") == "" {
		t.Errorf("%s: response (%d) lacks x-amz-request-id or x-amz-id-2 (got %q, %q)", what, r.Status,
			r.Header.Get("x-amz-request-id"), r.Header.Get("x-amz-id-2"))
	}
}

// checkErrorDoc fails unless r is a well-formed S3 error document whose
// RequestId matches the x-amz-request-id header.
func checkErrorDoc(t *testing.T, what string, r rawResp) {
	t.Helper()
	checkIDs(t, what, r)
	var e s3Error
	if err := xml.Unmarshal(r.Body, &e); err != nil {
		t.Errorf("%s: error body is not S3 XML: %v: %q", what, err, r.Body)
		return
	}
	if e.Code == "" || e.Message == "" || e.RequestID == "" {
		t.Errorf("%s: error document lacks Code, Message or RequestId: %q", what, r.Body)
	}
	if e.RequestID != r.Header.Get("x-amz-request-id") {
		t.Errorf("%s: RequestId %q differs from x-amz-request-id %q", what, e.RequestID, r.Header.Get("x-amz-request-id"))
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/xml" {
		t.Errorf("%s: error Content-Type %q, want application/xml", what, ct)
	}
}

func TestRobustness(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ServerOptions{})

	newBucket := func(t *testing.T) string {
		t.Helper()
		b := bucketName(t)
		srv.mustCreateBucket(t, b)
		return b
	}

	t.Run("MalformedXML", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		srv.mustPut(t, b, "keep-1", []byte("1"))
		srv.mustPut(t, b, "keep-2", []byte("2"))
		for _, body := range []string{
			"this is not xml",
			"<Delete><Object><Key>keep-1</Key></Object>", // truncated
			"<Delete><Object><Key>keep-1</Key></Object></Delete><extra>",
			"<NotDelete><Object><Key>keep-1</Key></Object></NotDelete>",
			"<Delete></Delete>", // no Object: S3 answers MalformedXML
			"",
		} {
			r := srv.do(t, rawReq{Method: "POST", Bucket: b, Query: "delete", Body: []byte(body),
				Header: http.Header{"Content-Md5": {contentMD5([]byte(body))}}})
			expectError(t, fmt.Sprintf("DeleteObjects with body %q", body), r, 400, "MalformedXML")
			checkErrorDoc(t, "DeleteObjects malformed", r)
		}
		if keys := srv.listKeys(t, b, ""); !slices.Equal(keys, []string{"keep-1", "keep-2"}) {
			t.Errorf("after malformed DeleteObjects the bucket holds %q, want keep-1 and keep-2", keys)
		}

		nb := bucketName(t)
		for _, body := range []string{
			"<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint>",
			"{\"LocationConstraint\": \"us-east-1\"}",
			"<CreateBucketConfiguration><LocationConstraint>us-east-1</Location></CreateBucketConfiguration>",
		} {
			r := srv.do(t, rawReq{Method: "PUT", Bucket: nb, Body: []byte(body)})
			expectError(t, fmt.Sprintf("CreateBucket with body %q", body), r, 400, "MalformedXML")
			checkErrorDoc(t, "CreateBucket malformed", r)
		}
		if r := srv.do(t, rawReq{Method: "HEAD", Bucket: nb}); r.Status != 404 {
			t.Errorf("a CreateBucket with a malformed body created the bucket (HEAD %d)", r.Status)
		}

		for _, body := range []string{
			"<VersioningConfiguration><Status>Enabled</Status>",
			"Enabled",
			"<VersioningConfiguration xmlns=\"http://s3.amazonaws.com/doc/2006-03-01/\"><Status>Enabled</Stat></VersioningConfiguration>",
		} {
			r := srv.do(t, rawReq{Method: "PUT", Bucket: b, Query: "versioning", Body: []byte(body),
				Header: http.Header{"Content-Md5": {contentMD5([]byte(body))}}})
			expectError(t, fmt.Sprintf("PutBucketVersioning with body %q", body), r, 400, "MalformedXML")
			checkErrorDoc(t, "PutBucketVersioning malformed", r)
		}
		r := srv.do(t, rawReq{Method: "GET", Bucket: b, Query: "versioning"})
		if r.Status != 200 || bytes.Contains(r.Body, []byte("<Status>")) {
			t.Errorf("versioning after malformed PutBucketVersioning: %s, want no Status (never enabled)", r)
		}
	})

	t.Run("ShortBody", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		for _, c := range []struct {
			name      string
			size      int
			halfClose bool
		}{
			{"small-halfclose", 40 << 10, true},
			{"small-close", 40 << 10, false},
			{"chunked-halfclose", 3 << 20, true},
			{"chunked-close", 3 << 20, false},
		} {
			key := "short-" + c.name
			body := randomBytes(c.size)
			req := srv.newRaw(t, rawReq{Method: "PUT", Bucket: b, Key: key, Body: body, PayloadHash: "UNSIGNED-PAYLOAD"})
			resp := sendTruncated(t, srv.Addr, req, body[:len(body)/2], c.halfClose)
			if resp != "" && !strings.HasPrefix(resp, "HTTP/1.1 400") {
				t.Errorf("%s: body shorter than Content-Length answered %q, want 400 IncompleteBody (or no answer)", c.name, resp)
			}
			// Give a handler that got no answer out a moment to finish.
			time.Sleep(300 * time.Millisecond)
			if st := srv.objectStatus(t, b, key); st != 404 {
				t.Errorf("%s: a PUT whose body was %d of %d bytes left an object (HEAD %d)", c.name, len(body)/2, len(body), st)
			}
		}
		if keys := srv.listKeys(t, b, ""); len(keys) != 0 {
			t.Errorf("after truncated PUTs the bucket lists %q", keys)
		}
		// The server still works.
		srv.mustPut(t, b, "after", []byte("fine"))
	})

	t.Run("ContentSHA256Mismatch", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		for _, size := range []int{10, 3<<20 + 17} {
			body := randomBytes(size)
			key := fmt.Sprintf("sha-%d", size)
			r := srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: key, Body: body, PayloadHash: sha256Hex([]byte("other"))})
			expectError(t, fmt.Sprintf("PUT of %d bytes with a wrong x-amz-content-sha256", size), r, 400, "XAmzContentSHA256Mismatch")
			checkErrorDoc(t, "sha256 mismatch", r)
			if st := srv.objectStatus(t, b, key); st != 404 {
				t.Errorf("PUT with a wrong x-amz-content-sha256 stored the object (HEAD %d)", st)
			}
		}
		// An existing object is not replaced by a refused write.
		srv.mustPut(t, b, "existing", []byte("original"))
		r := srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: "existing", Body: randomBytes(2 << 20), PayloadHash: sha256Hex(nil)})
		expectError(t, "overwrite with a wrong x-amz-content-sha256", r, 400, "XAmzContentSHA256Mismatch")
		if g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "existing"}); string(g.Body) != "original" {
			t.Errorf("object after a refused overwrite: %s", g)
		}
		// A payload hash that is not hex at all.
		r = srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: "nothex", Body: []byte("x"), PayloadHash: "not-a-hash"})
		if r.Status != 400 {
			t.Errorf("PUT with x-amz-content-sha256 \"not-a-hash\": %s, want 400", r)
		}
		if keys := srv.listKeys(t, b, ""); !slices.Equal(keys, []string{"existing"}) {
			t.Errorf("bucket lists %q, want [existing]", keys)
		}
	})

	t.Run("ContentMD5", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		for _, size := range []int{10, 2<<20 + 3} {
			body := randomBytes(size)
			key := fmt.Sprintf("md5-%d", size)
			r := srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: key, Body: body, Header: http.Header{"Content-Md5": {contentMD5([]byte("other"))}}})
			expectError(t, fmt.Sprintf("PUT of %d bytes with a wrong Content-MD5", size), r, 400, "BadDigest")
			checkErrorDoc(t, "Content-MD5 mismatch", r)
			if st := srv.objectStatus(t, b, key); st != 404 {
				t.Errorf("PUT with a wrong Content-MD5 stored the object (HEAD %d)", st)
			}
			r = srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: key, Body: body, Header: http.Header{"Content-Md5": {contentMD5(body)}}})
			if r.Status != 200 {
				t.Errorf("PUT with the right Content-MD5: %s", r)
			}
		}
		r := srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: "bad-md5", Body: []byte("x"), Header: http.Header{"Content-Md5": {"not base64!"}}})
		expectError(t, "PUT with a Content-MD5 that is not base64", r, 400, "InvalidDigest")
		if st := srv.objectStatus(t, b, "bad-md5"); st != 404 {
			t.Errorf("PUT with an invalid Content-MD5 stored the object (HEAD %d)", st)
		}
	})

	t.Run("TrailingChecksum", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		data := randomBytes(2<<20 + 100)
		// A correct CRC32 trailer (the AWS SDKs' default over HTTPS), sent
		// straight to the server.
		r := srv.do(t, awsChunkedTrailer(b, "good", data, 64<<10, "x-amz-checksum-crc32", b64crc32(data)))
		if r.Status != 200 {
			t.Errorf("PUT aws-chunked with a correct CRC32 trailer: %s", r)
		} else if g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "good", Header: http.Header{"X-Amz-Checksum-Mode": {"ENABLED"}}}); !bytes.Equal(g.Body, data) || g.Header.Get("X-Amz-Checksum-Crc32") != b64crc32(data) {
			t.Errorf("GET of the trailer upload: equal=%v crc32 %q", bytes.Equal(g.Body, data), g.Header.Get("X-Amz-Checksum-Crc32"))
		}
		// A wrong one: BadDigest, nothing stored.
		r = srv.do(t, awsChunkedTrailer(b, "bad", data, 64<<10, "x-amz-checksum-crc32", b64crc32([]byte("x"))))
		expectError(t, "PUT aws-chunked with a wrong CRC32 trailer", r, 400, "BadDigest")
		if st := srv.objectStatus(t, b, "bad"); st != 404 {
			t.Errorf("PUT with a wrong trailing checksum stored the object (HEAD %d)", st)
		}
		// A small body (one chunk).
		small := []byte("small trailer body")
		if r := srv.do(t, awsChunkedTrailer(b, "small", small, 1024, "x-amz-checksum-crc32c", b64crc32c(small))); r.Status != 200 {
			t.Errorf("PUT aws-chunked, one chunk, CRC32C trailer: %s", r)
		}
	})

	t.Run("NotImplemented", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		for _, sub := range []string{"lifecycle", "policy", "website", "replication", "logging", "notification", "object-lock"} {
			r := srv.do(t, rawReq{Method: "GET", Bucket: b, Query: sub})
			expectError(t, "GET ?"+sub, r, 501, "NotImplemented")
			checkErrorDoc(t, "GET ?"+sub, r)
			r = srv.do(t, rawReq{Method: "PUT", Bucket: b, Query: sub, Body: []byte("<x/>"), Header: http.Header{"Content-Md5": {contentMD5([]byte("<x/>"))}}})
			expectError(t, "PUT ?"+sub, r, 501, "NotImplemented")
		}
		srv.mustPut(t, b, "obj", []byte("x"))
		for _, sub := range []string{"retention", "legal-hold", "torrent", "restore"} {
			method := "GET"
			if sub == "restore" {
				method = "POST"
			}
			r := srv.do(t, rawReq{Method: method, Bucket: b, Key: "obj", Query: sub})
			expectError(t, method+" object ?"+sub, r, 501, "NotImplemented")
		}
		// And the plain operations were not run instead.
		if g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "obj"}); string(g.Body) != "x" {
			t.Errorf("object after NotImplemented calls: %s", g)
		}
	})

	t.Run("Anonymous", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		key := "secret-key-name.txt"
		srv.mustPut(t, b, key, []byte("private"))
		for _, q := range []rawReq{
			{Method: "GET", Bucket: b, Key: key},
			{Method: "GET", Bucket: b},
			{Method: "GET", Bucket: b, Query: "list-type=2"},
			{Method: "GET"},
			{Method: "GET", Bucket: b, Key: "missing-key-name"},
			{Method: "PUT", Bucket: b, Key: "anon-put", Body: []byte("x")},
			{Method: "DELETE", Bucket: b, Key: key},
		} {
			q.Anonymous = true
			what := fmt.Sprintf("anonymous %s /%s/%s?%s", q.Method, q.Bucket, q.Key, q.Query)
			r := srv.do(t, q)
			expectError(t, what, r, 403, "AccessDenied")
			checkErrorDoc(t, what, r)
			for _, name := range []string{b, key, "missing-key-name", "anon-put"} {
				if bytes.Contains(r.Body, []byte(name)) {
					t.Errorf("%s: error body names %q: %s", what, name, r.Body)
				}
			}
		}
		if g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: key}); string(g.Body) != "private" {
			t.Errorf("object after an anonymous DELETE: %s", g)
		}
		if st := srv.objectStatus(t, b, "anon-put"); st != 404 {
			t.Errorf("an anonymous PUT stored an object (HEAD %d)", st)
		}
		// Anonymous HEAD: 403 and no body.
		r := srv.do(t, rawReq{Method: "HEAD", Bucket: b, Key: key, Anonymous: true})
		if r.Status != 403 || len(r.Body) != 0 {
			t.Errorf("anonymous HEAD: %s, want 403 without a body", r)
		}
		checkIDs(t, "anonymous HEAD", r)
	})

	t.Run("RequestIDsEverywhere", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		srv.mustPut(t, b, "k", []byte("0123456789"))
		for _, q := range []rawReq{
			{Method: "GET"},
			{Method: "HEAD", Bucket: b},
			{Method: "GET", Bucket: b, Query: "list-type=2"},
			{Method: "GET", Bucket: b, Query: "location"},
			{Method: "GET", Bucket: b, Key: "k"},
			{Method: "HEAD", Bucket: b, Key: "k"},
			{Method: "GET", Bucket: b, Key: "k", Header: http.Header{"Range": {"bytes=2-4"}}},
			{Method: "GET", Bucket: b, Key: "k", Header: http.Header{"If-None-Match": {"*"}}},
			{Method: "PUT", Bucket: b, Key: "k2", Body: []byte("x")},
			{Method: "DELETE", Bucket: b, Key: "k2"},
			{Method: "GET", Bucket: b, Key: "nope"},
			{Method: "HEAD", Bucket: b, Key: "nope"},
			{Method: "GET", Bucket: "no-such-bucket-x"},
			{Method: "GET", Bucket: b, Key: "k", Header: http.Header{"Range": {"bytes=50-"}}},
		} {
			what := fmt.Sprintf("%s /%s/%s?%s", q.Method, q.Bucket, q.Key, q.Query)
			r := srv.do(t, q)
			checkIDs(t, what, r)
			if r.Status >= 400 && q.Method != "HEAD" {
				checkErrorDoc(t, what, r)
			}
			if q.Method == "HEAD" && len(r.Body) != 0 {
				t.Errorf("%s: HEAD response has a body", what)
			}
		}
		// Two requests get two different ids.
		r1 := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "k"})
		r2 := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "k"})
		if r1.Header.Get("x-amz-request-id") == r2.Header.Get("x-amz-request-id") {
			t.Errorf("two requests share x-amz-request-id %q", r1.Header.Get("x-amz-request-id"))
		}
	})

	t.Run("RangeAndDateGarbage", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		data := []byte("0123456789abcdefghij")
		srv.mustPut(t, b, "k", data)
		for _, rg := range []string{"bytes=abc", "items=0-5", "bytes=5-2", "bytes", "bytes=-", "bytes=1-2-3", "bytes=--5", "bytes= x-"} {
			r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "k", Header: http.Header{"Range": {rg}}})
			if r.Status != 200 || !bytes.Equal(r.Body, data) || r.Header.Get("Content-Range") != "" {
				t.Errorf("Range %q: %s (Content-Range %q), want 200 and the whole object", rg, r, r.Header.Get("Content-Range"))
			}
		}
		for _, rg := range []string{"bytes=999999-", "bytes=20-", "bytes=20-25"} {
			r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "k", Header: http.Header{"Range": {rg}}})
			expectError(t, "Range "+rg+" on a 20-byte object", r, 416, "InvalidRange")
			checkErrorDoc(t, "Range "+rg, r)
		}
		r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "k", Header: http.Header{"Range": {"bytes=15-100"}}})
		if r.Status != 206 || string(r.Body) != "fghij" || r.Header.Get("Content-Range") != "bytes 15-19/20" {
			t.Errorf("Range bytes=15-100: %s, Content-Range %q; want 206 fghij bytes 15-19/20", r, r.Header.Get("Content-Range"))
		}
		for _, h := range []string{"If-Modified-Since", "If-Unmodified-Since"} {
			for _, v := range []string{"yesterday", "Mon, 32 Foo 2020 25:61:61 GMT", "0", "2020-01-01"} {
				r := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "k", Header: http.Header{h: {v}}})
				if r.Status != 200 || !bytes.Equal(r.Body, data) {
					t.Errorf("%s: %q: %s, want 200 (an unparsable date is ignored)", h, v, r)
				}
			}
		}
	})

	t.Run("ClockSkewAndMethods", func(t *testing.T) {
		t.Parallel()
		b := newBucket(t)
		r := srv.do(t, rawReq{Method: "PUT", Bucket: b, Key: "skew", Body: []byte("x"), Time: time.Now().Add(-20 * time.Minute)})
		expectError(t, "PUT signed 20 minutes ago", r, 403, "RequestTimeTooSkewed")
		r = srv.do(t, rawReq{Method: "GET", Bucket: b, Time: time.Now().Add(20 * time.Minute)})
		expectError(t, "GET signed 20 minutes in the future", r, 403, "RequestTimeTooSkewed")
		if st := srv.objectStatus(t, b, "skew"); st != 404 {
			t.Errorf("a skewed PUT stored the object (HEAD %d)", st)
		}
		srv.mustPut(t, b, "k", []byte("x"))
		r = srv.do(t, rawReq{Method: "PATCH", Bucket: b, Key: "k", Body: []byte("y")})
		if e := r.errorDoc(); !(r.Status == 405 && e.Code == "MethodNotAllowed") && !(r.Status == 501 && e.Code == "NotImplemented") {
			t.Errorf("PATCH object: %s, want 405 MethodNotAllowed (or 501 NotImplemented)", r)
		}
		checkErrorDoc(t, "PATCH", r)
		r = srv.do(t, rawReq{Method: "POST", Bucket: b, Key: "k", Body: []byte("y")})
		if r.Status != 405 && r.Status != 400 {
			t.Errorf("POST object without a subresource: %s, want 405 MethodNotAllowed (or 400)", r)
		}
		checkErrorDoc(t, "POST", r)
		if g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "k"}); string(g.Body) != "x" {
			t.Errorf("object after refused PATCH/POST: %s", g)
		}
	})
}

// awsChunkedTrailer builds a PUT with an aws-chunked body of unsigned
// chunks of chunkSize followed by one trailing checksum header
// (STREAMING-UNSIGNED-PAYLOAD-TRAILER), as the AWS SDKs send over HTTPS.
func awsChunkedTrailer(bucket, key string, data []byte, chunkSize int, trailer, value string) rawReq {
	var body bytes.Buffer
	for off := 0; off < len(data); off += chunkSize {
		end := min(off+chunkSize, len(data))
		fmt.Fprintf(&body, "%x\r\n", end-off)
		body.Write(data[off:end])
		body.WriteString("\r\n")
	}
	fmt.Fprintf(&body, "0\r\n%s:%s\r\n\r\n", trailer, value)
	return rawReq{
		Method: "PUT", Bucket: bucket, Key: key, Body: body.Bytes(),
		PayloadHash: "STREAMING-UNSIGNED-PAYLOAD-TRAILER",
		Header: http.Header{
			"Content-Encoding":             {"aws-chunked"},
			"X-Amz-Decoded-Content-Length": {strconv.Itoa(len(data))},
			"X-Amz-Trailer":                {trailer},
		},
	}
}

// sendTruncated writes req's header (with its full Content-Length) and only
// part of its body to a raw connection, then half-closes or closes it. It
// returns the response status line, or "" if none came within 10 s.
func sendTruncated(t *testing.T, addr string, req *http.Request, part []byte, halfClose bool) string {
	t.Helper()
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	var hdr bytes.Buffer
	fmt.Fprintf(&hdr, "%s %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.Method, req.URL.RequestURI(), req.URL.Host, req.ContentLength)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&hdr, "%s: %s\r\n", k, v)
		}
	}
	hdr.WriteString("\r\n")
	if _, err := conn.Write(hdr.Bytes()); err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Write(part); err != nil {
		t.Fatal(err)
	}
	if !halfClose {
		return ""
	}
	_ = conn.(*net.TCPConn).CloseWrite()
	_ = conn.SetReadDeadline(time.Now().Add(10 * time.Second))
	line, _ := bufio.NewReader(conn).ReadString('\n')
	return strings.TrimSpace(line)
}

// TestServerRefusesBadSettings: a setting out of its range stops the
// server before it opens anything, with a message that names the flag.
func TestServerRefusesBadSettings(t *testing.T) {
	for _, tc := range []struct{ flag, value string }{
		{"--chunk-size", "1KiB"},
		{"--wal-sync-delay", "1s"},
		{"--wal-sync-delay", "-1ms"},
		{"--rpc-write-timeout", "100ms"},
		{"--s3-progress-timeout", "100ms"},
		{"--s3-progress-timeout", "1h"},
		{"--bootstrap-expect", "3"},
		{"--index-memory", "1MiB"},
		{"--index-memory", "1TiB"},
		{"--chunk-repair-interval", "-1s"},
		{"--chunk-repair-rate", "0"},
	} {
		data := t.TempDir()
		out, err := exec.Command(serverBin, "server", "--data", data, "--s3-addr", "127.0.0.1:0", tc.flag, tc.value).CombinedOutput()
		if err == nil {
			t.Fatalf("%s %s: server started", tc.flag, tc.value)
		}
		if !strings.Contains(string(out), tc.flag) {
			t.Errorf("%s %s: message %q does not name the flag", tc.flag, tc.value, out)
		}
		if entries, _ := os.ReadDir(data); len(entries) != 0 {
			t.Errorf("%s %s: data directory has %d entries, want none", tc.flag, tc.value, len(entries))
		}
	}
}
