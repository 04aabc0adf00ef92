// Published test vectors. Goal: prove the canonicalisation and signing
// match AWS byte for byte. Method: replay the examples from the S3 API
// reference (single-chunk header auth, presigned URL, chunked upload,
// chunked upload with trailer) through Verify with the documented clock,
// and the cases of the AWS SigV4 test suite whose rules S3 shares, each
// with the signature AWS publishes for it.

package auth

import (
	"bytes"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"
)

// From "Signature Calculations for the Authorization Header: Transferring
// Payload in a Single Chunk", section "Examples: Signature Calculations".
func TestS3DocSingleChunkExamples(t *testing.T) {
	cases := []struct {
		name, head, body string
		wantCanonical    string // "" when the page does not print it
	}{
		{
			name: "GET Object",
			head: `
GET /test.txt HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,Signature=f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41
Range: bytes=0-9
x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
x-amz-date: 20130524T000000Z
`,
		},
		{
			name: "PUT Object",
			head: `
PUT /test%24file.text HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Date: Fri, 24 May 2013 00:00:00 GMT
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class,Signature=98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
x-amz-content-sha256: 44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072
Content-Length: 21
`,
			body: "Welcome to Amazon S3.",
			wantCanonical: "PUT\n/test%24file.text\n\n" +
				"date:Fri, 24 May 2013 00:00:00 GMT\nhost:examplebucket.s3.amazonaws.com\n" +
				"x-amz-content-sha256:44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072\n" +
				"x-amz-date:20130524T000000Z\nx-amz-storage-class:REDUCED_REDUNDANCY\n\n" +
				"date;host;x-amz-content-sha256;x-amz-date;x-amz-storage-class\n" +
				"44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072",
		},
		{
			name: "GET Bucket Lifecycle",
			head: `
GET /?lifecycle HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543
x-amz-date: 20130524T000000Z
x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
`,
			wantCanonical: "GET\n/\nlifecycle=\n" +
				"host:examplebucket.s3.amazonaws.com\n" +
				"x-amz-content-sha256:e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855\n" +
				"x-amz-date:20130524T000000Z\n\n" +
				"host;x-amz-content-sha256;x-amz-date\n" +
				"e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855",
		},
		{
			name: "GET Bucket (List Objects)",
			head: `
GET /?max-keys=2&prefix=J HTTP/1.1
Host: examplebucket.s3.amazonaws.com
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=host;x-amz-content-sha256;x-amz-date,Signature=34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7
x-amz-date: 20130524T000000Z
x-amz-content-sha256: e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855
`,
		},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := readRaw(t, c.head, []byte(c.body))
			if c.wantCanonical != "" {
				h, e := parseAuthHeader(r.Header.Get("Authorization"))
				if e != nil {
					t.Fatal(e)
				}
				got := canonicalRequest(r, h.signedHeaders, r.Header.Get("X-Amz-Content-Sha256"), false)
				if got != c.wantCanonical {
					t.Fatalf("canonical request:\n%s\nwant:\n%s", got, c.wantCanonical)
				}
			}
			res, err := docVerifier().Verify(r)
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			got, err := io.ReadAll(res.Body)
			if err != nil || string(got) != c.body {
				t.Fatalf("body %q, %v; want %q", got, err, c.body)
			}
			if res.AccessKeyID != docAK {
				t.Fatalf("access key %q", res.AccessKeyID)
			}
		})
	}
}

