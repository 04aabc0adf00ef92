// stream_test.go checks the framed transport: calls and errors round-trip;
// many concurrent calls share connections; a node with another secret is
// refused in the handshake, both ways, and so is anything that does not
// speak TLS; a connection that reaches another node id is dropped; admin
// and node certificates reach only their own services; a connection
// dropped mid-call fails the call instead of hanging it, and so does a
// peer that stops reading.
package rpc

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// testSecret turns a name into a cluster secret that passes CheckSecret.
func testSecret(name string) string { return fmt.Sprintf("%x", sha256.Sum256([]byte(name))) }

type streamNode struct {
	s    *Stream
	addr string
}

func startStream(t testing.TB, self, secret string, addrs map[string]string, mu *sync.Mutex) *streamNode {
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
	mux.Handle(AdminServicePrefix+"hello", func(_ context.Context, from string, _ []byte) ([]byte, error) {
		return []byte("hello " + from), nil
	})
	s := &Stream{Self: self, Secret: []byte(testSecret(secret)), Mux: mux, Logger: log,
		Resolve: func(n string) (string, bool) { mu.Lock(); defer mu.Unlock(); a, ok := addrs[n]; return a, ok }}
	raw, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go func() { _ = s.Serve(raw) }()
	t.Cleanup(func() { _ = raw.Close(); s.Close() })
	mu.Lock()
	addrs[self] = raw.Addr().String()
	mu.Unlock()
	return &streamNode{s: s, addr: raw.Addr().String()}
}

func TestStreamCalls(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "k", addrs, &mu)
	startStream(t, "b", "k", addrs, &mu)
	got, err := a.s.Call(context.Background(), "b", "echo", []byte("hi"))
	if err != nil || string(got) != "a:hi" {
		t.Fatalf("Call = %q, %v", got, err)
	}
	var re *RemoteError
	if _, err := a.s.Call(context.Background(), "b", "fail", nil); !errors.As(err, &re) || re.Message != "boom" {
		t.Fatalf("remote failure = %v", err)
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
	// A body over the limit is refused before it is sent.
	if _, err := a.s.Call(context.Background(), "b", "echo", make([]byte, MaxBodyBytes+1)); err == nil {
		t.Fatal("a body over MaxBodyBytes was sent")
	}
}

// TestStreamRoles: an admin certificate reaches the admin services of
// whichever node answers, and nothing else; a node certificate reaches
// everything but them.
func TestStreamRoles(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "k", addrs, &mu)
	b := startStream(t, "b", "k", addrs, &mu)
	admin := &Stream{Self: "admin", Role: RoleAdmin, Secret: []byte(testSecret("k")),
		Resolve: func(string) (string, bool) { return b.addr, true }}
	defer admin.Close()
	got, err := admin.Call(context.Background(), "", AdminServicePrefix+"hello", nil)
	if err != nil || string(got) != "hello admin" {
		t.Fatalf("admin call = %q, %v", got, err)
	}
	var re *RemoteError
	if _, err := admin.Call(context.Background(), "", "echo", []byte("x")); !errors.As(err, &re) {
		t.Fatalf("admin certificate calling a node service = %v; want a refusal", err)
	}
	if _, err := a.s.Call(context.Background(), "b", AdminServicePrefix+"hello", nil); !errors.As(err, &re) {
		t.Fatalf("node certificate calling an admin service = %v; want a refusal", err)
	}
	// The refusals left the connections usable.
	if _, err := admin.Call(context.Background(), "", AdminServicePrefix+"hello", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := a.s.Call(context.Background(), "b", "echo", nil); err != nil {
		t.Fatal(err)
	}
}

