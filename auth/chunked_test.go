// Unit tests of the aws-chunked decoder. Goal: every framing or signature
// defect ends in the right S3 error, never in io.EOF, and good streams
// decode exactly whatever the read sizes. Method: encode bodies with the
// independent test encoder (helpers_test.go), damage them one way each
// (tampered signatures, truncation at every byte offset, oversized lines,
// bad hex, missing final chunk, trailer variants) and read them through
// NewChunkedReader directly, with the documented example's key and clock.

package auth

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

const docSeed = "4f232c4386841ef735655705268965c44a0e4690baa4adea153f7db9fa80a0a9"

// signedOpts are options for a signed stream under the doc credentials.
func signedOpts(seed string, decoded int64, trailers ...string) ChunkedOptions {
	return ChunkedOptions{
		Signed:           true,
		Trailer:          trailers != nil,
		SigningKey:       SigningKey(docSK, docTime, "us-east-1", "s3"),
		Time:             docTime,
		Scope:            "20130524/us-east-1/s3/aws4_request",
		SeedSignature:    seed,
		ExpectedTrailers: trailers,
		DecodedLength:    decoded,
		MinChunkSize:     MinChunkSize,
	}
}

func unsignedOpts(decoded int64, trailers ...string) ChunkedOptions {
	return ChunkedOptions{Trailer: true, ExpectedTrailers: trailers, DecodedLength: decoded, MinChunkSize: MinChunkSize}
}

func decode(body []byte, opts ChunkedOptions) ([]byte, *ChunkedReader, error) {
	cr := NewChunkedReader(bytes.NewReader(body), opts)
	got, err := io.ReadAll(cr)
	return got, cr, err
}

func TestChunkedDocExample(t *testing.T) {
	got, _, err := decode(docChunkedBody(), signedOpts(docSeed, 66560))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, bytes.Repeat([]byte("a"), 66560)) {
		t.Fatalf("decoded %d bytes", len(got))
	}
	// iotest.TestReader reads with odd sizes and checks io.Reader rules.
	cr := NewChunkedReader(bytes.NewReader(docChunkedBody()), signedOpts(docSeed, 66560))
	if err := iotest.TestReader(cr, bytes.Repeat([]byte("a"), 66560)); err != nil {
		t.Fatal(err)
	}
	// One byte at a time from the network must not change the outcome.
	cr = NewChunkedReader(iotest.OneByteReader(bytes.NewReader(docChunkedBody())), signedOpts(docSeed, 66560))
	if got, err := io.ReadAll(cr); err != nil || len(got) != 66560 {
		t.Fatalf("one-byte reads: %d bytes, %v", len(got), err)
	}
}

func TestChunkedTamperedSignatures(t *testing.T) {
	const zero = "0000000000000000000000000000000000000000000000000000000000000000"
	for i := range 3 {
		sigs := make([]string, 3)
		sigs[i] = zero
		_, _, err := decode(docChunkedBody(sigs...), signedOpts(docSeed, 66560))
		if wantCode(t, err, CodeSignatureDoesNotMatch); !strings.Contains(err.Error(), fmt.Sprintf("chunk %d", i+1)) {
			t.Errorf("chunk %d: error does not name the chunk: %v", i+1, err)
		}
	}
	// A wrong seed breaks the chain at the first chunk.
	_, _, err := decode(docChunkedBody(), signedOpts(zero, 66560))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	// Swapping two valid chunks keeps every signature well-formed but
	// breaks the chain: the chain is what orders chunks.
	s := newTestChunkSigner(docSK, docTime, "us-east-1", docSeed)
	a, b := bytes.Repeat([]byte("a"), 9000), bytes.Repeat([]byte("b"), 9000)
	sa, sb := s.next(a), s.next(b)
	swapped := fmt.Sprintf("%x;chunk-signature=%s\r\n%s\r\n%x;chunk-signature=%s\r\n%s\r\n0;chunk-signature=%s\r\n\r\n",
		len(b), sb, b, len(a), sa, a, s.next(nil))
	_, _, err = decode([]byte(swapped), signedOpts(docSeed, 18000))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	// A malformed signature is refused at the header.
	_, _, err = decode(bytes.Replace(docChunkedBody(), []byte("ad80c730"), []byte("ad80c73x"), 1), signedOpts(docSeed, 66560))
	wantCode(t, err, CodeSignatureDoesNotMatch)
	// Tampered data under an intact signature.
	body := docChunkedBody()
	body[200] = 'b'
	_, _, err = decode(body, signedOpts(docSeed, 66560))
	wantCode(t, err, CodeSignatureDoesNotMatch)
}

