package rpc

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringstore/ringstore/internal/workers"
)

// Stream is the node-to-node transport: persistent TLS 1.3 connections,
// each carrying many requests at once, mutually authenticated by
// certificates derived from the cluster secret (Credentials). HTTP cost
// about 50 µs of CPU per small round trip here, more than the replica work
// of a small request; a framed connection costs a fraction of that.
//
// Inside TLS every frame is
//
//	length(4) id(8) kind(1) len(service)(1) service payload
//
// where length counts the bytes after it. TLS encrypts and authenticates
// the byte stream, so a frame altered, dropped, replayed or reordered on
// the wire breaks the connection, and a recorded connection replayed
// meets fresh keys and fails its handshake.
type Stream struct {
	Self string
	// Secret is the cluster secret the credentials are derived from; it
	// must pass CheckSecret.
	Secret []byte
	// Role is what this side's certificate claims; "" means RoleNode.
	Role    Role
	Resolve func(node string) (string, bool)
	Mux     *Mux
	Logger  *slog.Logger
	Stats   Stats
	// Conns is the number of connections kept to each peer; 0 means 2.
	// Requests of up to 64 KiB all take the first: frames that arrive
	// together are then read with one system call (measured: 6.4 reads
	// per cluster PUT instead of 7.7-8.6, and 8-15% less server CPU).
	// Larger ones (chunks) take the others, so a chunk never holds small
	// requests behind it.
	Conns int
	// WriteTimeout bounds how long a connection may refuse to take writes
	// (its peer hung, its socket full) before it is closed and every
	// request on it fails; 0 means 10 s. A healthy peer reads all the
	// time, so this only ends connections to stuck peers, and calls that
	// queue behind them.
	WriteTimeout time.Duration

	// retireBytes replaces defaultRetireBytes in tests.
	retireBytes int64

	credsOnce sync.Once
	creds     *Credentials
	credsErr  error

	refusals refusalLog

	mu    sync.Mutex // guards peers
	peers map[string][]*streamConn
	next  atomic.Uint64

	// Requests are served on reused goroutines: a replica merge goes deep
	// into pebble, and a fresh goroutine's stack grows and is copied on
	// the way down every time.
	workersOnce sync.Once
	pool        *workers.Pool
}

const (
	kindRequest = 0
	kindReply   = 1
	kindError   = 2
	// frameHeaderLen is a frame's fixed header, before the service name.
	frameHeaderLen = 4 + 8 + 1 + 1
	maxInflight    = 256
	dialTimeout    = 3 * time.Second
	// handshakeDur bounds a TLS handshake, on both sides: an
	// unauthenticated peer holds a connection (and a handshake slot) for
	// no longer than this.
	handshakeDur = 5 * time.Second
	// defaultWriteTimeout is Stream.WriteTimeout's default.
	defaultWriteTimeout = 10 * time.Second
	// MaxBodyBytes bounds a request or reply body.
	MaxBodyBytes = 80 << 20
	// maxServingBytes bounds the request bytes one connection may have in
	// service (read, not yet answered): past it the connection's reader
	// waits for requests to finish, so an authenticated peer makes the
	// node hold no more than this per connection (a single frame up to
	// MaxBodyBytes is let through alone).
	maxServingBytes = 64 << 20
	// frameAllocStep is the most a frame's reader allocates ahead of the
	// bytes that arrived; past it the buffer doubles as bytes come, so a
	// length a peer declares but does not send costs nothing. It holds a
	// 1 MiB chunk with its request in one allocation.
	frameAllocStep = 2 << 20
)

// ErrUnauthenticated means a peer failed the cluster-secret check.
var ErrUnauthenticated = errors.New("rpc: not authenticated by the cluster secret")

var errConnClosed = errors.New("rpc: connection closed")

