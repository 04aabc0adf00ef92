package rpc

import (
	"bufio"
	"net"
	"sync"
	"time"
)

// Listener splits one RPC port between the stream protocol (connections
// that open with StreamMagic) and HTTP (admin tools, metrics): Accept
// returns only the HTTP connections, for an http.Server to serve.
type Listener struct {
	ln     net.Listener
	stream *Stream
	conns  chan net.Conn
	once   sync.Once
	done   chan struct{}
}

// NewListener starts sorting the connections of ln.
func NewListener(ln net.Listener, s *Stream) *Listener {
	l := &Listener{ln: ln, stream: s, conns: make(chan net.Conn), done: make(chan struct{})}
	go l.loop()
	return l
}

func (l *Listener) loop() {
	for {
		c, err := l.ln.Accept()
		if err != nil {
			l.Close()
			return
		}
		go l.sort(c)
	}
}

func (l *Listener) sort(c net.Conn) {
	_ = c.SetReadDeadline(time.Now().Add(handshakeDur))
	r := bufio.NewReaderSize(c, 64<<10)
	head, err := r.Peek(len(StreamMagic))
	_ = c.SetReadDeadline(time.Time{})
	if err == nil && string(head) == StreamMagic {
		_, _ = r.Discard(len(StreamMagic))
		l.stream.ServeConn(c, r)
		return
	}
	select {
	case l.conns <- &peekedConn{Conn: c, r: r}:
	case <-l.done:
		_ = c.Close()
	}
}

// Accept returns the next HTTP connection.
func (l *Listener) Accept() (net.Conn, error) {
	select {
	case c := <-l.conns:
		return c, nil
	case <-l.done:
		return nil, net.ErrClosed
	}
}

// Close stops listening.
func (l *Listener) Close() error {
	l.once.Do(func() {
		close(l.done)
		_ = l.ln.Close()
	})
	return nil
}

// Addr is the listening address.
func (l *Listener) Addr() net.Addr { return l.ln.Addr() }

// peekedConn replays the bytes read while sorting.
type peekedConn struct {
	net.Conn
	r *bufio.Reader
}

func (p *peekedConn) Read(b []byte) (int, error) { return p.r.Read(b) }
