// deadline_test.go: the progress timeouts, over real loopback
// connections through Server.Listener (deadlines live on the connection,
// so a recorder cannot show them). Clients get small receive buffers; the
// server's send buffers grow as the kernel lets them (to about 4 MB on
// loopback), except where a test asks for small ones so that a client
// that stops reading blocks the handler after a few kilobytes.
package gateway

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httptrace"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringstore/ringstore/auth"
	"github.com/ringstore/ringstore/blobs"
)

// testTimeout is the progress timeout of these tests: short, so the
// tests are quick; every bound they check is many times longer.
const testTimeout = time.Second

type smallSendBuffers struct{ net.Listener }

func (l smallSendBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		_ = tc.SetWriteBuffer(32 << 10)
	}
	return c, err
}

// liveServer serves ts over loopback and counts the requests whose
// handler has returned (or panicked).
type liveServer struct {
	addr     string
	finished atomic.Int64
}

func serveLive(t *testing.T, ts *testServer, smallBuffers bool) *liveServer {
	t.Helper()
	ls := &liveServer{}
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer ls.finished.Add(1)
		ts.s.ServeHTTP(w, r)
	}))
	if smallBuffers {
		srv.Listener = smallSendBuffers{srv.Listener}
	}
	srv.Listener = ts.s.Listener(srv.Listener)
	srv.Start()
	t.Cleanup(srv.Close)
	ls.addr = srv.Listener.Addr().String()
	return ls
}

// signed returns a request to the live server signed for payloadHash.
func (ls *liveServer) signed(t *testing.T, method, target string, body io.Reader, size int64, payloadHash string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, "http://"+ls.addr+target, body)
	if err != nil {
		t.Fatal(err)
	}
	r.ContentLength = size
	auth.SignRequest(r, testCreds, "us-east-1", time.Now(), payloadHash)
	return r
}

// dialSmall opens a connection that takes little into its receive
// buffer, so the server's writes block as soon as the client stops
// reading.
func (ls *liveServer) dialSmall(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", ls.addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).SetReadBuffer(16 << 10)
	t.Cleanup(func() { c.Close() })
	return c
}

func waitUntil(t *testing.T, within time.Duration, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for !cond() {
		if time.Since(start) > within {
			t.Fatalf("not within %v: %s", within, what)
		}
		time.Sleep(10 * time.Millisecond)
	}
	return time.Since(start)
}

func TestStalledResponseEndsHandler(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.ChunkBytes, c.ProgressTimeout = 1<<20, testTimeout })
	ls := serveLive(t, ts, true)
	ts.must(200, "PUT", "/bkt", nil)
	data := randBytes(1, 8<<20)
	ts.must(200, "PUT", "/bkt/big", data)
	ts.must(200, "PUT", "/bkt/small", data[:100<<10])

	// A whole response first, on the same connection: the deadlines it
	// leaves behind must not spare the next.
	c := ls.dialSmall(t)
	br := bufio.NewReaderSize(c, 4<<10)
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	for _, key := range []string{"small", "big"} {
		req := ls.signed(t, "GET", "/bkt/"+key, nil, 0, auth.ModeUnsignedPayload)
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
		resp, err := http.ReadResponse(br, req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", key, resp, err)
		}
		if key == "small" {
			if b, err := io.ReadAll(resp.Body); err != nil || len(b) != 100<<10 {
				t.Fatalf("GET small: %d bytes, %v", len(b), err)
			}
			continue
		}
		stalled(t, ts, ls, resp, len(data))
	}
}