func TestStreamWrongSecret(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "one", addrs, &mu)
	b := startStream(t, "b", "two", addrs, &mu)
	if _, err := a.s.Call(context.Background(), "b", "echo", nil); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("call to a node with another secret = %v; want ErrUnauthenticated", err)
	}
	if _, err := b.s.Call(context.Background(), "a", "echo", nil); !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("call from a node with another secret = %v; want ErrUnauthenticated", err)
	}
	// Both servers count the refusal (a's after b's client gave up on it).
	eventually(t, "both refusals counted", func() bool { return a.s.Stats.Refused() > 0 && b.s.Stats.Refused() > 0 })
	// An admin tool with another secret.
	admin := &Stream{Self: "admin", Role: RoleAdmin, Secret: []byte(testSecret("two")),
		Resolve: func(string) (string, bool) { return a.addr, true }}
	defer admin.Close()
	if _, err := admin.Call(context.Background(), "", AdminServicePrefix+"hello", nil); !errors.Is(err, ErrUnauthenticated) ||
		!strings.Contains(err.Error(), "secret") {
		t.Fatalf("admin with another secret = %v; want ErrUnauthenticated saying so", err)
	}
	// An address that answers as another node than the one called.
	b2 := startStream(t, "b2", "one", addrs, &mu)
	mu.Lock()
	addrs["d"] = b2.addr
	mu.Unlock()
	if _, err := a.s.Call(context.Background(), "d", "echo", nil); err == nil || !strings.Contains(err.Error(), "not the node called") {
		t.Fatalf("a connection that reached node b2 for d = %v", err)
	}
}

// TestStreamRefusesPlaintext: whatever is not a TLS handshake with a
// cluster certificate is dropped before a byte of it is taken as a frame,
// and nothing is answered.
func TestStreamRefusesPlaintext(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	b := startStream(t, "b", "k", addrs, &mu)
	var served atomic.Int32
	b.s.Mux.Handle(AdminServicePrefix+"key.create", func(context.Context, string, []byte) ([]byte, error) {
		served.Add(1)
		return nil, nil
	})
	for _, in := range [][]byte{
		[]byte("POST /rpc/admin.key.create HTTP/1.1\r\nHost: b\r\nContent-Length: 83886080\r\n\r\n" + strings.Repeat("x", 1<<16)),
		[]byte("RSRPC2\n\x01a\x01b0123456789abcdef"),
		bytes.Repeat([]byte{0x16, 0x03, 0x01, 0xff, 0xff}, 1000),
	} {
		c, err := net.Dial("tcp", b.addr)
		if err != nil {
			t.Fatal(err)
		}
		go func() { _, _ = c.Write(in) }()
		got, _ := io.ReadAll(c)
		c.Close()
		if len(got) > 0 && got[0] != 0x15 { // a TLS alert at most
			t.Fatalf("the node answered %q to %.20q", got, in)
		}
	}
	if n := served.Load(); n != 0 {
		t.Fatalf("plaintext requests served %d times", n)
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
	a := startStream(b, "a", "k", addrs, &mu)
	startStream(b, "b", "k", addrs, &mu)
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

// wireProxy sits between clients and a server and forwards bytes both
// ways, keeping every byte of each connection and passing the client's
// bytes through edit first (which may change them in place or return
// other bytes).
type wireProxy struct {
	addr string
	mu   sync.Mutex
	// up and down are the client-to-server and server-to-client bytes of
	// each connection, in the order they were accepted.
	up, down []*bytes.Buffer
	// open counts the connections whose client has not closed them.
	open atomic.Int32
}

func startWireProxy(t *testing.T, target string, edit func(conn int, off int64, b []byte) []byte) *wireProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p := &wireProxy{addr: ln.Addr().String()}
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
			p.mu.Lock()
			i := len(p.up)
			up, down := &bytes.Buffer{}, &bytes.Buffer{}
			p.up, p.down = append(p.up, up), append(p.down, down)
			p.mu.Unlock()
			p.open.Add(1)
			go p.pipe(s, c, down, nil, i)
			go func() {
				p.pipe(c, s, up, edit, i)
				p.open.Add(-1)
			}()
		}
	}()
	return p
}

func (p *wireProxy) pipe(from, to net.Conn, keep *bytes.Buffer, edit func(int, int64, []byte) []byte, conn int) {
	defer to.Close()
	defer from.Close()
	buf := make([]byte, 32<<10)
	var off int64
	for {
		n, err := from.Read(buf)
		if n > 0 {
			b := buf[:n]
			p.mu.Lock()
			keep.Write(b)
			p.mu.Unlock()
			if edit != nil {
				b = edit(conn, off, b)
			}
			off += int64(n)
			if _, err := to.Write(b); err != nil {
				return
			}
		}
		if err != nil {
			return
		}
	}
}

// wire returns every byte the proxy saw, both ways.
func (p *wireProxy) wire() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	var all []byte
	for i := range p.up {
		all = append(all, p.up[i].Bytes()...)
		all = append(all, p.down[i].Bytes()...)
	}
	return all
}

