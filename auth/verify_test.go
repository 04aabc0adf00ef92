// Verify's rejection paths. Goal: each way a request can be unauthenticated
// or malformed maps to the S3 error code, HTTP status and message text S3
// uses, checked in a fixed order so the error a client sees is stable.
// Method: start from a request signed with the package's own SignRequest
// (its correctness is pinned by vectors_test.go and sdk_test.go), break
// one thing, and compare the *Error; for presigned URLs, start from the S3
// documentation's example URL.

package auth

import (
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"testing"
	"time"
)

func signedPut(t *testing.T, body string) *http.Request {
	t.Helper()
	r := httptest.NewRequest("PUT", "http://examplebucket.s3.amazonaws.com/photos/a%20b.jpg?partNumber=1&uploadId=xyz", strings.NewReader(body))
	r.Header.Set("X-Amz-Meta-Owner", "alice")
	SignRequest(r, Credentials{docAK, docSK}, "us-east-1", docTime, testSHA256Hex([]byte(body)))
	return r
}

func TestSignRequestRoundTrip(t *testing.T) {
	r := signedPut(t, "hello")
	res, err := docVerifier().Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := io.ReadAll(res.Body); err != nil || string(b) != "hello" {
		t.Fatalf("%q %v", b, err)
	}
	if err := res.Body.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestVerifyRejections(t *testing.T) {
	type tc struct {
		name    string
		req     func(t *testing.T) *http.Request
		verify  func(v *Verifier)
		code    string
		status  int
		message string // substring, when the wording matters to clients
	}
	setAuth := func(value string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := signedPut(t, "x")
			r.Header.Set("Authorization", value)
			return r
		}
	}
	replaceAuth := func(old, new string) func(t *testing.T) *http.Request {
		return func(t *testing.T) *http.Request {
			r := signedPut(t, "x")
			r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), old, new, 1))
			return r
		}
	}
	const cred = "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host;x-amz-date, Signature=" + docSeed
	cases := []tc{
		{name: "anonymous", req: func(t *testing.T) *http.Request { return httptest.NewRequest("GET", "/b/k", nil) },
			code: CodeAccessDenied, status: 403},
		{name: "signature v2 header", req: setAuth("AWS AKIAIOSFODNN7EXAMPLE:frJIUN8DYpKDtOLCwo//yllqDzg="),
			code: CodeInvalidRequest, status: 400, message: "Please use AWS4-HMAC-SHA256."},
		{name: "signature v2 query", req: func(t *testing.T) *http.Request {
			return httptest.NewRequest("GET", "/b/k?AWSAccessKeyId=AKIAIOSFODNN7EXAMPLE&Expires=1141889120&Signature=vjbyPxybdZaNmGa%2ByT272YEAiv4%3D", nil)
		}, code: CodeInvalidRequest, status: 400, message: "Please use AWS4-HMAC-SHA256."},
		{name: "bearer token", req: setAuth("Bearer abc"), code: CodeInvalidArgument, status: 400, message: "Unsupported Authorization Type"},
		{name: "sigv4a", req: setAuth("AWS4-ECDSA-P256-SHA256 Credential=x"), code: CodeInvalidArgument, status: 400},
		{name: "algorithm glued to credential", req: replaceAuth("AWS4-HMAC-SHA256 ", "AWS4-HMAC-SHA256"), code: CodeInvalidArgument, status: 400},
		{name: "missing Signature", req: setAuth("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders=host"),
			code: CodeAuthorizationHeaderMalformed, status: 400, message: "requires three components"},
		{name: "component without =", req: setAuth(cred + ", Bogus"), code: CodeAuthorizationHeaderMalformed, status: 400},
		{name: "unknown component", req: setAuth(cred + ", Foo=bar"), code: CodeAuthorizationHeaderMalformed, status: 400},
		{name: "empty SignedHeaders", req: replaceAuth("SignedHeaders=", "SignedHeaders=;"), code: CodeAuthorizationHeaderMalformed, status: 400},
		{name: "repeated signed header", req: replaceAuth("SignedHeaders=", "SignedHeaders=Host;"), code: CodeAuthorizationHeaderMalformed, status: 400},
		{name: "short credential", req: setAuth("AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3, SignedHeaders=host, Signature=x"),
			code: CodeAuthorizationHeaderMalformed, status: 400, message: "Credential is mal-formed"},
		{name: "credential date format", req: replaceAuth("/20130524/", "/2013-05-24/"), code: CodeAuthorizationHeaderMalformed, status: 400, message: "incorrect date format"},
		{name: "credential region", req: replaceAuth("/us-east-1/", "/eu-west-1/"), code: CodeAuthorizationHeaderMalformed, status: 400,
			message: "the region 'eu-west-1' is wrong; expecting 'us-east-1'"},
		{name: "credential service", req: replaceAuth("/s3/", "/ec2/"), code: CodeAuthorizationHeaderMalformed, status: 400, message: `incorrect service "ec2"`},
		{name: "credential terminal", req: replaceAuth("/aws4_request", "/aws5_request"), code: CodeAuthorizationHeaderMalformed, status: 400, message: `incorrect terminal "aws5_request"`},
		{name: "credential day differs from x-amz-date", req: replaceAuth("/20130524/", "/20130525/"), code: CodeAuthorizationHeaderMalformed, status: 400,
			message: "Date is not the same as X-Amz-Date"},
		{name: "x-amz-date unparsable", req: func(t *testing.T) *http.Request {
			r := signedPut(t, "x")
			r.Header.Set("X-Amz-Date", "Fri, 24 May 2013 00:00:00 GMT")
			return r
		}, code: CodeAccessDenied, status: 403, message: "valid Date or x-amz-date"},
		{name: "clock skew", req: func(t *testing.T) *http.Request { return signedPut(t, "x") },
			verify: func(v *Verifier) { v.Now = fixedClock(docTime.Add(maxSkew + time.Second)) },
			code:   CodeRequestTimeTooSkewed, status: 403},
		{name: "legacy unsigned streaming token", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest("PUT", "http://examplebucket.s3.amazonaws.com/k", strings.NewReader("1\r\nx\r\n0\r\n\r\n"))
			SignRequest(r, Credentials{docAK, docSK}, "us-east-1", docTime, "STREAMING-UNSIGNED-PAYLOAD")
			return r
		}, code: CodeInvalidArgument, status: 400, message: "x-amz-content-sha256 must be"},
		{name: "streaming without decoded length", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest("PUT", "http://examplebucket.s3.amazonaws.com/k", strings.NewReader("1\r\nx\r\n0\r\n\r\n"))
			SignRequest(r, Credentials{docAK, docSK}, "us-east-1", docTime, ModeStreamingUnsignedTrailer)
			return r
		}, code: CodeMissingContentLength, status: 411},
		{name: "streaming with unparsable decoded length", req: func(t *testing.T) *http.Request {
			r := httptest.NewRequest("PUT", "http://examplebucket.s3.amazonaws.com/k", strings.NewReader("1\r\nx\r\n0\r\n\r\n"))
			r.Header.Set("X-Amz-Decoded-Content-Length", "-1")
			SignRequest(r, Credentials{docAK, docSK}, "us-east-1", docTime, ModeStreamingUnsignedTrailer)
			return r
		}, code: CodeMissingContentLength, status: 411},
		{name: "header and query auth together", req: func(t *testing.T) *http.Request {
			r := signedPut(t, "x")
			r.URL.RawQuery += "&X-Amz-Algorithm=AWS4-HMAC-SHA256"
			return r
		}, code: CodeInvalidArgument, status: 400, message: "Only one auth mechanism"},
		{name: "unsigned x-amz header lists all missing", req: func(t *testing.T) *http.Request {
			r := signedPut(t, "x")
			r.Header.Set("X-Amz-Tagging", "a=b")
			r.Header.Set("X-Amz-Acl", "public-read")
			return r
		}, code: CodeAccessDenied, status: 403, message: "not signed"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := docVerifier()
			if c.verify != nil {
				c.verify(v)
			}
			_, err := v.Verify(c.req(t))
			e := wantCode(t, err, c.code)
			if e.Status != c.status {
				t.Errorf("status %d, want %d", e.Status, c.status)
			}
			if !strings.Contains(e.Message, c.message) {
				t.Errorf("message %q lacks %q", e.Message, c.message)
			}
		})
	}
}

