// timeouts_test.go: the S3 port's progress timeouts (--s3-progress-timeout).
//
// Goal: a client that stops reading a GET, or stops sending a PUT body,
// does not hold the server's connection, goroutine and buffers for ever:
// the stalled GET's connection is closed, many of them do not make the
// server's memory grow, and the stalled PUT gets S3's RequestTimeout with
// nothing stored. A client that is slow but keeps moving, for several
// times the timeout in all, gets its transfer through byte for byte.
//
// Method: each test starts a server with a one-second timeout, given
// through RINGSTORE_S3_PROGRESS_TIMEOUT (a binary without the setting
// then runs with none, and these tests show what it does). Stalled and
// slow clients are raw TCP connections with small receive buffers; the
// kernel still takes about 4 MB of a response before the server's writes
// block, so objects are larger than that. The server's resident memory
// is read from /proc/PID/status.
package integration

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// progressTimeout is the servers' timeout here: short so the tests are
// quick. Every bound checked is many times longer.
const progressTimeout = time.Second

func startTimeoutServer(t *testing.T) *Server {
	return startServer(t, ServerOptions{Env: []string{"RINGSTORE_S3_PROGRESS_TIMEOUT=" + progressTimeout.String()}})
}

// dialSlow connects with a small receive buffer: a response the client
// does not read then fills little more than the server's send buffer.
func dialSlow(t *testing.T, s *Server) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).SetReadBuffer(16 << 10)
	t.Cleanup(func() { c.Close() })
	return c
}

// startGet sends a signed GET on c and reads the response's header only.
func startGet(t *testing.T, s *Server, c net.Conn, bucket, key string) *http.Response {
	t.Helper()
	req := s.newRaw(t, rawReq{Method: "GET", Bucket: bucket, Key: key})
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4<<10), req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s/%s: %v %v", bucket, key, resp, err)
	}
	return resp
}

// stallsEnded counts the GETs the server gave up on.
func (s *Server) stallsEnded() int {
	return strings.Count(s.Log(), "client stopped reading the object")
}

// waitStalls waits until the server has given up on n GETs; it reports
// false if that takes longer than within.
func (s *Server) waitStalls(n int, within time.Duration) (time.Duration, bool) {
	start := time.Now()
	for s.stallsEnded() < n {
		if time.Since(start) > within {
			return time.Since(start), false
		}
		time.Sleep(50 * time.Millisecond)
	}
	return time.Since(start), true
}

// rssBytes is the server process's resident memory, or -1 where /proc
// does not tell.
func (s *Server) rssBytes() int64 {
	s.mu.Lock()
	pid := s.cmd.Process.Pid
	s.mu.Unlock()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return -1
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 3 && f[0] == "VmRSS:" {
			kb, _ := strconv.ParseInt(f[1], 10, 64)
			return kb << 10
		}
	}
	return -1
}

func TestStalledGetsAreClosed(t *testing.T) {
	t.Parallel()
	s := startTimeoutServer(t)
	bucket := bucketName(t)
	s.mustCreateBucket(t, bucket)
	data := randomBytes(16 << 20)
	s.mustPut(t, bucket, "big", data)
	if r := s.do(t, rawReq{Method: "GET", Bucket: bucket, Key: "big"}); r.Status != 200 || !bytes.Equal(r.Body, data) {
		t.Fatalf("GET: %d, %d bytes", r.Status, len(r.Body))
	}
	rss0 := s.rssBytes()

	// One client reads the header and stops: the server gives up on it
	// and closes the connection, so the body ends short when the client
	// reads again.
	c := dialSlow(t, s)
	resp := startGet(t, s, c, bucket, "big")
	took, ok := s.waitStalls(1, 30*time.Second)
	if !ok {
		t.Errorf("the server still writes to a client that stopped reading %v ago (timeout %v)", took.Round(time.Millisecond), progressTimeout)
	} else {
		t.Logf("the server gave up %v after the client stopped reading (timeout %v)", took.Round(time.Millisecond), progressTimeout)
	}
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n >= int64(len(data)) {
		t.Errorf("the stalled client then read %d of %d bytes (err %v); want a short body, the connection closed", n, len(data), err)
	}

	// Many more, in waves, all kept open: the memory each held while it
	// stalled is used again by the next.
	const waves, perWave = 5, 20
	rss := []int64{rss0}
	for w := range waves {
		for range perWave {
			startGet(t, s, dialSlow(t, s), bucket, "big")
		}
		if took, ok := s.waitStalls(1+(w+1)*perWave, 30*time.Second); !ok {
			t.Errorf("wave %d: the server did not give up on its stalled GETs within %v", w+1, took.Round(time.Millisecond))
		}
		rss = append(rss, s.rssBytes())
	}
	var mb []string
	for _, r := range rss {
		mb = append(mb, strconv.FormatInt(r>>20, 10))
	}
	t.Logf("server resident memory (MiB): %s before, then after each wave of %d stalled GETs: %s",
		mb[0], perWave, strings.Join(mb[1:], " "))
	if rss0 > 0 {
		// Each stalled GET would hold four 1 MiB chunk buffers for as long
		// as it stalled: 400 MiB for all, 80 MiB for a wave.
		if grew := rss[len(rss)-1] - rss0; grew > 200<<20 {
			t.Errorf("the server's memory grew by %d MiB over %d stalled GETs", grew>>20, waves*perWave)
		}
	}
	if r := s.do(t, rawReq{Method: "GET", Bucket: bucket, Key: "big"}); r.Status != 200 || !bytes.Equal(r.Body, data) {
		t.Fatalf("GET after the stalls: %d, %d bytes", r.Status, len(r.Body))
	}
}