// clientBytes returns what the client of connection i sent.
func (p *wireProxy) clientBytes(i int) []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return bytes.Clone(p.up[i].Bytes())
}

// leaks reports whether wire holds any 32 consecutive bytes of secret
// (every copy of 47 or more holds one of the windows looked for).
func leaks(wire, secret []byte) bool {
	windows := map[string]bool{}
	for i := 0; i+32 <= len(secret); i += 16 {
		windows[string(secret[i:i+32])] = true
	}
	for i := 0; i+32 <= len(wire); i++ {
		if windows[string(wire[i:i+32])] {
			return true
		}
	}
	return false
}

// TestStreamOnTheWire puts a proxy between two nodes: it sees no payload
// or reply byte in the clear; a connection it recorded, replayed to the
// node or to another one, serves nothing; a byte it alters or drops in the
// middle of a session breaks the connection and serves nothing.
func TestStreamOnTheWire(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "k", addrs, &mu)
	b := startStream(t, "b", "k", addrs, &mu)
	c := startStream(t, "c", "k", addrs, &mu)
	small := bytes.Repeat([]byte("object bytes nobody on the wire may read. "), 100)
	large := make([]byte, 1<<20)
	for i := range large {
		large[i] = byte(i*7 + i>>11)
	}
	var served atomic.Int32 // calls served with one of the bodies above
	for _, n := range []*streamNode{b, c} {
		n.s.Mux.Handle("count", func(_ context.Context, _ string, body []byte) ([]byte, error) {
			if bytes.Equal(body, small) || bytes.Equal(body, large) {
				served.Add(1)
			}
			return append([]byte("reply:"), body...), nil
		})
	}
	via := func(edit func(int, int64, []byte) []byte) *wireProxy {
		t.Helper()
		a.s.Close() // new connections, through the proxy
		p := startWireProxy(t, b.addr, edit)
		mu.Lock()
		addrs["b"] = p.addr
		mu.Unlock()
		return p
	}
	call := func(body []byte) ([]byte, error) {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		return a.s.Call(ctx, "b", "count", body)
	}

	p := via(nil)
	for _, body := range [][]byte{small, large} {
		got, err := call(body)
		if err != nil || !bytes.Equal(got, append([]byte("reply:"), body...)) {
			t.Fatalf("call through a passive proxy: %d bytes, %v", len(got), err)
		}
	}
	if served.Load() != 2 {
		t.Fatalf("served %d calls, want 2", served.Load())
	}
	wire := p.wire()
	if !leaks(append([]byte("x"), large[1000:1047]...), large) {
		t.Fatal("the leak check misses a copy of 47 bytes")
	}
	if leaks(wire, small) || leaks(wire, large) {
		t.Fatal("a payload or a reply crossed the wire in the clear")
	}
	if bytes.Contains(wire, []byte("count")) {
		t.Fatal("a service name crossed the wire in the clear")
	}

	// Replays: each recorded connection, sent again byte for byte to b
	// and to c, serves nothing.
	before := served.Load()
	p.mu.Lock()
	conns := len(p.up)
	p.mu.Unlock()
	if conns != 2 {
		t.Fatalf("the proxy saw %d connections, want 2 (small and large requests)", conns)
	}
	for i := range conns {
		rec := p.clientBytes(i)
		for _, target := range []string{b.addr, c.addr} {

			conn, err := net.Dial("tcp", target)
			if err != nil {
				t.Fatal(err)
			}
			go func() { _, _ = conn.Write(rec) }()
			got, _ := io.ReadAll(conn)
			conn.Close()
			if leaks(got, small) || bytes.Contains(got, []byte("reply:")) {
				t.Fatal("a replayed connection got a reply in the clear")
			}
		}
	}
	if n := served.Load() - before; n != 0 {
		t.Fatalf("replayed connections served %d calls", n)
	}

	// Alterations in the middle of a session: inside a 1 MiB request (past
	// the handshake, which is a few KiB), or in the first small request on
	// a connection that already served one.
	var armed atomic.Bool
	for _, c := range []struct {
		name string
		body []byte
		edit func(int, int64, []byte) []byte
	}{
		{"byte altered", large, func(_ int, off int64, b []byte) []byte {
			if at := 512<<10 - off; at >= 0 && at < int64(len(b)) {
				b[at] ^= 0x20
			}
			return b
		}},
		{"bytes dropped", large, func(_ int, off int64, b []byte) []byte {
			if at := 512<<10 - off; at >= 0 && at+100 <= int64(len(b)) {
				return append(b[:at:at], b[at+100:]...)
			}
			return b
		}},
		{"small request altered", small, func(_ int, _ int64, b []byte) []byte {
			if armed.Load() && len(b) > 64 {
				b[len(b)-40] ^= 1
			}
			return b
		}},
	} {
		t.Run(c.name, func(t *testing.T) {
			armed.Store(false)
			via(c.edit)
			a.s.Conns = 1
			defer func() { a.s.Conns = 0 }()
			if _, err := call(small); err != nil {
				t.Fatalf("a first call on the connection: %v", err)
			}
			armed.Store(true)
			before := served.Load()
			got, err := call(c.body)
			if err == nil {
				t.Fatalf("altered session: call answered %d bytes", len(got))
			}
			if n := served.Load() - before; n != 0 {
				t.Fatalf("altered session served %d calls", n)
			}
			// The connection is gone: the next call dials a new one.
			if _, err := call(small); err != nil && c.name != "small request altered" {
				t.Fatalf("a call after the broken connection: %v", err)
			}
		})
	}
}