// streamConn is one authenticated connection, client or server side.
type streamConn struct {
	// c is the TCP connection under TLS, for deadlines and for closing:
	// closing the TLS connection would first try to send a close_notify
	// alert, for up to 5 s to a peer that stopped reading. Frames are
	// whole or not taken, so nothing relies on that alert.
	c net.Conn
	r *bufio.Reader
	// wire, when set, keeps TLS's records until send.
	wire    *wireConn
	sendHdr [frameHeaderLen + 255]byte // the header being written, under wmu
	peer    string

	wmu sync.Mutex // guards w, writes and wdl
	w   *bufio.Writer
	// wdl is the write deadline set on c, moved forward by writeWait
	// whenever less than half of it is left: a deadline set per write
	// cost 13% of the server CPU of a cluster PUT (timer updates on a
	// connection shared by hundreds of requests).
	wdl       time.Time
	writeWait time.Duration
	// waiting counts writers queued for wmu: a writer that sees others
	// waiting leaves the flush to the last of them, so frames from many
	// concurrent requests share system calls.
	waiting atomic.Int32
	// yielders counts writers that released wmu to yield before flushing.
	yielders atomic.Int32

	// Client side: users counts the calls that took this connection from
	// the pool and have not finished; carried counts their bytes, both
	// ways; retired is set once the connection left the pool for good.
	users   atomic.Int32
	carried atomic.Int64
	retired atomic.Bool

	mu      sync.Mutex // guards the following fields (client side)
	pending map[uint64]chan frame
	nextID  uint64
	err     error
}

type frame struct {
	id      uint64
	kind    byte
	service string
	payload []byte
	// held is what the frame took from its connection's serving budget.
	held int
}

// armWrite keeps a write deadline ahead of the writes about to be made;
// the caller holds wmu.
func (sc *streamConn) armWrite() {
	now := time.Now()
	if sc.wdl.Sub(now) < sc.writeWait/2 {
		sc.wdl = now.Add(sc.writeWait)
		_ = sc.c.SetWriteDeadline(sc.wdl)
	}
}

func (t *Stream) writeTimeout() time.Duration {
	if t.WriteTimeout > 0 {
		return t.WriteTimeout
	}
	return defaultWriteTimeout
}

func newStreamConn(c net.Conn, r *bufio.Reader, w *bufio.Writer, peer string, writeWait time.Duration) *streamConn {
	return &streamConn{c: c, r: r, w: w, peer: peer, writeWait: writeWait}
}

// newTLSStreamConn returns the connection of c, whose handshake is done,
// over wire.
func newTLSStreamConn(wire *wireConn, c *tls.Conn, peer string, writeWait time.Duration) *streamConn {
	wire.hold()
	// TLS hands over at most a record (16 KiB) per read.
	sc := newStreamConn(wire.Conn, bufio.NewReaderSize(c, 16<<10), bufio.NewWriterSize(c, 64<<10), peer, writeWait)
	sc.wire = wire
	return sc
}

// encode returns a frame's header, valid until the next frame; the caller
// holds wmu.
func (sc *streamConn) encode(f frame) (hdr []byte, err error) {
	if len(f.service) > 255 {
		return nil, fmt.Errorf("rpc: service name %q too long", f.service)
	}
	if len(f.payload) > MaxBodyBytes {
		return nil, fmt.Errorf("rpc: body of %d bytes, over %d", len(f.payload), MaxBodyBytes)
	}
	hdr = sc.sendHdr[:frameHeaderLen+len(f.service)]
	binary.BigEndian.PutUint32(hdr, uint32(len(hdr)-4+len(f.payload)))
	binary.BigEndian.PutUint64(hdr[4:], f.id)
	hdr[12] = f.kind
	hdr[13] = byte(len(f.service))
	copy(hdr[frameHeaderLen:], f.service)
	return hdr, nil
}

// writeFrame writes one frame; busy says other requests are in flight on
// the connection, so more frames may be about to be written.
func (sc *streamConn) writeFrame(f frame, busy bool) error {
	sc.lockWrite()
	defer sc.wmu.Unlock()
	sc.armWrite()
	hdr, err := sc.encode(f)
	if err != nil {
		return err
	}
	return sc.writeLocked(hdr, f.payload, busy)
}

func (sc *streamConn) lockWrite() {
	sc.waiting.Add(1)
	sc.wmu.Lock()
	sc.waiting.Add(-1)
}

