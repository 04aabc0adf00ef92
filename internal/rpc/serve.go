package rpc

import (
	"crypto/tls"
	"errors"
	"net"
	"sync"
	"time"
)

// maxHandshakes bounds the handshakes in progress: each holds a goroutine
// and what TLS buffers of a handshake message (256 KiB at most, for a
// certificate message) for at most handshakeDur, so a flood of
// unauthenticated connections costs at most a few tens of MiB. Past it the
// listener stops accepting and new connections wait in the kernel's
// backlog. Nodes keep their connections, so new ones are rare.
const maxHandshakes = 64

// refusalLogEvery is the most often a refused handshake is logged: a
// flood of them (a scanner, a node with another secret retrying) makes one
// line per period with a count, not one per connection.
const refusalLogEvery = 10 * time.Second

// Serve accepts connections on ln until it is closed: each must complete
// a TLS handshake with a certificate from the cluster CA within
// handshakeDur, or is closed before any frame is read.
func (t *Stream) Serve(ln net.Listener) error {
	creds, err := t.credentials()
	if err != nil {
		_ = ln.Close()
		return err
	}
	slots := make(chan struct{}, maxHandshakes)
	var backoff time.Duration
	for {
		slots <- struct{}{}
		c, err := ln.Accept()
		if err != nil {
			<-slots
			if errors.Is(err, net.ErrClosed) {
				return err
			}
			// Out of file descriptors or the like: wait, as net/http does,
			// rather than spin or give up the port.
			backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
			t.logger().Warn("rpc accept", "err", err, "retry_in", backoff)
			time.Sleep(backoff)
			continue
		}
		backoff = 0
		go t.serveConn(c, creds, slots)
	}
}

func (t *Stream) serveConn(raw net.Conn, creds *Credentials, slots chan struct{}) {
	var peer Peer
	wire := newWireConn(raw)
	c := tls.Server(wire, creds.serverConfig(func(p Peer) { peer = p }))
	_ = raw.SetDeadline(time.Now().Add(handshakeDur))
	err := c.Handshake()
	<-slots
	if err != nil {
		_ = raw.Close()
		t.refused(raw.RemoteAddr(), err)
		return
	}
	_ = raw.SetDeadline(time.Time{})
	t.serveFrames(wire, c, peer)
}

// refusalLog counts refused handshakes and paces their log lines.
type refusalLog struct {
	mu       sync.Mutex
	last     time.Time
	unlogged int
}

func (t *Stream) refused(remote net.Addr, err error) {
	t.Stats.refused.Add(1)
	r := &t.refusals
	r.mu.Lock()
	now := time.Now()
	if !r.last.IsZero() && now.Sub(r.last) < refusalLogEvery {
		r.unlogged++
		r.mu.Unlock()
		return
	}
	unlogged := r.unlogged
	r.unlogged, r.last = 0, now
	r.mu.Unlock()
	t.logger().Warn("rpc connection refused: no valid certificate from the cluster secret", "remote", remote, "err", err,
		"more_refused_since_last_line", unlogged)
}