// TestStreamRetiresConnections: a connection that carried its data limit
// leaves the pool for a new one (new keys) and is closed once its last
// call is done; no call fails for it.
func TestStreamRetiresConnections(t *testing.T) {
	var mu sync.Mutex
	addrs := map[string]string{}
	a := startStream(t, "a", "k", addrs, &mu)
	b := startStream(t, "b", "k", addrs, &mu)
	p := startWireProxy(t, b.addr, nil)
	mu.Lock()
	addrs["b"] = p.addr
	mu.Unlock()
	a.s.retireBytes = 1 << 20
	body := make([]byte, 60<<10)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 20 {
				if _, err := a.s.Call(context.Background(), "b", "echo", body); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
	p.mu.Lock()
	dialled := len(p.up)
	p.mu.Unlock()
	// 160 calls of 120 KiB both ways: about 19 MiB, 1 MiB per connection.
	if dialled < 10 {
		t.Fatalf("%d connections for 19 MiB at 1 MiB each", dialled)
	}
	// Every connection still open is one the pool keeps.
	eventually(t, "retired connections closed", func() bool {
		a.s.mu.Lock()
		pooled := len(a.s.peers["b"])
		a.s.mu.Unlock()
		return int(p.open.Load()) == pooled
	})
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
// 1 MiB/s takes about 1 s, past the 900 ms write timeout set here, and a
// frame written in one piece failed. A piece of 256 KiB takes a quarter
// second of the 450 ms left at worst when the deadline moves, which leaves
// room for a busy machine's scheduling.
func TestStreamSlowLinkKeepsLargeFrames(t *testing.T) {
	a, b := net.Pipe()
	defer a.Close()
	defer b.Close()
	link := &slowLink{Conn: a, rate: 1 << 20}
	cw, client, sw, server := tlsPair(t, link, b)
	w := newTLSStreamConn(cw, client, "b", 900*time.Millisecond)
	r := newTLSStreamConn(sw, server, "a", time.Second)
	payload := make([]byte, 1<<20)
	for i := range payload {
		payload[i] = byte(i * 31)
	}
	got := make(chan frame, 2)
	go func() {
		for {
			f, err := r.readFrame(nil)
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

// tlsPair runs the handshake of a node "a" dialling a node "b" over the
// two ends of a connection.
func tlsPair(t *testing.T, clientRaw, serverRaw net.Conn) (*wireConn, *tls.Conn, *wireConn, *tls.Conn) {
	t.Helper()
	ca, err := NewCredentials([]byte(testSecret("k")), RoleNode, "a")
	if err != nil {
		t.Fatal(err)
	}
	cb, err := NewCredentials([]byte(testSecret("k")), RoleNode, "b")
	if err != nil {
		t.Fatal(err)
	}
	cw, sw := newWireConn(clientRaw), newWireConn(serverRaw)
	client := tls.Client(cw, ca.clientConfig("b", func(Peer) {}))
	server := tls.Server(sw, cb.serverConfig(func(Peer) {}))
	errs := make(chan error, 1)
	go func() { errs <- server.Handshake() }()
	if err := client.Handshake(); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err != nil {
		t.Fatal(err)
	}
	return cw, client, sw, server
}
