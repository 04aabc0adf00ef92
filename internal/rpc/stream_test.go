// stream_test.go checks the framed transport: calls and errors round-trip
// over one port shared with HTTP; many concurrent calls share connections;
// a node with another secret is refused in the handshake, both ways; a
// connection for another node id is refused; a connection dropped mid-call
// fails the call instead of hanging it, and so does a peer that stops
// reading.
package rpc

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

type streamNode struct {
	s    *Stream
	addr string
	ln   *Listener
}

func startStream(t *testing.T, self, secret string, addrs map[string]string, mu *sync.Mutex) *streamNode {
	t.Helper()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	mux := NewMux()
	mux.Handle("echo", func(_ context.Context, from string, body []byte) ([]byte, error) {
		return append([]byte(from+":"), body...), nil
	})
	mux.Handle("fail", func(context.Context, string, []byte) ([]byte, error) { return nil, errors.New("boom") })
	mux.Handle("slow", func(ctx context.Context, _ string, _ []byte) ([]byte, error) {
		time.Sleep(200 * time.Millisecond)
		return nil, nil
	})
	s := &Stream{Self: self, Secret: []byte(secret), Mux: mux, Logger: log,
		Resolve: func(n string) (string, bool) { mu.Lock(); defer mu.Unlock(); a, ok := addrs[n]; return a, ok }}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln := NewListener(raw, s)
	hs := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "plain http") })}
	go func() { _ = hs.Serve(ln) }()
	t.Cleanup(func() { _ = hs.Close(); _ = ln.Close(); s.Close() })
	mu.Lock()
	addrs[self] = raw.Addr().String()
	mu.Unlock()
	return &streamNode{s: s, addr: raw.Addr().String(), ln: ln}
}

func TestStreamCalls(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "k", addrs, &mu)
	b := startStream(t, "b", "k", addrs, &mu)
	got, err := a.s.Call(context.Background(), "b", "echo", []byte("hi"))
	if err != nil || string(got) != "a:hi" {
		t.Fatalf("Call = %q, %v", got, err)
	}
	var re *RemoteError
	if _, err := a.s.Call(context.Background(), "b", "fail", nil); !errors.As(err, &re) || re.Message != "boom" {
		t.Fatalf("remote failure = %v", err)
	}
	// The same port still answers HTTP.
	resp, err := http.Get("http://" + b.addr + "/")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(body) != "plain http" {
		t.Fatalf("HTTP on the RPC port = %q", body)
	}
	// Many concurrent calls, big and small, over the pooled connections.
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := 0; i < 200; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			payload := []byte(strings.Repeat(fmt.Sprint(i%10), 1+(i%7)*50000))
			got, err := a.s.Call(context.Background(), "b", "echo", payload)
			if err == nil && string(got) != "a:"+string(payload) {
				err = fmt.Errorf("call %d: reply of %d bytes differs", i, len(got))
			}
			if err != nil {
				errs <- err
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	// Every successful call counted, with its bytes both ways.
	want := ServiceStats{Calls: 1, SentBytes: 2, ReceivedBytes: 4}
	for i := 0; i < 200; i++ {
		n := int64(1 + (i%7)*50000)
		want.Calls++
		want.SentBytes += n
		want.ReceivedBytes += n + 2
	}
	if got := a.s.Stats.Snapshot()["echo"]; got != want {
		t.Fatalf("echo stats %+v, want %+v", got, want)
	}
	// A cancelled call returns promptly.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, err := a.s.Call(ctx, "b", "slow", nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("cancelled call = %v", err)
	}
}

func TestStreamWrongSecret(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "one", addrs, &mu)
	startStream(t, "b", "two", addrs, &mu)
	if _, err := a.s.Call(context.Background(), "b", "echo", nil); err == nil {
		t.Fatal("a node with another secret was served")
	}
	// Addressed to the wrong node id.
	mu.Lock()
	addrs["c"] = addrs["b"]
	mu.Unlock()
	b2 := startStream(t, "b2", "one", addrs, &mu)
	mu.Lock()
	addrs["d"] = b2.addr
	mu.Unlock()
	if _, err := a.s.Call(context.Background(), "d", "echo", nil); err == nil {
		t.Fatal("a connection meant for another node was served")
	}
}

func TestStreamConnectionDrop(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "k", addrs, &mu)
	b := startStream(t, "b", "k", addrs, &mu)
	if _, err := a.s.Call(context.Background(), "b", "echo", nil); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := a.s.Call(context.Background(), "b", "slow", nil)
		done <- err
	}()
	time.Sleep(50 * time.Millisecond)
	// Drop every client connection of a.
	a.s.Close()
	select {
	case err := <-done:
		if err == nil {
			t.Fatal("a call on a dropped connection succeeded")
		}
	case <-time.After(5 * time.Second):
		t.Fatal("a call on a dropped connection hangs")
	}
	// New calls dial again.
	if _, err := a.s.Call(context.Background(), "b", "echo", nil); err != nil {
		t.Fatalf("call after reconnect: %v", err)
	}
	_ = b
}