// Cutting a valid stream anywhere must give an error, never a clean EOF:
// a client that disconnects mid-upload must not leave a short object.
func TestChunkedTruncatedEverywhere(t *testing.T) {
	chunks := [][]byte{bytes.Repeat([]byte("x"), MinChunkSize), []byte("tail of the object")}
	cases := []struct {
		name string
		body []byte
		opts ChunkedOptions
	}{
		{"signed", encodeSigned(newTestChunkSigner(docSK, docTime, "us-east-1", docSeed), chunks, nil), signedOpts(docSeed, totalLen(chunks))},
		{"signed trailer", encodeSigned(newTestChunkSigner(docSK, docTime, "us-east-1", docSeed), chunks, []string{"x-amz-checksum-crc32:AAAAAA=="}), signedOpts(docSeed, totalLen(chunks), "x-amz-checksum-crc32")},
		{"unsigned trailer", encodeUnsigned(chunks, []string{"x-amz-checksum-crc32:AAAAAA=="}), unsignedOpts(totalLen(chunks), "x-amz-checksum-crc32")},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if _, _, err := decode(c.body, c.opts); err != nil {
				t.Fatalf("whole body: %v", err)
			}
			for cut := range len(c.body) {
				got, _, err := decode(c.body[:cut], c.opts)
				if err == nil {
					t.Fatalf("cut at %d of %d: clean EOF after %d bytes", cut, len(c.body), len(got))
				}
				if code := ErrorCode(err); code != CodeIncompleteBody {
					t.Fatalf("cut at %d: %v", cut, err)
				}
			}
		})
	}
}

func TestChunkedFramingErrors(t *testing.T) {
	s := func() *testChunkSigner { return newTestChunkSigner(docSK, docTime, "us-east-1", docSeed) }
	data := bytes.Repeat([]byte("d"), 10)
	good := encodeSigned(s(), [][]byte{data}, nil)
	sig1 := s().next(data)
	cases := []struct {
		name string
		body string
		opts ChunkedOptions
		code string
	}{
		{"oversized chunk header", strings.Repeat("a", 5000) + "\r\n", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"oversized header of digits", strings.Repeat("0", maxChunkLine+10) + "a;chunk-signature=" + sig1 + "\r\n", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"bad hex", "zz;chunk-signature=" + sig1 + "\r\n", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"negative size", "-a;chunk-signature=" + sig1 + "\r\n", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"empty size", ";chunk-signature=" + sig1 + "\r\n", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"huge size", "fffffffffffffffff;chunk-signature=" + sig1 + "\r\n", signedOpts(docSeed, -1), CodeIncompleteBody},
		{"LF only", "a;chunk-signature=" + sig1 + "\n" + string(data) + "\r\n", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"missing chunk-signature", "a\r\n" + string(data) + "\r\n", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"other extension", "a;foo=bar\r\n" + string(data) + "\r\n", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"data not followed by CRLF", "a;chunk-signature=" + sig1 + "\r\n" + string(data) + "XX", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"missing final chunk", string(good[:bytes.LastIndex(good, []byte("0;chunk"))]), signedOpts(docSeed, 10), CodeIncompleteBody},
		{"final chunk without closing line", strings.TrimSuffix(string(good), "\r\n"), signedOpts(docSeed, 10), CodeIncompleteBody},
		{"data after the end", string(good) + "junk", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"trailer in a non-trailer stream", strings.TrimSuffix(string(good), "\r\n") + "x-amz-checksum-crc32:AAAAAA==\r\n\r\n", signedOpts(docSeed, 10), CodeIncompleteBody},
		{"declared length too long", string(good), signedOpts(docSeed, 11), CodeIncompleteBody},
		{"declared length too short", string(good), signedOpts(docSeed, 9), CodeIncompleteBody},
		{"empty body", "", signedOpts(docSeed, 0), CodeIncompleteBody},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, _, err := decode([]byte(c.body), c.opts)
			wantCode(t, err, c.code)
			if len(got) > len(c.body) {
				t.Fatalf("returned %d bytes from a %d-byte body", len(got), len(c.body))
			}
		})
	}
}