// writeLocked writes one frame whose header encode returned; the caller
// holds wmu.
func (sc *streamConn) writeLocked(hdr, payload []byte, busy bool) error {
	if _, err := sc.w.Write(hdr); err != nil {
		return err
	}
	if err := sc.writePieces(payload); err != nil {
		return err
	}
	if sc.waiting.Load() > 0 {
		return nil // a writer queued behind us flushes
	}
	if !busy {
		return sc.flush()
	}
	// Let the goroutines that are ready to run go first: with other
	// requests in flight some of them are about to send frames on this
	// connection too, and the last writer back flushes them all with one
	// system call (a loopback write costs the receiver's side of the
	// delivery as well). When nothing else is runnable, Gosched returns at
	// once. A lone request does not yield: the goroutines ahead of it
	// would not be writing here, only delaying its frame.
	sc.yielders.Add(1)
	sc.wmu.Unlock()
	runtime.Gosched()
	sc.wmu.Lock()
	if sc.yielders.Add(-1) > 0 || sc.w.Buffered() == 0 {
		return nil // a writer still yielding flushes, or one already did
	}
	return sc.flush()
}

// writePiece is the most written between two looks at the write
// deadline. The deadline bounds a stalled connection, not a slow one: a
// 1 MiB chunk written at once would fail on any link slower than 1 MiB per
// half the write timeout (about 1.7 Mbit/s at 10 s), and fail again on
// every retry, while a link that moves 256 KiB per half timeout (about
// 420 kbit/s) is making progress and keeps its connection.
const writePiece = 256 << 10

// writePieces writes b through the buffered writer, moving the write
// deadline forward between pieces; the caller holds wmu.
func (sc *streamConn) writePieces(b []byte) error {
	for len(b) > writePiece {
		if _, err := sc.w.Write(b[:writePiece]); err != nil {
			return err
		}
		if err := sc.send(); err != nil {
			return err
		}
		b = b[writePiece:]
		sc.armWrite()
	}
	if _, err := sc.w.Write(b); err != nil {
		return err
	}
	// What the buffered writer passed to TLS on the way goes out now, so
	// that a writer that leaves the flush to another leaves only the
	// buffered writer's bytes.
	return sc.send()
}

// send writes out the TLS records kept under the connection; the caller
// holds wmu.
func (sc *streamConn) send() error {
	if sc.wire == nil {
		return nil
	}
	return sc.wire.send()
}

// flush writes out everything written so far; the caller holds wmu.
func (sc *streamConn) flush() error {
	if err := sc.w.Flush(); err != nil {
		return err
	}
	return sc.send()
}