// TestStreamCallToHungPeer: a peer whose handlers hang stops reading once
// it has 256 requests in service, and then its socket buffers fill. Calls
// to it must still return, within the write timeout, not queue for the
// connection's write lock or block in the socket for good.
func TestStreamCallToHungPeer(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "k", addrs, &mu)
	a.s.WriteTimeout = 500 * time.Millisecond
	b := startStream(t, "b", "k", addrs, &mu)
	release := make(chan struct{})
	defer close(release)
	b.s.Mux.Handle("hang", func(context.Context, string, []byte) ([]byte, error) {
		<-release
		return nil, nil
	})
	// Open the connections first: calls racing to dial would each get one.
	for range 4 {
		if _, err := a.s.Call(context.Background(), "b", "echo", nil); err != nil {
			t.Fatal(err)
		}
	}
	payload := make([]byte, 60<<10)
	const calls = 600 // 36 MiB: far past 256 in service and the buffers
	var wg sync.WaitGroup
	var late atomic.Int32
	start := time.Now()
	for range calls {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
			defer cancel()
			if _, err := a.s.Call(ctx, "b", "hang", payload); err == nil {
				t.Error("a call to a hung peer succeeded")
			}
			if time.Since(start) > 5*time.Second {
				late.Add(1)
			}
		}()
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("calls to a hung peer still blocked after 20 s")
	}
	if n := late.Load(); n > 0 {
		t.Fatalf("%d of %d calls returned after 5 s (write timeout 500 ms)", n, calls)
	}
}

func BenchmarkStreamRoundTrip(b *testing.B) {
	var mu sync.Mutex
	addrs := map[string]string{}
	t := &testing.T{}
	a := startStream(t, "a", "k", addrs, &mu)
	startStream(t, "b", "k", addrs, &mu)
	// One caller: the latency of a round trip with nothing to batch it
	// with (the writer's yield before flushing must cost nothing here).
	b.Run("serial/64B", func(b *testing.B) {
		b.ReportAllocs()
		body := make([]byte, 64)
		for b.Loop() {
			if _, err := a.s.Call(context.Background(), "b", "echo", body); err != nil {
				b.Fatal(err)
			}
		}
	})
	for _, size := range []int{64, 4096, 1 << 20} {
		body := make([]byte, size)
		b.Run(map[int]string{64: "64B", 4096: "4KiB", 1 << 20: "1MiB"}[size], func(b *testing.B) {
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := a.s.Call(context.Background(), "b", "echo", body); err != nil {
						b.Fatal(err)
					}
				}
			})
		})
	}
}

// frameProxy sits between a client and a stream server. It passes the
// handshake through, then hands each client-to-server frame to edit, which
// returns the frames to forward instead, and keeps every client byte.
type frameProxy struct {
	addr string
	mu   sync.Mutex
	seen []byte
}

func startFrameProxy(t *testing.T, target string, hsLen int, edit func(i int, f []byte) [][]byte) *frameProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p := &frameProxy{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			go func() { _, _ = io.Copy(c, s); _ = c.Close() }()
			go func() {
				defer s.Close()
				// The client's hello, then (after the server's answer)
				// its MAC.
				for _, n := range []int{hsLen - sha256.Size, sha256.Size} {
					hs := make([]byte, n)
					if _, err := io.ReadFull(c, hs); err != nil {
						return
					}
					p.keep(hs)
					if _, err := s.Write(hs); err != nil {
						return
					}
				}
				for i := 0; ; i++ {
					var n [4]byte
					if _, err := io.ReadFull(c, n[:]); err != nil {
						return
					}
					f := make([]byte, 4+binary.BigEndian.Uint32(n[:]))
					copy(f, n[:])
					if _, err := io.ReadFull(c, f[4:]); err != nil {
						return
					}
					p.keep(f)
					for _, out := range edit(i, f) {
						if _, err := s.Write(out); err != nil {
							return
						}
					}
				}
			}()
		}
	}()
	return p
}

func (p *frameProxy) keep(b []byte) {
	p.mu.Lock()
	p.seen = append(p.seen, b...)
	p.mu.Unlock()
}

