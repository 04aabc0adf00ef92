// crash_test.go: crash safety across SIGKILL.
//
// Goal: a write is all or nothing across a crash. A server killed
// (SIGKILL) in the middle of a large upload restarts cleanly on the same
// data directory; the interrupted key is absent (HEAD and GET 404
// NoSuchKey, not listed); an interrupted overwrite leaves the previous
// version intact; every write acknowledged before the crash is intact; new
// writes work. Also: writes acknowledged while many are in flight survive a
// kill, and whatever unacknowledged write did land is complete.
//
// Method: raw HTTP PUTs (UNSIGNED-PAYLOAD) fed through a pipe, so the test
// controls exactly how much of the 30 MiB body the server has received
// when it is killed; Server.Kill sends SIGKILL, Server.Restart starts the
// process again on the same port and data directory.
package integration

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

// startPipedPut starts a PUT of size bytes whose body the caller writes to
// the returned pipe. The request's outcome arrives on the channel.
func startPipedPut(t *testing.T, srv *Server, bucket, key string, size int64) (*io.PipeWriter, <-chan error) {
	t.Helper()
	pr, pw := io.Pipe()
	req := srv.newRaw(t, rawReq{Method: "PUT", Bucket: bucket, Key: key, PayloadHash: "UNSIGNED-PAYLOAD"})
	req.Body = pr
	req.ContentLength = size
	req.GetBody = nil
	// Re-sign now that the length is known.
	req.Header.Del("Authorization")
	signRaw(t, req, "UNSIGNED-PAYLOAD", nil, time.Time{})
	done := make(chan error, 1)
	go func() {
		resp, err := rawClient.Do(req)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			err = fmt.Errorf("the interrupted PUT got an answer: %d %s", resp.StatusCode, b)
		}
		done <- err
	}()
	return pw, done
}

func TestCrashMidUpload(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ServerOptions{})
	b := bucketName(t)
	srv.mustCreateBucket(t, b)

	// Acknowledged before the crash: an inline object and a chunked one.
	small := randomBytes(1000)
	big := randomBytes(3<<20 + 12345)
	srv.mustPut(t, b, "acked/small", small)
	srv.mustPut(t, b, "acked/big", big)

	// Two uploads in flight: a new key, and an overwrite of acked/big.
	const size = 30 << 20
	body := randomBytes(size)
	pw1, done1 := startPipedPut(t, srv, b, "inflight/new", size)
	pw2, done2 := startPipedPut(t, srv, b, "acked/big", size)
	half := size / 2
	for _, pw := range []*io.PipeWriter{pw1, pw2} {
		// Each Write returns once the transport has taken the bytes.
		for off := 0; off < half; off += 1 << 20 {
			if _, err := pw.Write(body[off : off+1<<20]); err != nil {
				t.Fatalf("writing the upload body: %v", err)
			}
		}
	}
	time.Sleep(300 * time.Millisecond) // let the server take in what was sent
	srv.Kill()
	pw1.CloseWithError(io.ErrClosedPipe)
	pw2.CloseWithError(io.ErrClosedPipe)
	for _, d := range []<-chan error{done1, done2} {
		select {
		case err := <-d:
			if err == nil {
				t.Errorf("an interrupted upload succeeded")
			}
		case <-time.After(10 * time.Second):
			t.Errorf("an interrupted upload did not end within 10s of the kill")
		}
	}

	srv.Restart()
	rawClient.Transport.(*http.Transport).CloseIdleConnections()
	if errs := srv.errorsSinceStart(); len(errs) > 0 {
		t.Errorf("the restart after SIGKILL logged errors:\n%s", strings.Join(errs[:min(len(errs), 5)], "\n"))
	}

	r := srv.do(t, rawReq{Method: "HEAD", Bucket: b, Key: "inflight/new"})
	if r.Status != 404 {
		t.Errorf("HEAD of the key whose upload was interrupted: %d, want 404", r.Status)
	}
	expectError(t, "GET of the key whose upload was interrupted", srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "inflight/new"}), 404, "NoSuchKey")
	if keys := srv.listKeys(t, b, ""); !slices.Equal(keys, []string{"acked/big", "acked/small"}) {
		t.Errorf("listing after the crash: %q, want [acked/big acked/small]", keys)
	}
	for key, want := range map[string][]byte{"acked/small": small, "acked/big": big} {
		g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: key})
		if g.Status != 200 || sha256Hex(g.Body) != sha256Hex(want) {
			t.Errorf("acknowledged object %s after the crash: status %d, %d bytes (want %d), content equal %v",
				key, g.Status, len(g.Body), len(want), bytes.Equal(g.Body, want))
		}
		if et := g.Header.Get("ETag"); et != `"`+md5Hex(want)+`"` {
			t.Errorf("%s: ETag %s after the crash, want the MD5 of the acknowledged content", key, et)
		}
	}

	// New writes work, including to the interrupted key.
	fresh := randomBytes(5<<20 + 3)
	srv.mustPut(t, b, "inflight/new", fresh)
	srv.mustPut(t, b, "after/crash", []byte("ok"))
	if g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "inflight/new"}); sha256Hex(g.Body) != sha256Hex(fresh) {
		t.Errorf("rewrite of the interrupted key after restart: content differs (%d bytes)", len(g.Body))
	}
	nb := bucketName(t)
	srv.mustCreateBucket(t, nb)
	srv.mustPut(t, nb, "k", []byte("v"))

	// And everything survives a graceful restart too.
	srv.Restart()
	rawClient.Transport.(*http.Transport).CloseIdleConnections()
	if keys := srv.listKeys(t, b, ""); !slices.Equal(keys, []string{"acked/big", "acked/small", "after/crash", "inflight/new"}) {
		t.Errorf("listing after a graceful restart: %q", keys)
	}
	if g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: "acked/big"}); sha256Hex(g.Body) != sha256Hex(big) {
		t.Errorf("acked/big differs after a graceful restart")
	}
}