func TestVerifyErrorDetails(t *testing.T) {
	r := signedPut(t, "x")
	r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "/us-east-1/", "/eu-west-1/", 1))
	_, err := docVerifier().Verify(r)
	if e := wantCode(t, err, CodeAuthorizationHeaderMalformed); e.Field("Region") != "us-east-1" {
		t.Fatalf("fields %v", e.Fields)
	}

	r = signedPut(t, "x")
	r.Header.Set("X-Amz-Acl", "private")
	r.Header.Set("X-Amz-Tagging", "a=b")
	_, err = docVerifier().Verify(r)
	if e := wantCode(t, err, CodeAccessDenied); e.Field("HeadersNotSigned") != "x-amz-acl, x-amz-tagging" {
		t.Fatalf("fields %v", e.Fields)
	}

	v := docVerifier()
	v.Now = fixedClock(docTime.Add(time.Hour))
	_, err = v.Verify(signedPut(t, "x"))
	if e := wantCode(t, err, CodeRequestTimeTooSkewed); e.Field("MaxAllowedSkewMilliseconds") != "900000" || e.Field("RequestTime") != "20130524T000000Z" {
		t.Fatalf("fields %v", e.Fields)
	}

	r = signedPut(t, "x")
	r.Header.Set("Authorization", r.Header.Get("Authorization")[:len(r.Header.Get("Authorization"))-1]+"0")
	_, err = docVerifier().Verify(r)
	if e := wantCode(t, err, CodeSignatureDoesNotMatch); e.Field("AWSAccessKeyId") != docAK {
		t.Fatalf("fields %v", e.Fields)
	}
	if got := err.Error(); !strings.HasPrefix(got, "SignatureDoesNotMatch: ") {
		t.Fatalf("Error() = %q", got)
	}
	if ErrorCode(nil) != "" || ErrorCode(errors.New("x")) != "" {
		t.Fatal("ErrorCode of a non-S3 error")
	}
}