// readFrame reads the next frame. With a budget (server side), the
// payload's bytes are taken from it before they are read, and the frame
// holds them (frame.held) until the caller gives them back.
func (sc *streamConn) readFrame(budget *byteBudget) (frame, error) {
	var hdr [frameHeaderLen]byte
	if _, err := io.ReadFull(sc.r, hdr[:]); err != nil {
		return frame{}, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	slen := int(hdr[13])
	if n < frameHeaderLen-4+slen || n > frameHeaderLen-4+255+MaxBodyBytes {
		return frame{}, fmt.Errorf("rpc: bad frame length %d", n)
	}
	var name [255]byte
	if _, err := io.ReadFull(sc.r, name[:slen]); err != nil {
		return frame{}, err
	}
	f := frame{id: binary.BigEndian.Uint64(hdr[4:]), kind: hdr[12], service: string(name[:slen])}
	size := n - (frameHeaderLen - 4) - slen
	if budget != nil {
		f.held = budget.acquire(size)
	}
	var err error
	if f.payload, err = readPayload(sc.r, size); err != nil {
		if budget != nil {
			budget.release(f.held)
		}
		return frame{}, err
	}
	return f, nil
}

// readPayload reads n bytes, allocating at most frameAllocStep ahead of
// the bytes that arrived: a peer that declares a large frame and stalls
// makes the reader hold little.
func readPayload(r io.Reader, n int) ([]byte, error) {
	if n == 0 {
		return nil, nil
	}
	buf := make([]byte, min(n, frameAllocStep))
	if _, err := io.ReadFull(r, buf); err != nil {
		return nil, err
	}
	for len(buf) < n {
		next := make([]byte, min(n, 2*len(buf)))
		got := copy(next, buf)
		if _, err := io.ReadFull(r, next[got:]); err != nil {
			return nil, err
		}
		buf = next
	}
	return buf, nil
}

// byteBudget is a count of bytes that one reader takes from and many
// request handlers give back to.
type byteBudget struct {
	mu   sync.Mutex
	cond sync.Cond
	used int
	max  int
}

func newByteBudget(max int) *byteBudget {
	b := &byteBudget{max: max}
	b.cond.L = &b.mu
	return b
}

// acquire waits until n bytes (at most the whole budget) are free, takes
// them, and returns how many it took.
func (b *byteBudget) acquire(n int) int {
	n = min(n, b.max)
	b.mu.Lock()
	for b.used+n > b.max {
		b.cond.Wait()
	}
	b.used += n
	b.mu.Unlock()
	return n
}

func (b *byteBudget) release(n int) {
	if n == 0 {
		return
	}
	b.mu.Lock()
	b.used -= n
	b.mu.Unlock()
	b.cond.Broadcast()
}

func (t *Stream) credentials() (*Credentials, error) {
	t.credsOnce.Do(func() {
		role := t.Role
		if role == "" {
			role = RoleNode
		}
		t.creds, t.credsErr = NewCredentials(t.Secret, role, t.Self)
	})
	return t.creds, t.credsErr
}

func (t *Stream) logger() *slog.Logger {
	if t.Logger != nil {
		return t.Logger
	}
	return slog.Default()
}

// dial opens and authenticates a connection to node; node "" takes
// whichever node answers at the address Resolve gives for it (admin
// tools).
func (t *Stream) dial(ctx context.Context, node string) (*streamConn, error) {
	creds, err := t.credentials()
	if err != nil {
		return nil, err
	}
	addr, ok := t.Resolve(node)
	if !ok {
		return nil, fmt.Errorf("rpc: no address for node %s", node)
	}
	d := net.Dialer{Timeout: dialTimeout, KeepAlive: 30 * time.Second}
	raw, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("rpc: dial %s at %s: %w", node, addr, err)
	}
	wire := newWireConn(raw)
	c := tls.Client(wire, creds.clientConfig(node, func(Peer) {}))
	hctx, cancel := context.WithTimeout(ctx, handshakeDur)
	err = c.HandshakeContext(hctx)
	cancel()
	if err != nil {
		_ = raw.Close()
		return nil, handshakeError(node, addr, err)
	}
	sc := newTLSStreamConn(wire, c, node, t.writeTimeout())
	sc.pending = map[uint64]chan frame{}
	go t.clientReadLoop(sc)
	return sc, nil
}

// handshakeError says what a failed handshake most likely means.
func handshakeError(node, addr string, err error) error {
	who := "node " + node + " at " + addr
	if node == "" {
		who = "the node at " + addr
	}
	var alert tls.AlertError
	switch {
	case errors.Is(err, errForeignCert):
		return fmt.Errorf("%w: %s presented a certificate from another secret (is the cluster secret the nodes' own?)", ErrUnauthenticated, who)
	case errors.As(err, &alert) && (alert == 42 || alert == 48 || alert == 116):
		// bad_certificate, unknown_ca, certificate_required
		return fmt.Errorf("%w: %s refused this side's certificate (is the cluster secret the nodes' own?)", ErrUnauthenticated, who)
	case errors.Is(err, errWrongNode):
		return fmt.Errorf("rpc: %s: %w", who, err)
	}
	return fmt.Errorf("rpc: handshake with %s: %w", who, err)
}

func (t *Stream) clientReadLoop(sc *streamConn) {
	var err error
	for {
		var f frame
		if f, err = sc.readFrame(nil); err != nil {
			break
		}
		sc.mu.Lock()
		ch := sc.pending[f.id]
		delete(sc.pending, f.id)
		sc.mu.Unlock()
		if ch != nil {
			ch <- f
		}
	}
	// Out of the pool first: a call that fails here and is retried at once
	// must get a new connection, not this one.
	t.drop(sc)
	sc.mu.Lock()
	sc.err = fmt.Errorf("%w: %v", errConnClosed, err)
	for id, ch := range sc.pending {
		close(ch)
		delete(sc.pending, id)
	}
	sc.mu.Unlock()
	sc.close()
}

