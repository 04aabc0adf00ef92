// Fuzz targets. Goal: no input, however hostile, makes the verifier or the
// aws-chunked decoder panic, hang, over-read or report success it did not
// earn. Method: FuzzChunkedReader feeds arbitrary bytes, modes and read
// sizes to the decoder and checks it returns no more bytes than it was
// given, ends in io.EOF or an error, and decodes identically whatever the
// read size; FuzzVerify feeds arbitrary Authorization headers, query
// strings, dates, payload hashes and paths to Verify and checks every
// rejection is an *Error. Seeds are the documented examples; crashers found
// along the way live in testdata/fuzz.

package auth

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"testing/iotest"
)

func FuzzChunkedReader(f *testing.F) {
	// Seeds stay small: the fuzzer minimises every new interesting input,
	// and minimising tens of kilobytes eats the whole fuzzing budget. The
	// minimum-chunk-size rule is off so that small multi-chunk streams can
	// still be valid.
	s := func() *testChunkSigner { return newTestChunkSigner(docSK, docTime, "us-east-1", docSeed) }
	f.Add(encodeSigned(s(), [][]byte{[]byte("first"), []byte("second")}, nil), true, false, int64(11), uint16(4096))
	f.Add(encodeSigned(s(), [][]byte{[]byte("body"), []byte("end")}, []string{"x-amz-checksum-crc32:AAAAAA=="}), true, true, int64(7), uint16(7))
	f.Add(encodeUnsigned([][]byte{[]byte("hello")}, []string{"x-amz-checksum-crc32:AAAAAA=="}), false, true, int64(5), uint16(1))
	f.Add(encodeUnsigned(nil, nil), false, true, int64(0), uint16(3))
	f.Add([]byte("5\r\nhello\r\n0\r\n\r\n"), false, true, int64(-1), uint16(2))
	f.Add([]byte("ffffffffffffffff;chunk-signature=\r\n"), true, false, int64(-1), uint16(64))

	f.Fuzz(func(t *testing.T, data []byte, signed, trailer bool, decoded int64, readSize uint16) {
		opts := signedOpts(docSeed, decoded)
		opts.Signed, opts.Trailer, opts.MinChunkSize = signed, trailer, 0
		if trailer {
			opts.ExpectedTrailers = []string{"x-amz-checksum-crc32"}
		}
		n := int(readSize)%8192 + 1
		got, err := readAllSized(NewChunkedReader(bytes.NewReader(data), opts), n)
		if len(got) > len(data) {
			t.Fatalf("returned %d bytes from %d of input", len(got), len(data))
		}
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status == 0 || e.Code == "" {
				t.Fatalf("error without an S3 code: %v", err)
			}
			return
		}
		// A stream that decoded cleanly must decode the same, byte by byte.
		again, err := io.ReadAll(NewChunkedReader(iotest.OneByteReader(bytes.NewReader(data)), opts))
		if err != nil || !bytes.Equal(got, again) {
			t.Fatalf("read size %d gave %d bytes, one-byte reads %d bytes and %v", n, len(got), len(again), err)
		}
		if decoded >= 0 && int64(len(got)) != decoded {
			t.Fatalf("clean EOF after %d bytes, declared %d", len(got), decoded)
		}
	})
}

// readAllSized reads r to the end with reads of n bytes, so the fuzzer
// also explores how read sizes split the framing.
func readAllSized(r io.Reader, n int) ([]byte, error) {
	var out []byte
	buf := make([]byte, n)
	for {
		k, err := r.Read(buf)
		out = append(out, buf[:k]...)
		if err == io.EOF {
			return out, nil
		}
		if err != nil {
			return out, err
		}
	}
}

func FuzzVerify(f *testing.F) {
	const getAuth = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41"
	f.Add(getAuth, "", "20130524T000000Z", emptySHA256, "/test.txt", []byte(nil))
	f.Add("", "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404", "", "", "/test.txt", []byte(nil))
	f.Add("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9",
		"", "20130524T000000Z", ModeStreamingSignedTrailer, "/examplebucket/chunkObject.txt", []byte("0;chunk-signature=x\r\n\r\n"))
	f.Add(strings.Replace(getAuth, "SignedHeaders=host;", "SignedHeaders=", 1), "", "20130524T000000Z", emptySHA256, "/test.txt", []byte(nil))
	f.Add("AWS AKIAIOSFODNN7EXAMPLE:x", "lifecycle&a=%zz&b=+", "garbage", "UNSIGNED-PAYLOAD", "/%", []byte("x"))
	f.Add("AWS4-HMAC-SHA256 Credential=/////,SignedHeaders=;,Signature=", "X-Amz-Expires=-1&X-Amz-Credential=a/b", "", "STREAMING-UNSIGNED-PAYLOAD-TRAILER", "", []byte("0\r\n\r\n"))

	v := docVerifier()
	f.Fuzz(func(t *testing.T, authz, rawQuery, amzDate, contentSHA, path string, body []byte) {
		r := &http.Request{
			Method:        "PUT",
			URL:           &url.URL{Path: path, RawQuery: rawQuery},
			Host:          "examplebucket.s3.amazonaws.com",
			Header:        http.Header{},
			Body:          io.NopCloser(bytes.NewReader(body)),
			ContentLength: int64(len(body)),
		}
		set := func(k, v string) {
			if v != "" && !strings.ContainsAny(v, "\r\n") {
				r.Header.Set(k, v)
			}
		}
		set("Authorization", authz)
		set("X-Amz-Date", amzDate)
		set("X-Amz-Content-Sha256", contentSHA)
		set("Range", "bytes=0-9")
		set("X-Amz-Decoded-Content-Length", "5")
		res, err := v.Verify(r)
		if err != nil {
			var e *Error
			if !errors.As(err, &e) || e.Status == 0 {
				t.Fatalf("rejection without an S3 error: %v", err)
			}
			return
		}
		signed := r.URL.Query().Get("X-Amz-SignedHeaders")
		if h, e := parseAuthHeader(authz); e == nil {
			signed = strings.Join(h.signedHeaders, ";")
		}
		if !slices.Contains(strings.Split(strings.ToLower(signed), ";"), "host") {
			t.Fatalf("verified without host among the signed headers %q", signed)
		}
		if _, err := io.ReadAll(res.Body); err != nil && ErrorCode(err) == "" {
			t.Fatalf("body error without an S3 code: %v", err)
		}
		res.Trailer()
	})
}