func TestVerifyDateFallbacks(t *testing.T) {
	for _, date := range []string{"Fri, 24 May 2013 00:00:00 GMT", "20130524T000000Z"} {
		r := httptest.NewRequest("GET", "http://examplebucket.s3.amazonaws.com/k", nil)
		r.Header.Set("Date", date)
		SignRequest(r, Credentials{docAK, docSK}, "us-east-1", docTime, emptySHA256)
		// SignRequest sets x-amz-date; take it away so Date must serve.
		r.Header.Del("X-Amz-Date")
		r.Header.Set("Authorization", strings.Replace(r.Header.Get("Authorization"), "x-amz-date;", "", 1))
		sig := recomputeWithout(t, r)
		r.Header.Set("Authorization", sig)
		if _, err := docVerifier().Verify(r); err != nil {
			t.Fatalf("Date %q: %v", date, err)
		}
	}
}

// recomputeWithout re-signs r over the headers its Authorization lists.
func recomputeWithout(t *testing.T, r *http.Request) string {
	h, e := parseAuthHeader(r.Header.Get("Authorization"))
	if e != nil {
		t.Fatal(e)
	}
	sts := stringToSign(docTime, h.cred.scope(), canonicalRequest(r, h.signedHeaders, r.Header.Get("X-Amz-Content-Sha256"), false))
	sig := signHex(SigningKey(docSK, docTime, "us-east-1", "s3"), sts)
	a := r.Header.Get("Authorization")
	return a[:strings.LastIndex(a, "=")+1] + sig
}