// close ends the connection after one try at sending what TLS had left to
// say: an alert naming why the connection failed (a bad record MAC, on a
// byte altered on the wire) tells the peer more than a bare EOF.
func (sc *streamConn) close() {
	if sc.wire != nil {
		_ = sc.c.SetWriteDeadline(time.Now().Add(100 * time.Millisecond))
		_ = sc.wire.send()
	}
	_ = sc.c.Close()
}

func (t *Stream) drop(sc *streamConn) {
	t.mu.Lock()
	defer t.mu.Unlock()
	list := t.peers[sc.peer]
	for i, c := range list {
		if c == sc {
			t.peers[sc.peer] = append(list[:i:i], list[i+1:]...)
			return
		}
	}
}

// conn returns a connection to node, dialling when the pool is short.
func (t *Stream) conn(ctx context.Context, node string, large bool) (*streamConn, error) {
	want := t.Conns
	if want <= 0 {
		want = 2
	}
	t.mu.Lock()
	if t.peers == nil {
		t.peers = map[string][]*streamConn{}
	}
	list := t.peers[node]
	if len(list) >= want {
		sc := list[0]
		if large && len(list) > 1 {
			sc = list[1+int(t.next.Add(1)%uint64(len(list)-1))]
		}
		sc.users.Add(1)
		t.mu.Unlock()
		return sc, nil
	}
	t.mu.Unlock()
	sc, err := t.dial(ctx, node)
	if err != nil {
		t.mu.Lock()
		defer t.mu.Unlock()
		if list := t.peers[node]; len(list) > 0 {
			list[0].users.Add(1)
			return list[0], nil
		}
		return nil, err
	}
	t.mu.Lock()
	t.peers[node] = append(t.peers[node], sc)
	sc.users.Add(1)
	t.mu.Unlock()
	return sc, nil
}

// defaultRetireBytes is Stream.retireBytes's default. TLS 1.3 keeps one
// key per direction for a connection's life, AES-GCM's safety margin
// shrinks with the data sealed under one key (RFC 8446, section 5.5), and
// Go's TLS never updates keys by itself: a connection that carried this
// much, both ways together, is replaced by a new one with new keys, far
// inside the RFC's limit for either direction.
const defaultRetireBytes = 64 << 30

func (t *Stream) retireAfter() int64 {
	if t.retireBytes > 0 {
		return t.retireBytes
	}
	return defaultRetireBytes
}

// done ends a call's use of sc, which carried n bytes for it: a
// connection past its data limit leaves the pool, and is closed by the
// last call that used it.
func (t *Stream) done(sc *streamConn, n int) {
	if sc.carried.Add(int64(n)) >= t.retireAfter() && sc.retired.CompareAndSwap(false, true) {
		t.drop(sc)
	}
	if sc.users.Add(-1) == 0 && sc.retired.Load() {
		_ = sc.c.Close()
	}
}

// describe names the node a call went to in its errors: "" is whichever
// node answers at its address.
func (t *Stream) describe(to string) string {
	if to != "" {
		return to
	}
	if addr, ok := t.Resolve(to); ok {
		return "the node at " + addr
	}
	return "any node"
}