// From "Authenticating Requests: Using Query Parameters", its example: a
// GET of test.txt valid for 86400 s.
func TestS3DocPresignedExample(t *testing.T) {
	const target = "/test.txt?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	head := "GET " + target + " HTTP/1.1\nHost: examplebucket.s3.amazonaws.com\n"

	v := docVerifier()
	v.Now = fixedClock(docTime.Add(23 * time.Hour))
	res, err := v.Verify(readRaw(t, head, nil))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.PayloadMode != ModeUnsignedPayload {
		t.Fatalf("mode %s", res.PayloadMode)
	}

	// The same URL a second after its 86400 s are up.
	v.Now = fixedClock(docTime.Add(86400 * time.Second))
	_, err = v.Verify(readRaw(t, head, nil))
	wantCode(t, err, CodeAccessDenied)

	// Our own presigner reproduces the documented URL exactly.
	req, _ := http.NewRequest("GET", "https://examplebucket.s3.amazonaws.com/test.txt", nil)
	u, err := Presign(req, Credentials{docAK, docSK}, "us-east-1", docTime, 86400*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	if want := "https://examplebucket.s3.amazonaws.com" + target; u != want {
		t.Fatalf("Presign:\n%s\nwant\n%s", u, want)
	}
}

const docChunkedHead = `
PUT /examplebucket/chunkObject.txt HTTP/1.1
Host: s3.amazonaws.com
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;content-length;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class,Signature=4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9
x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD
Content-Encoding: aws-chunked
x-amz-decoded-content-length: 66560
Content-Length: 66824
`

// docChunkedBody is the example's body with its published chunk
// signatures; non-empty sigs[i] replaces chunk i's, to tamper.
func docChunkedBody(sigs ...string) []byte {
	s := []string{
		"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648",
		"0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497",
		"b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9",
	}
	for i, sig := range sigs {
		if sig != "" {
			s[i] = sig
		}
	}
	var b bytes.Buffer
	b.WriteString("10000;chunk-signature=" + s[0] + "\r\n")
	b.Write(bytes.Repeat([]byte("a"), 65536))
	b.WriteString("\r\n400;chunk-signature=" + s[1] + "\r\n")
	b.Write(bytes.Repeat([]byte("a"), 1024))
	b.WriteString("\r\n0;chunk-signature=" + s[2] + "\r\n\r\n")
	return b.Bytes()
}

// From "Transferring Payload in Multiple Chunks (Chunked Upload)",
// section "Example: PUT Object": seed 4f232c43..., chunks ad80c730...,
// 0055627c... and final b6c6ea8a....
func TestS3DocChunkedExample(t *testing.T) {
	body := docChunkedBody()
	if len(body) != 66824 {
		t.Fatalf("example body is %d bytes, the page says 66824", len(body))
	}
	res, err := docVerifier().Verify(readRaw(t, docChunkedHead, body))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.PayloadMode != ModeStreamingSigned || res.DecodedLength != 66560 {
		t.Fatalf("mode %s, length %d", res.PayloadMode, res.DecodedLength)
	}
	got, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatalf("reading body: %v", err)
	}
	if !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) {
		t.Fatalf("decoded %d bytes, not the 66560 'a's", len(got))
	}

	// The independent test encoder reproduces the published chain.
	s := newTestChunkSigner(docSK, docTime, "us-east-1", "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	if enc := encodeSigned(s, [][]byte{bytes.Repeat([]byte("a"), 65536), bytes.Repeat([]byte("a"), 1024)}, nil); !bytes.Equal(enc, body) {
		t.Fatal("test encoder disagrees with the documented example")
	}
	// So does the package's own ChunkSigner.
	cs := NewChunkSigner(Credentials{docAK, docSK}, "us-east-1", docTime, "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9")
	for i, want := range []string{"ad80c730a21e5b8d04586a2213dd63b9a0e99e0e2307b0ade35a65485a288648", "0055627c9e194cb4542bae2aa5492e3c1575bbb81b612b7d234b86a503ef5497", "b6c6ea8a5354eaf15b3cb7646744f4275b71ea724fed81ceb9323e279d449df9"} {
		data := [][]byte{bytes.Repeat([]byte("a"), 65536), bytes.Repeat([]byte("a"), 1024), nil}[i]
		if got := cs.Sign(data); got != want {
			t.Fatalf("ChunkSigner chunk %d: %s, want %s", i, got, want)
		}
	}
}