func TestCrashUnderLoad(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ServerOptions{LogLevel: "info"})
	b := bucketName(t)
	srv.mustCreateBucket(t, b)

	type write struct {
		key  string
		data []byte
	}
	var (
		mu    sync.Mutex
		acked = map[string][]byte{}
		tried = map[string][]byte{}
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := 0; w < 6; w++ {
		wg.Add(1)
		go func(w int) {
			defer wg.Done()
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				size := []int{100, 50 << 10, 300 << 10, 1<<20 + 7}[i%4]
				wr := write{key: fmt.Sprintf("w%d/%04d", w, i), data: randomBytes(size)}
				mu.Lock()
				tried[wr.key] = wr.data
				mu.Unlock()
				req := srv.newRaw(t, rawReq{Method: "PUT", Bucket: b, Key: wr.key, Body: wr.data})
				resp, err := rawClient.Do(req)
				if err != nil {
					return // the server is gone
				}
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode == 200 {
					mu.Lock()
					acked[wr.key] = wr.data
					mu.Unlock()
				}
			}
		}(w)
	}
	time.Sleep(700 * time.Millisecond)
	srv.Kill()
	close(stop)
	wg.Wait()
	srv.Restart()
	rawClient.Transport.(*http.Transport).CloseIdleConnections()
	if errs := srv.errorsSinceStart(); len(errs) > 0 {
		t.Errorf("the restart after SIGKILL logged errors:\n%s", strings.Join(errs[:min(len(errs), 5)], "\n"))
	}

	if len(acked) < 10 {
		t.Fatalf("only %d writes were acknowledged before the kill; the test proves little", len(acked))
	}
	for key, want := range acked {
		g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: key})
		if g.Status != 200 || !bytes.Equal(g.Body, want) {
			t.Errorf("acknowledged %s (%d bytes) after the kill: status %d, %d bytes", key, len(want), g.Status, len(g.Body))
		}
	}
	// Unacknowledged writes that did land must be whole.
	listed := srv.listKeys(t, b, "")
	for _, key := range listed {
		want, ok := tried[key]
		if !ok {
			t.Errorf("listing shows %q, which was never written", key)
			continue
		}
		if _, ok := acked[key]; ok {
			continue
		}
		g := srv.do(t, rawReq{Method: "GET", Bucket: b, Key: key})
		if g.Status != 200 || !bytes.Equal(g.Body, want) {
			t.Errorf("unacknowledged %s is listed but reads back %d of %d bytes (status %d): a torn write", key, len(g.Body), len(want), g.Status)
		}
	}
	for key := range acked {
		if !slices.Contains(listed, key) {
			t.Errorf("acknowledged %s is missing from the listing after the kill", key)
		}
	}
	t.Logf("%d acknowledged writes, %d listed after the kill", len(acked), len(listed))
}