// S3 wants every chunk but the last to be at least 8 KiB and names the
// chunk where it noticed and the short size (AWS-probed: sizes 5 then 13
// give Chunk 2, BadChunkSize 5).
func TestChunkedMinimumChunkSize(t *testing.T) {
	chunks := [][]byte{[]byte("small"), []byte("another chunk")}
	body := encodeSigned(newTestChunkSigner(docSK, docTime, "us-east-1", docSeed), chunks, nil)
	_, _, err := decode(body, signedOpts(docSeed, totalLen(chunks)))
	e := wantCode(t, err, CodeInvalidChunkSizeError)
	if e.Status != 403 || e.Field("Chunk") != "2" || e.Field("BadChunkSize") != "5" {
		t.Fatalf("got %d %+v", e.Status, e.Fields)
	}
	// A short last data chunk, and a lone short chunk, are fine.
	for _, chunks := range [][][]byte{{bytes.Repeat([]byte("x"), MinChunkSize), []byte("x")}, {[]byte("x")}} {
		body := encodeSigned(newTestChunkSigner(docSK, docTime, "us-east-1", docSeed), chunks, nil)
		if _, _, err := decode(body, signedOpts(docSeed, totalLen(chunks))); err != nil {
			t.Fatal(err)
		}
	}
	// MinChunkSize 0 turns the rule off for callers that want leniency.
	opts := signedOpts(docSeed, totalLen(chunks))
	opts.MinChunkSize = 0
	if _, _, err := decode(body, opts); err != nil {
		t.Fatal(err)
	}
}

