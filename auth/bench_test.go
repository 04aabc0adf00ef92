// Benchmarks. Goal: know the per-request cost of header verification and
// the throughput of signed aws-chunked decoding. Method: the header
// benchmark verifies a typical SDK-style PUT (content hash, metadata, a
// query) and drains its 4 KiB body; the chunked benchmark decodes 64 MiB
// framed in signed 64 KiB chunks, the size the AWS SDKs and minio-go use,
// with b.SetBytes so the figure reads as MB/s.

package auth

import (
	"bytes"
	"io"
	"net/http/httptest"
	"testing"
)

func BenchmarkVerifyHeader(b *testing.B) {
	body := bytes.Repeat([]byte("b"), 4096)
	proto := httptest.NewRequest("PUT", "http://examplebucket.s3.amazonaws.com/photos/2026/03/holiday%20pic.jpg?x-id=PutObject", bytes.NewReader(body))
	proto.Header.Set("Content-Type", "image/jpeg")
	proto.Header.Set("X-Amz-Meta-Camera", "x100")
	proto.Header.Set("X-Amz-Storage-Class", "STANDARD")
	SignRequest(proto, Credentials{docAK, docSK}, "us-east-1", docTime, testSHA256Hex(body))
	v := docVerifier()
	b.ReportAllocs()
	b.SetBytes(int64(len(body)))
	for b.Loop() {
		r := *proto
		r.Body = io.NopCloser(bytes.NewReader(body))
		res, err := v.Verify(&r)
		if err != nil {
			b.Fatal(err)
		}
		if _, err := io.Copy(io.Discard, res.Body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkChunkedReader(b *testing.B) {
	const total, chunk = 64 << 20, 64 << 10
	data := bytes.Repeat([]byte("0123456789abcdef"), chunk/16)
	chunks := make([][]byte, total/chunk)
	for i := range chunks {
		chunks[i] = data
	}
	body := encodeSigned(newTestChunkSigner(docSK, docTime, "us-east-1", docSeed), chunks, nil)
	opts := signedOpts(docSeed, total)
	buf := make([]byte, 32<<10)
	b.ReportAllocs()
	b.SetBytes(total)
	for b.Loop() {
		// Hiding io.Discard's ReadFrom makes the copy use buf's 32 KiB reads,
		// the size a storage writer typically asks for.
		n, err := io.CopyBuffer(struct{ io.Writer }{io.Discard}, NewChunkedReader(bytes.NewReader(body), opts), buf)
		if err != nil || n != total {
			b.Fatalf("%d bytes, %v", n, err)
		}
	}
}