// From "Signature calculations for trailing headers (chunked uploads)":
// seed 106e2a8a..., chunks b474d886..., 1c1344b1..., 2ca2aba2..., trailer
// x-amz-checksum-crc32c:sOO8/Q== signed d81f82fc....
func TestS3DocTrailerExample(t *testing.T) {
	head := `
PUT /examplebucket/chunkObject.txt HTTP/1.1
Host: s3.amazonaws.com
x-amz-date: 20130524T000000Z
x-amz-storage-class: REDUCED_REDUNDANCY
Authorization: AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request,SignedHeaders=content-encoding;host;x-amz-content-sha256;x-amz-date;x-amz-decoded-content-length;x-amz-storage-class;x-amz-trailer,Signature=106e2a8a18243abcf37539882f36619c00e2dfc72633413f02d3b74544bfeb8e
x-amz-content-sha256: STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER
Content-Encoding: aws-chunked
x-amz-decoded-content-length: 66560
x-amz-trailer: x-amz-checksum-crc32c
`
	var b bytes.Buffer
	b.WriteString("10000;chunk-signature=b474d8862b1487a5145d686f57f013e54db672cee1c953b3010fb58501ef5aa2\r\n")
	b.Write(bytes.Repeat([]byte("a"), 65536))
	b.WriteString("\r\n400;chunk-signature=1c1344b170168f8e65b41376b44b20fe354e373826ccbbe2c1d40a8cae51e5c7\r\n")
	b.Write(bytes.Repeat([]byte("a"), 1024))
	b.WriteString("\r\n0;chunk-signature=2ca2aba2005185cf7159c6277faf83795951dd77a3a99e6e65d5c9f85863f992\r\n")
	b.WriteString("x-amz-checksum-crc32c:sOO8/Q==\r\n")
	b.WriteString("x-amz-trailer-signature:d81f82fc3505edab99d459891051a732e8730629a2e4a59689829ca17fe2e435\r\n\r\n")
	body := b.Bytes()
	head += "Content-Length: " + strconv.Itoa(len(body)) + "\n"

	res, err := docVerifier().Verify(readRaw(t, head, body))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if res.Trailer() != nil {
		t.Fatal("trailer visible before EOF")
	}
	got, err := io.ReadAll(res.Body)
	if err != nil || len(got) != 66560 {
		t.Fatalf("decoded %d bytes, %v", len(got), err)
	}
	if v := res.Trailer()["x-amz-checksum-crc32c"]; len(v) != 1 || v[0] != "sOO8/Q==" {
		t.Fatalf("trailer %v", res.Trailer())
	}

	// The tampered trailer value fails the trailer signature.
	bad := bytes.Replace(body, []byte("sOO8/Q=="), []byte("sOO8/Q=A"), 1)
	res, err = docVerifier().Verify(readRaw(t, head, bad))
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	_, err = io.ReadAll(res.Body)
	wantCode(t, err, CodeSignatureDoesNotMatch)
}