func TestVerifyAnyRegionWhenUnset(t *testing.T) {
	r := httptest.NewRequest("GET", "http://h/k", nil)
	SignRequest(r, Credentials{docAK, docSK}, "ap-south-2", docTime, emptySHA256)
	v := docVerifier()
	v.Region = ""
	if _, err := v.Verify(r); err != nil {
		t.Fatal(err)
	}
	if IsAnonymous(r) || !IsAnonymous(httptest.NewRequest("GET", "/x?prefix=a", nil)) {
		t.Fatal("IsAnonymous")
	}
	if _, err := (&Verifier{}).Verify(r); err == nil || ErrorCode(err) != "" {
		t.Fatalf("no Lookup: %v", err)
	}
}

func TestVerifyPayloadHash(t *testing.T) {
	// Uppercase hex is still the same digest.
	r := httptest.NewRequest("PUT", "http://h/k", strings.NewReader("abc"))
	SignRequest(r, Credentials{docAK, docSK}, "us-east-1", docTime, strings.ToUpper(testSHA256Hex([]byte("abc"))))
	res, err := docVerifier().Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(res.Body); err != nil {
		t.Fatal(err)
	}

	// Wrong body: the error replaces io.EOF and names both digests.
	r = httptest.NewRequest("PUT", "http://h/k", strings.NewReader("abd"))
	SignRequest(r, Credentials{docAK, docSK}, "us-east-1", docTime, testSHA256Hex([]byte("abc")))
	res, err = docVerifier().Verify(r)
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(res.Body)
	e := wantCode(t, err, CodeXAmzContentSHA256Mismatch)
	if e.Field("S3ComputedContentSHA256") != testSHA256Hex([]byte("abd")) {
		t.Fatalf("fields %v", e.Fields)
	}
	if _, again := res.Body.Read(make([]byte, 1)); again != err {
		t.Fatal("error not sticky")
	}

	// A body cut short of its Content-Length, for every payload mode that
	// has no framing of its own.
	for _, hash := range []string{testSHA256Hex([]byte("0123456789")), ModeUnsignedPayload} {
		r := httptest.NewRequest("PUT", "http://h/k", strings.NewReader("0123456789"))
		SignRequest(r, Credentials{docAK, docSK}, "us-east-1", docTime, hash)
		head := "PUT /k HTTP/1.1\nHost: h\nContent-Length: 10\n"
		for _, k := range []string{"Authorization", "X-Amz-Date", "X-Amz-Content-Sha256"} {
			head += k + ": " + r.Header.Get(k) + "\n"
		}
		res, err := docVerifier().Verify(readRaw(t, head, []byte("01234")))
		if err != nil {
			t.Fatalf("%s: %v", hash, err)
		}
		_, err = io.ReadAll(res.Body)
		wantCode(t, err, CodeIncompleteBody)
	}
}

// Hostile sizes: many unsigned x-amz headers against a long signed-header
// list, and many signed names absent from a hand-built header map, must
// stay linear-time (this finishes in milliseconds; a quadratic check took
// minutes).
func TestVerifyLargeHeaderSets(t *testing.T) {
	const n = 20000
	r := httptest.NewRequest("GET", "http://examplebucket.s3.amazonaws.com/k", nil)
	names := make([]string, 0, n+3)
	for i := range n {
		r.Header["x-amz-meta-"+strconv.Itoa(i)] = []string{"v"}
		names = append(names, "x-amz-bogus-"+strconv.Itoa(i))
	}
	names = append(names, "host", "x-amz-content-sha256", "x-amz-date")
	r.Header.Set("X-Amz-Date", "20130524T000000Z")
	r.Header.Set("X-Amz-Content-Sha256", emptySHA256)
	r.Header.Set("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20130524/us-east-1/s3/aws4_request, SignedHeaders="+strings.Join(names, ";")+", Signature="+docSeed)
	_, err := docVerifier().Verify(r)
	wantCode(t, err, CodeAccessDenied) // the x-amz-meta-* headers are unsigned

	for k := range r.Header {
		if strings.HasPrefix(k, "x-amz-meta-") {
			delete(r.Header, k)
		}
	}
	_, err = docVerifier().Verify(r)
	wantCode(t, err, CodeSignatureDoesNotMatch)
}

