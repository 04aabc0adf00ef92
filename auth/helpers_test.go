// Shared test fixtures. Goal: give every test file the same published
// example credentials and clocks, a way to build requests exactly as Go's
// HTTP server parses them, and an aws-chunked encoder that does not share
// code with the decoder under test, so an encoder bug cannot mask a decoder
// bug. Method: the encoder computes signatures with crypto/hmac and
// fmt.Sprintf straight from the AWS documentation's formulas.

package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"
)

// The credentials and instant every S3 documentation example uses.
const (
	docAK = "AKIAIOSFODNN7EXAMPLE"
	docSK = "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY"
)

var docTime = time.Date(2013, 5, 24, 0, 0, 0, 0, time.UTC)

func fixedClock(t time.Time) func() time.Time { return func() time.Time { return t } }

// keys returns a KeyLookup over access-key/secret pairs.
func keys(pairs ...string) KeyLookup {
	m := map[string]string{}
	for i := 0; i+1 < len(pairs); i += 2 {
		m[pairs[i]] = pairs[i+1]
	}
	return func(ak string) (string, bool) { s, ok := m[ak]; return s, ok }
}

func docVerifier() *Verifier {
	return &Verifier{Region: "us-east-1", Lookup: keys(docAK, docSK), Now: fixedClock(docTime)}
}

// readRaw parses a request written with "\n" line ends the way Go's HTTP
// server does (Host into r.Host, Transfer-Encoding out of r.Header), so the
// verifier sees exactly what a handler would.
func readRaw(t testing.TB, head string, body []byte) *http.Request {
	t.Helper()
	head = strings.ReplaceAll(strings.TrimLeft(head, "\n"), "\n", "\r\n")
	if !strings.HasSuffix(head, "\r\n\r\n") {
		head = strings.TrimRight(head, "\r\n") + "\r\n\r\n"
	}
	r, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(append([]byte(head), body...))))
	if err != nil {
		t.Fatalf("parsing request: %v", err)
	}
	return r
}

// wantCode fails unless err carries an *Error with the given code.
func wantCode(t testing.TB, err error, code string) *Error {
	t.Helper()
	var e *Error
	if !errors.As(err, &e) {
		t.Fatalf("want S3 error %s, got %v", code, err)
	}
	if e.Code != code {
		t.Fatalf("want S3 error %s, got %s (%v)", code, e.Code, err)
	}
	return e
}

func testHMAC(key []byte, s string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(s))
	return m.Sum(nil)
}

func testSHA256Hex(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// testKey derives a signing key from the AWS formula, independently of
// SigningKey.
func testKey(secret, day, region, service string) []byte {
	k := testHMAC([]byte("AWS4"+secret), day)
	k = testHMAC(k, region)
	k = testHMAC(k, service)
	return testHMAC(k, "aws4_request")
}

// chunkSigner signs aws-chunked bodies from the documented formulas.
type testChunkSigner struct {
	key            []byte
	amzDate, scope string
	prev           string
}

func newTestChunkSigner(secret string, t time.Time, region, seed string) *testChunkSigner {
	day := t.UTC().Format("20060102")
	return &testChunkSigner{
		key:     testKey(secret, day, region, "s3"),
		amzDate: t.UTC().Format("20060102T150405Z"),
		scope:   day + "/" + region + "/s3/aws4_request",
		prev:    seed,
	}
}

func (s *testChunkSigner) next(data []byte) string {
	sts := fmt.Sprintf("AWS4-HMAC-SHA256-PAYLOAD\n%s\n%s\n%s\n%s\n%s",
		s.amzDate, s.scope, s.prev, testSHA256Hex(nil), testSHA256Hex(data))
	s.prev = hex.EncodeToString(testHMAC(s.key, sts))
	return s.prev
}

// trailer signs canonical trailer text ("name:value\n" lines).
func (s *testChunkSigner) trailer(canonical string) string {
	sts := fmt.Sprintf("AWS4-HMAC-SHA256-TRAILER\n%s\n%s\n%s\n%s",
		s.amzDate, s.scope, s.prev, testSHA256Hex([]byte(canonical)))
	return hex.EncodeToString(testHMAC(s.key, sts))
}

// encodeSigned frames chunks (then a final empty chunk) with signatures.
// trailers, if non-nil, are "name:value" lines followed by a trailer
// signature over them.
func encodeSigned(s *testChunkSigner, chunks [][]byte, trailers []string) []byte {
	var b bytes.Buffer
	for _, c := range chunks {
		fmt.Fprintf(&b, "%x;chunk-signature=%s\r\n", len(c), s.next(c))
		b.Write(c)
		b.WriteString("\r\n")
	}
	fmt.Fprintf(&b, "0;chunk-signature=%s\r\n", s.next(nil))
	if trailers != nil {
		var canon strings.Builder
		for _, t := range trailers {
			b.WriteString(t + "\r\n")
			canon.WriteString(t + "\n")
		}
		fmt.Fprintf(&b, "x-amz-trailer-signature:%s\r\n", s.trailer(canon.String()))
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

// encodeUnsigned frames chunks without signatures, then trailer lines.
func encodeUnsigned(chunks [][]byte, trailers []string) []byte {
	var b bytes.Buffer
	for _, c := range chunks {
		fmt.Fprintf(&b, "%x\r\n", len(c))
		b.Write(c)
		b.WriteString("\r\n")
	}
	b.WriteString("0\r\n")
	for _, t := range trailers {
		b.WriteString(t + "\r\n")
	}
	b.WriteString("\r\n")
	return b.Bytes()
}

func totalLen(chunks [][]byte) int64 {
	var n int64
	for _, c := range chunks {
		n += int64(len(c))
	}
	return n
}