// stalled checks that the server gives up on resp, a response its client
// stopped reading after the header.
func stalled(t *testing.T, ts *testServer, ls *liveServer, resp *http.Response, size int) {
	t.Helper()
	// The client reads nothing more: the handler must give up on its own
	// and return its chunk buffers.
	took := waitUntil(t, 30*time.Second, "the stalled GET's handler returns", func() bool { return ls.finished.Load() == 2 })
	t.Logf("handler returned %v after the client stopped reading (timeout %v)", took.Round(time.Millisecond), testTimeout)
	if n := ts.s.bufs.out.Load(); n != 0 {
		t.Fatalf("%d chunk buffers not returned after the handler ended", n)
	}
	// And the connection is closed: what the kernel held comes, then the
	// body ends short.
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n >= int64(size) {
		t.Fatalf("read %d of %d bytes, err %v: want a short body", n, size, err)
	}
}

func TestStalledBodyRequestTimeout(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.ProgressTimeout = testTimeout })
	ls := serveLive(t, ts, true)
	ts.must(200, "PUT", "/bkt", nil)

	const size = 1 << 20
	c := ls.dialSmall(t)
	req := ls.signed(t, "PUT", "/bkt/stalled", nil, size, auth.ModeUnsignedPayload)
	var hdr bytes.Buffer
	fmt.Fprintf(&hdr, "PUT %s HTTP/1.1\r\nHost: %s\r\nContent-Length: %d\r\n", req.URL.RequestURI(), ls.addr, size)
	for k, vs := range req.Header {
		for _, v := range vs {
			fmt.Fprintf(&hdr, "%s: %s\r\n", k, v)
		}
	}
	hdr.WriteString("\r\n")
	hdr.Write(randBytes(2, 200<<10))
	if _, err := c.Write(hdr.Bytes()); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	_ = c.SetReadDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		t.Fatalf("no response to the stalled PUT: %v", err)
	}
	body, _ := io.ReadAll(resp.Body)
	t.Logf("answered %v after the body stalled (timeout %v)", time.Since(start).Round(time.Millisecond), testTimeout)
	if resp.StatusCode != 400 || !strings.Contains(string(body), "<Code>RequestTimeout</Code>") || !resp.Close {
		t.Fatalf("got %d close=%v %s; want 400 RequestTimeout and Connection: close", resp.StatusCode, resp.Close, body)
	}
	if _, err := br.ReadByte(); err == nil {
		t.Fatal("the connection stays open after RequestTimeout")
	}
	waitUntil(t, 30*time.Second, "the handler returns", func() bool { return ls.finished.Load() == 1 })
	if n := ts.s.bufs.out.Load(); n != 0 {
		t.Fatalf("%d chunk buffers not returned", n)
	}
	if w := ts.do("HEAD", "/bkt/stalled", nil); w.Code != 404 {
		t.Fatalf("HEAD of the stalled PUT's key = %d; want 404", w.Code)
	}
}

// trickle yields its data a few bytes at a time with pauses well inside
// the timeout.
type trickle struct {
	data  []byte
	step  int
	pause time.Duration
}

func (tr *trickle) Read(p []byte) (int, error) {
	if len(tr.data) == 0 {
		return 0, io.EOF
	}
	time.Sleep(tr.pause)
	n := copy(p[:min(len(p), tr.step)], tr.data)
	tr.data = tr.data[n:]
	return n, nil
}

