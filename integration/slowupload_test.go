// slowupload_test.go: a write slower than garbage collection's grace
// period keeps its chunks.
//
// Goal: garbage collection spares a reference younger than the grace
// period (--gc-grace) so that a write in progress, whose holder is not
// committed yet, keeps its chunks. A client trickling its body for longer
// than that used to be acknowledged after a sweep had deleted its first
// chunks, and every GET of the object failed.
//
// Method: a server with a grace period of 2 s swept every 300 ms; a PUT
// and an UploadPart whose first megabytes arrive at once and whose last
// one trickles in over several grace periods; then both objects are read
// back byte-exact, after a few more sweeps.
package integration

import (
	"bytes"
	"encoding/xml"
	"fmt"
	"io"
	"net/http"
	"testing"
	"time"
)

// trickle yields its first head bytes at once and the rest in small
// pieces spread over d.
type trickle struct {
	data []byte
	head int
	off  int
	step time.Duration
}

func newTrickle(data []byte, head int, d time.Duration) *trickle {
	pieces := (len(data) - head) / (16 << 10)
	return &trickle{data: data, head: head, step: d / time.Duration(max(pieces, 1))}
}

func (r *trickle) Read(p []byte) (int, error) {
	if r.off >= len(r.data) {
		return 0, io.EOF
	}
	if r.off >= r.head {
		time.Sleep(r.step)
		p = p[:min(len(p), 16<<10)]
	}
	n := copy(p, r.data[r.off:])
	r.off += n
	return n, nil
}

func TestSlowUploadOutlivesGCGrace(t *testing.T) {
	srv := startServer(t, ServerOptions{LogLevel: "info", Env: []string{
		"RINGSTORE_GC_GRACE=2s", "RINGSTORE_GC_INTERVAL=300ms",
	}})
	bucket := bucketName(t)
	srv.mustCreateBucket(t, bucket)
	body := fastRandom(21, 3<<20+12345)
	slow := 7 * time.Second

	put := func(what string, q rawReq) {
		t.Helper()
		q.Body = body
		r := srv.newRaw(t, q)
		r.Body = io.NopCloser(newTrickle(body, 2<<20, slow))
		start := time.Now()
		resp := doHTTP(t, r)
		if resp.Status != http.StatusOK {
			t.Fatalf("%s: %v", what, resp)
		}
		t.Logf("%s: acknowledged after %v", what, time.Since(start).Round(10*time.Millisecond))
	}
	put("PUT", rawReq{Method: "PUT", Bucket: bucket, Key: "slow"})

	resp := srv.do(t, rawReq{Method: "POST", Bucket: bucket, Key: "slow-mp", Query: "uploads"})
	var init struct {
		UploadID string `xml:"UploadId"`
	}
	if err := xml.Unmarshal(resp.Body, &init); err != nil || init.UploadID == "" {
		t.Fatalf("create upload: %v %v", resp, err)
	}
	put("UploadPart", rawReq{Method: "PUT", Bucket: bucket, Key: "slow-mp", Query: "partNumber=1&uploadId=" + init.UploadID})
	complete := fmt.Sprintf(`<CompleteMultipartUpload><Part><PartNumber>1</PartNumber><ETag>"%s"</ETag></Part></CompleteMultipartUpload>`, md5Hex(body))
	if r := srv.do(t, rawReq{Method: "POST", Bucket: bucket, Key: "slow-mp", Query: "uploadId=" + init.UploadID, Body: []byte(complete)}); r.Status != http.StatusOK || bytes.Contains(r.Body, []byte("<Error>")) {
		t.Fatalf("complete: %v", r)
	}

	// A few more sweeps, then every byte.
	time.Sleep(3 * time.Second)
	for _, key := range []string{"slow", "slow-mp"} {
		r := srv.do(t, rawReq{Method: "GET", Bucket: bucket, Key: key})
		if r.Status != http.StatusOK || !bytes.Equal(r.Body, body) {
			t.Fatalf("GET %s after the sweeps: %d, %d bytes (want %d), right bytes %v", key, r.Status, len(r.Body), len(body), bytes.Equal(r.Body, body))
		}
	}
}