func TestPresignRejections(t *testing.T) {
	const base = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404"
	cases := []struct {
		name, old, new, code, message string
	}{
		{"documented URL", "", "", "", ""},
		{"other algorithm", "AWS4-HMAC-SHA256", "AWS4-ECDSA-P256-SHA256", CodeAuthorizationQueryParametersError, "only supports"},
		{"missing expiry", "&X-Amz-Expires=86400", "", CodeAuthorizationQueryParametersError, "requires the X-Amz-Algorithm"},
		{"missing signed headers", "&X-Amz-SignedHeaders=host", "", CodeAuthorizationQueryParametersError, "requires the X-Amz-Algorithm"},
		{"malformed credential", "%2Faws4_request", "", CodeAuthorizationQueryParametersError, "Credential is mal-formed"},
		{"wrong region", "us-east-1", "us-west-2", CodeAuthorizationQueryParametersError, "the region 'us-west-2' is wrong; expecting 'us-east-1'"},
		{"wrong service", "%2Fs3%2F", "%2Fiam%2F", CodeAuthorizationQueryParametersError, `incorrect service "iam"`},
		{"bad date", "X-Amz-Date=20130524T000000Z", "X-Amz-Date=2013-05-24", CodeAuthorizationQueryParametersError, "ISO8601 Long Format"},
		{"date not the credential's", "X-Amz-Date=20130524T000000Z", "X-Amz-Date=20130523T230000Z", CodeAuthorizationQueryParametersError, "Invalid credential date"},
		{"expiry not a number", "X-Amz-Expires=86400", "X-Amz-Expires=1d", CodeAuthorizationQueryParametersError, "should be a number"},
		{"negative expiry", "X-Amz-Expires=86400", "X-Amz-Expires=-5", CodeAuthorizationQueryParametersError, "non-negative"},
		{"over a week", "X-Amz-Expires=86400", "X-Amz-Expires=604801", CodeAuthorizationQueryParametersError, "less than a week"},
		{"zero expiry is already expired", "X-Amz-Expires=86400", "X-Amz-Expires=0", CodeAccessDenied, "Request has expired"},
		{"signature tampered", "X-Amz-Signature=a", "X-Amz-Signature=b", CodeSignatureDoesNotMatch, ""},
		{"bad pinned payload hash", "", "&X-Amz-Content-Sha256=nope", CodeInvalidArgument, "x-amz-content-sha256 must be"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			q := base
			if c.old != "" {
				q = strings.Replace(q, c.old, c.new, 1)
			} else {
				q += c.new
			}
			v := docVerifier()
			v.Now = fixedClock(docTime.Add(time.Hour))
			_, err := v.Verify(httptest.NewRequest("GET", "http://examplebucket.s3.amazonaws.com/test.txt?"+q, nil))
			if c.code == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			e := wantCode(t, err, c.code)
			if !strings.Contains(e.Message, c.message) {
				t.Fatalf("message %q lacks %q", e.Message, c.message)
			}
		})
	}
}