func TestChunkedTrailers(t *testing.T) {
	data := [][]byte{bytes.Repeat([]byte("t"), 12345)}
	const crc = "x-amz-checksum-crc32:i9aeUg=="
	signer := func() *testChunkSigner { return newTestChunkSigner(docSK, docTime, "us-east-1", docSeed) }

	t.Run("unsigned trailer with checksum", func(t *testing.T) {
		got, cr, err := decode(encodeUnsigned(data, []string{crc}), unsignedOpts(12345, "x-amz-checksum-crc32"))
		if err != nil || len(got) != 12345 {
			t.Fatalf("%d bytes, %v", len(got), err)
		}
		if v := cr.Trailer().Get("x-amz-checksum-crc32"); v != "" {
			t.Fatalf("trailer keys must stay lowercase, Get found %q", v)
		}
		if v := cr.Trailer()["x-amz-checksum-crc32"]; len(v) != 1 || v[0] != "i9aeUg==" {
			t.Fatalf("trailer %v", cr.Trailer())
		}
	})
	t.Run("unsigned trailer, none announced or sent", func(t *testing.T) {
		_, cr, err := decode(encodeUnsigned(data, nil), unsignedOpts(12345))
		if err != nil || cr.Trailer() != nil {
			t.Fatalf("%v %v", err, cr.Trailer())
		}
	})
	t.Run("signed trailer", func(t *testing.T) {
		_, cr, err := decode(encodeSigned(signer(), data, []string{crc}), signedOpts(docSeed, 12345, "x-amz-checksum-crc32"))
		if err != nil || cr.Trailer()["x-amz-checksum-crc32"][0] != "i9aeUg==" {
			t.Fatalf("%v %v", err, cr.Trailer())
		}
	})
	t.Run("signed trailer, value tampered", func(t *testing.T) {
		body := encodeSigned(signer(), data, []string{crc})
		body = bytes.Replace(body, []byte("i9aeUg=="), []byte("AAAAAA=="), 1)
		_, cr, err := decode(body, signedOpts(docSeed, 12345, "x-amz-checksum-crc32"))
		wantCode(t, err, CodeSignatureDoesNotMatch)
		if cr.Trailer() != nil {
			t.Fatal("tampered trailer exposed")
		}
	})
	t.Run("signed trailer, signature tampered", func(t *testing.T) {
		body := encodeSigned(signer(), data, []string{crc})
		i := bytes.Index(body, []byte("x-amz-trailer-signature:")) + len("x-amz-trailer-signature:")
		body[i] ^= 1
		_, _, err := decode(body, signedOpts(docSeed, 12345, "x-amz-checksum-crc32"))
		wantCode(t, err, CodeSignatureDoesNotMatch)
	})

	unsignedWith := func(lines ...string) []byte { return encodeUnsigned(data, lines) }
	var bigNames, bigTrailers []string
	for i := range 6 {
		bigNames = append(bigNames, fmt.Sprintf("x-amz-meta-%d", i))
		bigTrailers = append(bigTrailers, bigNames[i]+":"+strings.Repeat("v", 3000))
	}
	bad := []struct {
		name string
		body []byte
		opts ChunkedOptions
		code string
	}{
		{"announced trailer missing", unsignedWith(), unsignedOpts(12345, "x-amz-checksum-crc32"), CodeMalformedTrailerError},
		{"trailer not announced", unsignedWith(crc), unsignedOpts(12345), CodeMalformedTrailerError},
		{"other trailer than announced", unsignedWith("x-amz-checksum-sha256:AAAA"), unsignedOpts(12345, "x-amz-checksum-crc32"), CodeMalformedTrailerError},
		{"trailer sent twice", unsignedWith(crc, crc), unsignedOpts(12345, "x-amz-checksum-crc32"), CodeMalformedTrailerError},
		{"line without colon", unsignedWith("no-colon-here"), unsignedOpts(12345, "x-amz-checksum-crc32"), CodeIncompleteBody},
		{"trailer signature in unsigned stream", unsignedWith(crc, "x-amz-trailer-signature:"+docSeed), unsignedOpts(12345, "x-amz-checksum-crc32"), CodeMalformedTrailerError},
		{"signed stream without trailer signature", bytes.Replace(encodeSigned(signer(), data, []string{crc}), []byte("x-amz-trailer-signature"), []byte("x-amz-checksum-crc32c"), 1), signedOpts(docSeed, 12345, "x-amz-checksum-crc32"), CodeMalformedTrailerError},
		{"oversized trailer section", unsignedWith(bigTrailers...), unsignedOpts(12345, bigNames...), CodeMalformedTrailerError},
		{"trailer line too long", unsignedWith("x-amz-checksum-crc32:" + strings.Repeat("A", 5000)), unsignedOpts(12345, "x-amz-checksum-crc32"), CodeIncompleteBody},
	}
	for _, c := range bad {
		t.Run(c.name, func(t *testing.T) {
			_, cr, err := decode(c.body, c.opts)
			wantCode(t, err, c.code)
			if cr.Trailer() != nil {
				t.Fatal("trailers exposed after failure")
			}
		})
	}
}

func TestChunkedErrorsAreSticky(t *testing.T) {
	cr := NewChunkedReader(strings.NewReader("zz\r\n"), unsignedOpts(1))
	_, err1 := cr.Read(make([]byte, 10))
	_, err2 := cr.Read(make([]byte, 10))
	if err1 == nil || err1 != err2 {
		t.Fatalf("errors %v then %v", err1, err2)
	}
}

// A failing network read surfaces as itself (wrapped), not as a payload
// verdict, so the gateway can log it as a transport problem.
func TestChunkedPassesTransportErrors(t *testing.T) {
	boom := errors.New("connection reset")
	r := io.MultiReader(bytes.NewReader(docChunkedBody()[:1000]), iotest.ErrReader(boom))
	_, err := io.ReadAll(NewChunkedReader(r, signedOpts(docSeed, 66560)))
	if !errors.Is(err, boom) || ErrorCode(err) != "" {
		t.Fatalf("got %v", err)
	}
}

// A source that keeps returning (0, nil) must not spin the decoder forever.
func TestChunkedNoProgress(t *testing.T) {
	r := io.MultiReader(strings.NewReader("5\r\nab"), zeroReader{})
	_, err := io.ReadAll(NewChunkedReader(r, unsignedOpts(5)))
	if !errors.Is(err, io.ErrNoProgress) {
		t.Fatalf("got %v", err)
	}
}

type zeroReader struct{}

func (zeroReader) Read([]byte) (int, error) { return 0, nil }