// Call implements Transport.
func (t *Stream) Call(ctx context.Context, to, service string, body []byte) ([]byte, error) {
	if len(body) > MaxBodyBytes {
		return nil, fmt.Errorf("rpc %s to %s: body of %d bytes, over %d", service, t.describe(to), len(body), MaxBodyBytes)
	}
	sc, err := t.conn(ctx, to, len(body) > 64<<10)
	if err != nil {
		return nil, err
	}
	carried := 0
	defer func() { t.done(sc, carried) }()
	ch := make(chan frame, 1)
	// Ids are taken and written under the write lock, so they reach the
	// server in increasing order (it refuses any other).
	sc.lockWrite()
	// A peer that stops reading must not hold this call, and those queued
	// behind it, for good: the write fails at the deadline, and the
	// connection with it (below).
	sc.armWrite()
	sc.mu.Lock()
	if sc.err != nil {
		sc.mu.Unlock()
		sc.wmu.Unlock()
		return nil, fmt.Errorf("rpc %s to %s: %w", service, t.describe(to), sc.err)
	}
	sc.nextID++
	id := sc.nextID
	sc.pending[id] = ch
	busy := len(sc.pending) > 1
	sc.mu.Unlock()
	hdr, err := sc.encode(frame{id: id, kind: kindRequest, service: service, payload: body})
	if err == nil {
		err = sc.writeLocked(hdr, body, busy)
	}
	sc.wmu.Unlock()
	if err != nil {
		sc.mu.Lock()
		delete(sc.pending, id)
		sc.mu.Unlock()
		_ = sc.c.Close()
		return nil, fmt.Errorf("rpc %s to %s: %w", service, t.describe(to), err)
	}
	select {
	case f, ok := <-ch:
		if !ok {
			sc.mu.Lock()
			err := sc.err
			sc.mu.Unlock()
			return nil, fmt.Errorf("rpc %s to %s: %w", service, t.describe(to), err)
		}
		t.Stats.add(service, len(body), len(f.payload))
		carried = len(body) + len(f.payload)
		if f.kind == kindError {
			return nil, &RemoteError{Node: to, Service: service, Message: string(f.payload)}
		}
		return f.payload, nil
	case <-ctx.Done():
		sc.mu.Lock()
		delete(sc.pending, id)
		sc.mu.Unlock()
		return nil, fmt.Errorf("rpc %s to %s: %w", service, t.describe(to), ctx.Err())
	}
}

// serveFrames serves the requests of an authenticated connection from
// peer until it ends.
func (t *Stream) serveFrames(wire *wireConn, c *tls.Conn, peer Peer) {
	raw := wire.Conn
	sc := newTLSStreamConn(wire, c, peer.ID, t.writeTimeout())
	defer sc.close()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sem := make(chan struct{}, maxInflight)
	budget := newByteBudget(maxServingBytes)
	var last uint64
	for {
		f, err := sc.readFrame(budget)
		if err != nil {
			if !errors.Is(err, io.EOF) && !errors.Is(err, net.ErrClosed) {
				t.logger().Debug("rpc connection ended", "from", peer.ID, "err", err)
			}
			return
		}
		if f.kind != kindRequest || f.id <= last {
			t.logger().Warn("rpc frame refused", "from", peer.ID, "id", f.id)
			return
		}
		last = f.id
		sem <- struct{}{}
		t.servePool().Go(func() {
			defer func() { <-sem }()
			var reply []byte
			var err error
			if (peer.Role == RoleAdmin) != strings.HasPrefix(f.service, AdminServicePrefix) {
				err = fmt.Errorf("rpc: service %q is not served to %s peers", f.service, peer.Role)
			} else {
				reply, err = t.Mux.Serve(ctx, peer.ID, f.service, f.payload)
			}
			out := frame{id: f.id, kind: kindReply, payload: reply}
			if err == nil && len(reply) > MaxBodyBytes {
				err = fmt.Errorf("rpc: reply of %d bytes, over %d", len(reply), MaxBodyBytes)
			}
			if err != nil {
				out.kind, out.payload = kindError, []byte(err.Error())
			}
			if err := sc.writeFrame(out, len(sem) > 1); err != nil {
				_ = raw.Close()
			}
			// Held until the reply is out: a reply often shares the
			// request's bytes, and a peer that does not read its replies
			// must not have the reader take more.
			budget.release(f.held)
		})
	}
}

func (t *Stream) servePool() *workers.Pool {
	t.workersOnce.Do(func() { t.pool = workers.New(10 * time.Second) })
	return t.pool
}

// Close drops every client connection.
func (t *Stream) Close() {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, list := range t.peers {
		for _, sc := range list {
			_ = sc.c.Close()
		}
	}
	t.peers = nil
}