func TestStalledPutTimesOut(t *testing.T) {
	t.Parallel()
	s := startTimeoutServer(t)
	bucket := bucketName(t)
	s.mustCreateBucket(t, bucket)
	data := randomBytes(4 << 20)
	req := s.newRaw(t, rawReq{Method: "PUT", Bucket: bucket, Key: "stalled", Body: data})

	c := dialSlow(t, s)
	var hdr bytes.Buffer
	fmt.Fprintf(&hdr, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.URL.RequestURI(), req.URL.Host, len(data))
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&hdr, "%s: %s\r\n", k, v)
		}
	}
	hdr.WriteString("\r\n")
	hdr.Write(data[:1<<20])
	if _, err := c.Write(hdr.Bytes()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no answer %v after the body stalled (timeout %v): %v", time.Since(start).Round(time.Millisecond), progressTimeout, err)
	}
	body, _ := io.ReadAll(resp.Body)
	t.Logf("answered %v after the body stalled (timeout %v)", time.Since(start).Round(time.Millisecond), progressTimeout)
	r := rawResp{Status: resp.StatusCode, Header: resp.Header, Body: body}
	expectError(t, "stalled PUT", r, 400, "RequestTimeout")
	checkIDs(t, "stalled PUT", r)
	if !resp.Close {
		t.Error("RequestTimeout without Connection: close")
	}
	if _, err := br.ReadByte(); err == nil {
		t.Error("the connection stays open after RequestTimeout")
	}
	if st := s.objectStatus(t, bucket, "stalled"); st != 404 {
		t.Errorf("HEAD of the stalled PUT's key = %d; want 404", st)
	}
	if keys := s.listKeys(t, bucket, ""); len(keys) != 0 {
		t.Errorf("bucket lists %v after a stalled PUT", keys)
	}
}

// trickleReader yields data step bytes at a time, a pause before each.
type trickleReader struct {
	data  []byte
	step  int
	pause time.Duration
}

func (tr *trickleReader) Read(p []byte) (int, error) {
	if len(tr.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(tr.pause)
	n := copy(p[:min(len(p), tr.step)], tr.data)
	tr.data = tr.data[n:]
	return n, nil
}

func TestSlowClientsGetThrough(t *testing.T) {
	t.Parallel()
	s := startTimeoutServer(t)
	bucket := bucketName(t)
	s.mustCreateBucket(t, bucket)
	big := randomBytes(8 << 20)
	s.mustPut(t, bucket, "big", big)

	t.Run("put", func(t *testing.T) {
		t.Parallel()
		// 80 steps of 4 KiB, 60 ms apart: about five timeouts in all.
		data := randomBytes(320 << 10)
		req := s.newRaw(t, rawReq{Method: "PUT", Bucket: bucket, Key: "slow", Body: data})
		req.Body = io.NopCloser(&trickleReader{data: data, step: 4 << 10, pause: 60 * time.Millisecond})
		req.GetBody = nil
		start := time.Now()
		r := doHTTP(t, req)
		if r.Status != 200 {
			t.Fatalf("slow PUT: %s", r)
		}
		t.Logf("slow PUT took %v (timeout %v)", time.Since(start).Round(time.Millisecond), progressTimeout)
		if got := s.do(t, rawReq{Method: "GET", Bucket: bucket, Key: "slow"}); got.Status != 200 || !bytes.Equal(got.Body, data) {
			t.Fatalf("GET of the slow PUT: %d, %d bytes", got.Status, len(got.Body))
		}
	})
	t.Run("get", func(t *testing.T) {
		t.Parallel()
		// 48 KiB every 50 ms: once the kernel's buffers are full, the
		// server's writes wait longer than the timeout for a third of its
		// send buffer to drain, while the client keeps taking bytes.
		c := dialSlow(t, s)
		start := time.Now()
		resp := startGet(t, s, c, bucket, "big")
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		var got bytes.Buffer
		buf := make([]byte, 48<<10)
		for {
			n, err := io.ReadFull(resp.Body, buf)
			got.Write(buf[:n])
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				t.Fatalf("slow GET after %d bytes: %v", got.Len(), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("slow GET took %v (timeout %v)", time.Since(start).Round(time.Millisecond), progressTimeout)
		if !bytes.Equal(got.Bytes(), big) {
			t.Fatalf("slow GET: %d bytes of %d, or other bytes", got.Len(), len(big))
		}
	})
}