func TestSlowClientsSurvive(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.ChunkBytes, c.ProgressTimeout = 1<<20, testTimeout })
	ls := serveLive(t, ts, false)
	ts.must(200, "PUT", "/bkt", nil)
	big := randBytes(3, 8<<20)
	ts.must(200, "PUT", "/bkt/big", big)
	t.Run("put", func(t *testing.T) {
		t.Parallel()
		// 64 steps, five times the timeout in all.
		data := randBytes(4, 256<<10)
		start := time.Now()
		req := ls.signed(t, "PUT", "/bkt/slow", &trickle{data: data, step: 4 << 10, pause: testTimeout * 5 / 64}, int64(len(data)), auth.ModeUnsignedPayload)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("slow PUT = %d %s", resp.StatusCode, body)
		}
		t.Logf("slow PUT took %v", time.Since(start).Round(time.Millisecond))
		if w := ts.must(200, "GET", "/bkt/slow", nil); !bytes.Equal(w.Body.Bytes(), data) {
			t.Fatal("slow PUT stored other bytes")
		}
	})
	t.Run("get", func(t *testing.T) {
		t.Parallel()
		c := ls.dialSmall(t)
		req := ls.signed(t, "GET", "/bkt/big", nil, 0, auth.ModeUnsignedPayload)
		if err := req.Write(c); err != nil {
			t.Fatal(err)
		}
		start := time.Now()
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Minute))
		resp, err := http.ReadResponse(bufio.NewReader(c), req)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET: %v %v", resp, err)
		}
		// 48 KiB every 50 ms: once the kernel's buffers are full, the
		// server's writes wait longer than the timeout for a third of its
		// send buffer to drain, while the client keeps taking bytes.
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
		t.Logf("slow GET took %v", time.Since(start).Round(time.Millisecond))
		if !bytes.Equal(got.Bytes(), big) {
			t.Fatalf("slow GET: %d bytes, want %d, or other bytes", got.Len(), len(big))
		}
	})
}

// slowChunks stores each chunk only after a delay, or fails when the
// request's context ends first.
type slowChunks struct {
	Chunks
	delay time.Duration
}

func (c slowChunks) Put(ctx context.Context, ch blobs.Chunk) error {
	select {
	case <-time.After(c.delay):
	case <-ctx.Done():
		return ctx.Err()
	}
	return c.Chunks.Put(ctx, ch)
}

// TestHandlerOutlivesBodyDeadline: a handler that works on after the
// body's end, for longer than the timeout (here the chunk stores; in S3,
// a multipart completion), keeps its request: net/http watches the
// connection once the body ended, and a read deadline left behind would
// cancel the request.
func TestHandlerOutlivesBodyDeadline(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) {
		c.ProgressTimeout = testTimeout
		c.Chunks = slowChunks{c.Chunks, 3 * testTimeout}
	})
	ls := serveLive(t, ts, false)
	ts.must(200, "PUT", "/bkt", nil)
	data := randBytes(5, 8<<10)
	resp, err := http.DefaultClient.Do(ls.signed(t, "PUT", "/bkt/k", bytes.NewReader(data), int64(len(data)), auth.ModeUnsignedPayload))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("PUT with slow chunk stores = %d %s", resp.StatusCode, body)
	}
}

// TestConnectionReusedAfterDeadlines: deadlines one request set do not
// reach the next one on the same connection, however long it sat idle.
func TestConnectionReusedAfterDeadlines(t *testing.T) {
	t.Parallel()
	ts := newTestServer(t, func(c *Config) { c.ProgressTimeout = testTimeout })
	ls := serveLive(t, ts, false)
	ts.must(200, "PUT", "/bkt", nil)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}
	defer client.CloseIdleConnections()
	data := randBytes(6, 100<<10)
	for i, step := range []struct {
		method string
		body   []byte
	}{{"PUT", data}, {"GET", nil}, {"PUT", data}, {"GET", nil}} {
		if i > 0 {
			time.Sleep(testTimeout * 3 / 2)
		}
		var reused bool
		var rd io.Reader
		if step.body != nil {
			rd = bytes.NewReader(step.body)
		}
		req := ls.signed(t, step.method, "/bkt/k", rd, int64(len(step.body)), auth.ModeUnsignedPayload)
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			GotConn: func(i httptrace.GotConnInfo) { reused = i.Reused },
		}))
		resp, err := client.Do(req)
		if err != nil {
			t.Fatalf("request %d (%s): %v", i, step.method, err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || (step.method == "GET" && !bytes.Equal(body, data)) {
			t.Fatalf("request %d (%s) = %d, %d bytes", i, step.method, resp.StatusCode, len(body))
		}
		if i > 0 && !reused {
			t.Fatalf("request %d (%s) did not reuse the connection", i, step.method)
		}
	}
}