// TestStreamFramesSealed checks what the frames' sealing promises against
// someone on the wire: payloads are not readable there, and a frame that
// is altered or replayed is refused, never served.
func TestStreamFramesSealed(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "k", addrs, &mu)
	b := startStream(t, "b", "k", addrs, &mu)
	secret := []byte("object bytes nobody on the wire may read")
	var served atomic.Int32 // calls served with the secret as their body
	b.s.Mux.Handle("count", func(_ context.Context, _ string, body []byte) ([]byte, error) {
		if bytes.Equal(body, secret) {
			served.Add(1)
		}
		return body, nil
	})
	// magic, the two ids with their lengths, the client's nonce, its MAC.
	hsLen := len(StreamMagic) + 2 + len("a") + len("b") + nonceLen + sha256.Size
	via := func(edit func(int, []byte) [][]byte) *frameProxy {
		t.Helper()
		a.s.Close() // new connections, through the proxy
		p := startFrameProxy(t, b.addr, hsLen, edit)
		mu.Lock()
		addrs["b"] = p.addr
		mu.Unlock()
		return p
	}

	p := via(func(_ int, f []byte) [][]byte { return [][]byte{f} })
	got, err := a.s.Call(context.Background(), "b", "count", secret)
	if err != nil || !bytes.Equal(got, secret) {
		t.Fatalf("call through a passive proxy = %q, %v", got, err)
	}
	p.mu.Lock()
	leaked := bytes.Contains(p.seen, secret[:16])
	p.mu.Unlock()
	if leaked {
		t.Fatal("a payload crossed the wire in the clear")
	}

	for _, c := range []struct {
		name string
		edit func(int, []byte) [][]byte
	}{
		{"payload bit flipped", func(_ int, f []byte) [][]byte { f[len(f)-20] ^= 1; return [][]byte{f} }},
		{"header bit flipped", func(_ int, f []byte) [][]byte { f[12] ^= 1; return [][]byte{f} }},
		{"tag bit flipped", func(_ int, f []byte) [][]byte { f[len(f)-1] ^= 0x80; return [][]byte{f} }},
		{"frame dropped", func(i int, f []byte) [][]byte {
			if i == 0 {
				return nil
			}
			return [][]byte{f}
		}},
		{"frame replayed", func(_ int, f []byte) [][]byte { return [][]byte{f, f} }},
	} {
		t.Run(c.name, func(t *testing.T) {
			via(c.edit)
			before := served.Load()
			call := func(body []byte) ([]byte, error) {
				ctx, cancel := context.WithTimeout(context.Background(), 250*time.Millisecond)
				defer cancel()
				return a.s.Call(ctx, "b", "count", body)
			}
			first, err1 := call(secret)
			n := served.Load() - before
			switch c.name {
			case "frame replayed":
				// The original is served once and its copy refused, which
				// ends the connection (the reply may or may not get out
				// before that).
				time.Sleep(50 * time.Millisecond)
				if n := served.Load() - before; n != 1 {
					t.Fatalf("replayed frame served %d times", n)
				}
			case "frame dropped":
				// The next frame carries the wrong number and is refused.
				_, err2 := call([]byte("second"))
				if err1 == nil || err2 == nil || n != 0 {
					t.Fatalf("after a dropped frame: %v, %v; served %d", err1, err2, n)
				}
			default:
				if err1 == nil || n != 0 {
					t.Fatalf("altered frame: call = %q, %v; served %d", first, err1, n)
				}
			}
		})
	}
}

// slowLink passes writes on at rate bytes a second and honours write
// deadlines the way a TCP connection does: a write that cannot finish by
// the deadline returns what it wrote and a timeout.
type slowLink struct {
	net.Conn
	rate int
	mu   sync.Mutex
	dl   time.Time
}

func (l *slowLink) SetWriteDeadline(t time.Time) error {
	l.mu.Lock()
	l.dl = t
	l.mu.Unlock()
	return nil
}

func (l *slowLink) Write(p []byte) (int, error) {
	const step = 16 << 10
	n := 0
	for n < len(p) {
		k := min(step, len(p)-n)
		d := time.Duration(k) * time.Second / time.Duration(l.rate)
		l.mu.Lock()
		dl := l.dl
		l.mu.Unlock()
		if !dl.IsZero() && time.Now().Add(d).After(dl) {
			time.Sleep(time.Until(dl))
			return n, os.ErrDeadlineExceeded
		}
		time.Sleep(d)
		w, err := l.Conn.Write(p[n : n+k])
		n += w
		if err != nil {
			return n, err
		}
	}
	return n, nil
}

// A link slower than a frame per write timeout but moving steadily keeps
// its connection: the deadline is for a stalled peer. A 1 MiB chunk at
// 2 MiB/s takes about 0.5 s, past the 400 ms write timeout set here, and
// a frame written in one piece failed.
func TestStreamSlowLinkKeepsLargeFrames(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	key := bytes.Repeat([]byte{7}, 32)
	link := &slowLink{Conn: a, rate: 2 << 20}
	w, err := newStreamConn(link, nil, bufio.NewWriterSize(link, 64<<10), key, 'c', "b", 400*time.Millisecond)
	if err != nil {
		t.Fatal(err)
	}
	r, err := newStreamConn(b, bufio.NewReader(b), nil, key, 's', "a", time.Second)
	if err != nil {
		t.Fatal(err)
	}
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i * 31)
	}
	got := make(chan frame, 2)
	go func() {
		for {
			f, err := r.readFrame()
			if err != nil {
				close(got)
				return
			}
			got <- f
		}
	}()
	start := time.Now()
	for id := uint64(1); id <= 2; id++ {
		if err := w.writeFrame(frame{id: id, kind: kindRequest, service: "put", payload: payload}, false); err != nil {
			t.Fatalf("frame %d over a slow link after %v: %v", id, time.Since(start), err)
		}
		f, ok := <-got
		if !ok || f.id != id || !bytes.Equal(f.payload, payload) {
			t.Fatalf("frame %d arrived as id %d, %d bytes (ok %v)", id, f.id, len(f.payload), ok)
		}
	}
	t.Logf("two 1 MiB frames in %v", time.Since(start))
}