// The AWS SigV4 test suite (aws-c-auth tests/aws-signing-test-suite/v4,
// the successor of the old aws4_testsuite): credentials AKIDEXAMPLE, region
// us-east-1, service "service", 2015-08-30T12:36:00Z.
//
// Included: the cases whose rules S3 shares, including the "unnormalized"
// path cases, which exercise exactly S3's rule of leaving "//", "." and
// ".." alone. Skipped: every "*-normalized" case (S3 does not normalise
// paths, so those signatures are wrong for S3 by design),
// get-header-value-multiline (obsolete line folding, which Go's HTTP server
// rejects before a handler sees it), and the session-token and sigv4a
// cases (not S3 key checks).
//
// The suite's requests carry no x-amz-content-sha256, which S3 requires;
// each case gets one holding its payload hash, left unsigned as S3 allows,
// so the canonical requests stay those of the suite.
func TestAWSSigV4TestSuite(t *testing.T) {
	suiteTime := time.Date(2015, 8, 30, 12, 36, 0, 0, time.UTC)
	type hdr struct{ k, v string }
	cases := []struct {
		name, method, path, query string
		headers                   []hdr
		signed                    string
		body                      string
		sig                       string
	}{
		{name: "get-vanilla", method: "GET", path: "/",
			sig: "5fa00fa31553b73ebf1942676e86291e8372ff2a2260956d9b8aae1d763fbf31"},
		{name: "get-vanilla-query-order-key-case", method: "GET", path: "/", query: "Param2=value2&Param1=value1",
			sig: "b97d918cfa904a5beff61c982a1b6f458b799221646efd99d3219ec94cdf2500"},
		{name: "get-vanilla-query-order-encoded", method: "GET", path: "/", query: "Param-3=Value3&Param=Value2&%E1%88%B4=Value1",
			sig: "371d3713e185cc334048618a97f809c9ffe339c62934c032af5a0e595648fcac"},
		{name: "get-vanilla-empty-query-key", method: "GET", path: "/", query: "Param1=value1",
			sig: "a67d582fa61cc504c4bae71f336f98b97f1ea3c7a6bfe1b6e45aec72011b9aeb"},
		{name: "get-vanilla-query-unreserved", method: "GET", path: "/",
			query: "-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz=-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
			sig:   "9c3e54bfcdf0b19771a7f523ee5669cdf59bc7cc0884027167c21bb143a40197"},
		{name: "get-vanilla-utf8-query", method: "GET", path: "/", query: "ሴ=bar",
			sig: "2cdec8eed098649ff3a119c94853b13c643bcf08f8b0a1d91e12c9027818dd04"},
		{name: "get-unreserved", method: "GET", path: "/-._~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz",
			sig: "07ef7494c76fa4850883e2b006601f940f8a34d404d0cfa977f52a65bbf5f24f"},
		{name: "get-utf8", method: "GET", path: "/ሴ",
			sig: "8318018e0b0f223aa2bbf98705b62bb787dc9c0e678f255a891fd03141be5d85"},
		{name: "get-space-unnormalized", method: "GET", path: "/example space/",
			sig: "652487583200325589f1fba4c7e578f72c47cb61beeca81406b39ddec1366741"},
		{name: "get-slashes-unnormalized", method: "GET", path: "//example//",
			sig: "87cca117541a147f6df867677d98a7d80dff226d2bfca9e4ffa899665623c7e5"},
		{name: "get-slash-dot-slash-unnormalized", method: "GET", path: "/./",
			sig: "68714168e6557f8f2de0ef956fc24dc2593a4bd2961f8df51898d8a134695145"},
		{name: "get-relative-relative-unnormalized", method: "GET", path: "/example1/example2/../..",
			sig: "dc33e0856fd4baca4d7aa2146c38958283844764f38c74252a333df5e613003b"},
		{name: "get-header-key-duplicate", method: "GET", path: "/",
			headers: []hdr{{"My-Header1", "value2"}, {"My-Header1", "value2"}, {"My-Header1", "value1"}},
			signed:  "host;my-header1;x-amz-date",
			sig:     "c9d5ea9f3f72853aea855b47ea873832890dbdd183b4468f858259531a5138ea"},
		{name: "get-header-value-order", method: "GET", path: "/",
			headers: []hdr{{"My-Header1", "value4"}, {"My-Header1", "value1"}, {"My-Header1", "value3"}, {"My-Header1", "value2"}},
			signed:  "host;my-header1;x-amz-date",
			sig:     "08c7e5a9acfcfeb3ab6b2185e75ce8b1deb5e634ec47601a50643f830c755c01"},
		{name: "get-header-value-trim", method: "GET", path: "/",
			headers: []hdr{{"My-Header1", " value1"}, {"My-Header2", ` "a   b   c"`}},
			signed:  "host;my-header1;my-header2;x-amz-date",
			sig:     "acc3ed3afb60bb290fc8d2dd0098b9911fcaa05412b367055dee359757a9c736"},
		{name: "post-vanilla", method: "POST", path: "/",
			sig: "5da7c1a2acd57cee7505fc6676e4e544621c30862966e37dddb68e92efbe5d6b"},
		{name: "post-x-www-form-urlencoded", method: "POST", path: "/",
			headers: []hdr{{"Content-Type", "application/x-www-form-urlencoded"}, {"Content-Length", "13"}},
			signed:  "content-length;content-type;host;x-amz-content-sha256;x-amz-date",
			body:    "Param1=value1",
			sig:     "d3875051da38690788ef43de4db0d8f280229d82040bfac253562e56c3f20e0b"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := &http.Request{
				Method:        c.method,
				URL:           &url.URL{Path: c.path, RawQuery: c.query},
				Host:          "example.amazonaws.com",
				Header:        http.Header{},
				Body:          io.NopCloser(strings.NewReader(c.body)),
				ContentLength: int64(len(c.body)),
			}
			for _, h := range c.headers {
				r.Header.Add(h.k, h.v)
			}
			r.Header.Set("X-Amz-Date", "20150830T123600Z")
			r.Header.Set("X-Amz-Content-Sha256", testSHA256Hex([]byte(c.body)))
			signed := c.signed
			if signed == "" {
				signed = "host;x-amz-date"
			}
			r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20150830/us-east-1/service/aws4_request, SignedHeaders="+signed+", Signature="+c.sig)
			v := &Verifier{Region: "us-east-1", Lookup: keys("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"), Now: fixedClock(suiteTime), service: "service"}
			res, err := v.Verify(r)
			if err != nil {
				h, _ := parseAuthHeader(r.Header.Get("Authorization"))
				t.Fatalf("Verify: %v\ncanonical request:\n%s", err, canonicalRequest(r, h.signedHeaders, r.Header.Get("X-Amz-Content-Sha256"), false))
			}
			if _, err := io.ReadAll(res.Body); err != nil {
				t.Fatalf("body: %v", err)
			}
		})
	}
}