// A presigned URL may pin the payload: then the body is checked as for a
// header-signed request.
func TestPresignPinnedPayload(t *testing.T) {
	body := "pinned body"
	target := "http://examplebucket.s3.amazonaws.com/k?X-Amz-Content-Sha256=" + testSHA256Hex([]byte(body))
	u, err := Presign(httptest.NewRequest("PUT", target, nil), Credentials{docAK, docSK}, "us-east-1", docTime, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// Presign signs UNSIGNED-PAYLOAD; re-sign by hand over the pinned hash.
	r := httptest.NewRequest("PUT", u, strings.NewReader(body))
	q := r.URL.Query()
	sts := stringToSign(docTime, "20130524/us-east-1/s3/aws4_request", canonicalRequest(r, []string{"host"}, testSHA256Hex([]byte(body)), true))
	q.Set("X-Amz-Signature", signHex(SigningKey(docSK, docTime, "us-east-1", "s3"), sts))
	r.URL.RawQuery = q.Encode()
	for _, b := range []string{body, "other body!"} {
		rr := r.Clone(r.Context())
		rr.Body = io.NopCloser(strings.NewReader(b))
		res, err := docVerifier().Verify(rr)
		if err != nil {
			t.Fatal(err)
		}
		_, err = io.ReadAll(res.Body)
		if b == body && err != nil {
			t.Fatal(err)
		}
		if b != body {
			wantCode(t, err, CodeXAmzContentSHA256Mismatch)
		}
	}
	if _, err := Presign(httptest.NewRequest("GET", target, nil), Credentials{docAK, docSK}, "us-east-1", docTime, 8*24*time.Hour); err == nil {
		t.Fatal("Presign accepted an expiry over a week")
	}
}

// TestVerifyHostMustBeSigned: a signature that leaves host out does not
// name the endpoint or (virtual-hosted style) the bucket, so it could be
// replayed against another. Each form is refused as S3 refuses it, although
// its signature is otherwise right.
func TestVerifyHostMustBeSigned(t *testing.T) {
	withoutHost := func(r *http.Request) *http.Request {
		a := r.Header.Get("Authorization")
		r.Header.Set("Authorization", strings.NewReplacer(";host;", ";", "=host;", "=").Replace(a))
		r.Header.Set("Authorization", recomputeWithout(t, r))
		return r
	}
	presigned := func(signed string) *http.Request {
		r := httptest.NewRequest("GET", "http://examplebucket.s3.amazonaws.com/test.txt", nil)
		r.Header.Set("Range", "bytes=0-9")
		q := r.URL.Query()
		q.Set("X-Amz-Algorithm", algorithm)
		q.Set("X-Amz-Credential", docAK+"/20130524/us-east-1/s3/aws4_request")
		q.Set("X-Amz-Date", "20130524T000000Z")
		q.Set("X-Amz-Expires", "86400")
		q.Set("X-Amz-SignedHeaders", signed)
		r.URL.RawQuery = q.Encode()
		sts := stringToSign(docTime, "20130524/us-east-1/s3/aws4_request", canonicalRequest(r, strings.Split(signed, ";"), ModeUnsignedPayload, true))
		q.Set("X-Amz-Signature", signHex(SigningKey(docSK, docTime, "us-east-1", "s3"), sts))
		r.URL.RawQuery = q.Encode()
		return r
	}
	streaming := func() *http.Request {
		r := httptest.NewRequest("PUT", "http://examplebucket.s3.amazonaws.com/k", strings.NewReader("0;chunk-signature=x\r\n\r\n"))
		r.Header.Set("X-Amz-Decoded-Content-Length", "0")
		SignRequest(r, Credentials{docAK, docSK}, "us-east-1", docTime, ModeStreamingSigned)
		return r
	}
	cases := []struct {
		name     string
		req      func() *http.Request
		unsigned string // HeadersNotSigned; "" means the request verifies
	}{
		{"header form signing host", func() *http.Request { return signedPut(t, "x") }, ""},
		{"header form", func() *http.Request { return withoutHost(signedPut(t, "x")) }, "host"},
		{"header form, an x-amz header unsigned too", func() *http.Request {
			r := withoutHost(signedPut(t, "x"))
			r.Header.Set("X-Amz-Tagging", "a=b")
			return r
		}, "host, x-amz-tagging"},
		{"streaming signing host", streaming, ""},
		{"streaming", func() *http.Request { return withoutHost(streaming()) }, "host"},
		{"presigned signing host", func() *http.Request { return presigned("host;range") }, ""},
		{"presigned", func() *http.Request { return presigned("range") }, "host"},
		{"presigned, host in capitals", func() *http.Request { return presigned("Host;range") }, ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			v := docVerifier()
			v.Now = fixedClock(docTime.Add(time.Minute))
			_, err := v.Verify(c.req())
			if c.unsigned == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			e := wantCode(t, err, CodeAccessDenied)
			if e.Status != http.StatusForbidden || e.Field("HeadersNotSigned") != c.unsigned || !strings.Contains(e.Message, "not signed") {
				t.Fatalf("%d %q %v", e.Status, e.Message, e.Fields)
			}
		})
	}
}
