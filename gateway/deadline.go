package gateway

import (
	"errors"
	"io"
	"net"
	"net/http"
	"os"
	"time"
)

// DefaultProgressTimeout is Config.ProgressTimeout's default: S3 closes a
// connection on which a transfer has stalled for about 20 s.
const DefaultProgressTimeout = 20 * time.Second

// The progress timeout is kept by deadlines on the connection that move
// forward as bytes move: net/http sets no read or write deadline of its
// own while a handler runs, so a client that stops sending a body, or
// stops reading a response, would otherwise hold the handler, its
// goroutine and its chunk buffers for ever. A deadline is moved only when
// much of it is used up, since a timer update on every small read or
// write is a measurable share of a small request's cost.

// progressBody reads a request body under a read deadline. Reads need no
// more: one returns as soon as any byte comes, so a client sending
// something every timeout keeps its request. Only the handler's goroutine
// reads the body.
type progressBody struct {
	body    io.ReadCloser
	conn    interface{ SetReadDeadline(time.Time) error }
	timeout time.Duration
	readBy  time.Time
	// eof: the body has ended. net/http then clears the read deadline and
	// reads on its own, to notice a client that goes away; a deadline set
	// again would fail that read, which cancels the request's context and
	// so cuts off a handler that works on after the body (a multipart
	// completion).
	eof      bool
	timedOut bool
}

// wrapBody puts r's body under the read deadline when r came over a
// connection (not, say, a test's recorder) and has a body.
func (b *progressBody) wrapBody(w http.ResponseWriter, r *http.Request, timeout time.Duration) {
	if timeout < 0 || r.Body == nil || r.Body == http.NoBody {
		return
	}
	// Found as http.ResponseController finds it, without the error it
	// allocates for a writer that has none.
	for {
		if d, ok := w.(interface{ SetReadDeadline(time.Time) error }); ok {
			b.conn = d
			break
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return
		}
		w = u.Unwrap()
	}
	b.body, b.timeout = r.Body, timeout
	r.Body = b
}

// finish runs after the handler: net/http then reads what is left of the
// body, to reuse the connection, under a deadline too.
func (b *progressBody) finish() {
	if b.conn != nil && !b.eof && !b.timedOut {
		b.arm()
	}
}

// arm keeps the deadline at least a timeout ahead, moving it by half a
// timeout at a time: a body that stands still is noticed after between
// one and one and a half timeouts.
func (b *progressBody) arm() {
	now := time.Now()
	if b.readBy.Sub(now) < b.timeout {
		b.readBy = now.Add(b.timeout + b.timeout/2)
		_ = b.conn.SetReadDeadline(b.readBy)
	}
}

func (b *progressBody) Read(p []byte) (int, error) {
	if b.eof {
		return b.body.Read(p)
	}
	if b.timedOut {
		// A stalled client gets no second timeout from a reader that
		// tries again.
		return 0, ErrRequestTimeout
	}
	b.arm()
	n, err := b.body.Read(p)
	switch {
	case err == io.EOF:
		b.eof = true
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		b.timedOut = true
		return n, ErrRequestTimeout
	}
	return n, err
}

func (b *progressBody) Close() error { return b.body.Close() }

// Listener returns ln with every connection's writes under the progress
// timeout: a response, or anything else net/http writes, that the client
// takes no bytes of for the timeout fails, which ends its handler (and
// frees its buffers) and closes the connection.
func (s *Server) Listener(ln net.Listener) net.Listener {
	if s.cfg.ProgressTimeout < 0 {
		return ln
	}
	return progressListener{ln, s.cfg.ProgressTimeout}
}

type progressListener struct {
	net.Listener
	timeout time.Duration
}

func (l progressListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return &progressConn{Conn: c, timeout: l.timeout}, nil
}

// progressConn writes under a write deadline. Unlike a read, a write
// waits for room in the kernel's send buffer, and the kernel wakes a
// blocked writer only once a third of that buffer has drained; on a fast
// link the buffer grows to megabytes, more than a slow but steady client
// may read within the timeout. So a write that meets the deadline asks
// the kernel whether the client has been taking bytes (acknowledging
// them), and if it has, goes on.
//
// net/http writes a connection from one goroutine at a time, and sets
// its write deadline only between requests, from that goroutine too.
type progressConn struct {
	net.Conn
	timeout time.Duration
	writeBy time.Time // the write deadline set; zero when none
	written int64     // bytes handed to the kernel
	// acked is how many of them the client had taken when last looked,
	// at ackedAt; zero when writes have moved since.
	acked   int64
	ackedAt time.Time
}

func (c *progressConn) Write(b []byte) (int, error) {
	total := 0
	for {
		if now := time.Now(); c.writeBy.Sub(now) < c.timeout/2 {
			c.setWriteBy(now.Add(c.timeout))
			c.ackedAt = time.Time{}
		}
		n, err := c.Conn.Write(b)
		total += n
		c.written += int64(n)
		b = b[n:]
		if err == nil || !errors.Is(err, os.ErrDeadlineExceeded) || !c.taking() {
			return total, err
		}
	}
}

// taking reports whether the client has taken bytes within the last
// timeout, and if so moves the deadline a timeout past the last time it
// was seen to. The first look after writes moved only notes how far the
// client got, so a client that stops reading is cut off after between one
// and a half and two timeouts.
func (c *progressConn) taking() bool {
	queued, ok := sendQueue(c.Conn)
	if !ok {
		return false
	}
	now := time.Now()
	if acked := c.written - queued; acked != c.acked || c.ackedAt.IsZero() {
		c.acked, c.ackedAt = acked, now
	}
	if now.Sub(c.ackedAt) >= c.timeout {
		return false
	}
	c.setWriteBy(c.ackedAt.Add(c.timeout))
	return true
}

func (c *progressConn) setWriteBy(t time.Time) {
	c.writeBy = t
	_ = c.Conn.SetWriteDeadline(t)
}

func (c *progressConn) SetWriteDeadline(t time.Time) error {
	c.writeBy = t
	return c.Conn.SetWriteDeadline(t)
}

func (c *progressConn) SetDeadline(t time.Time) error {
	c.writeBy = t
	return c.Conn.SetDeadline(t)
}

// CloseWrite lets net/http half-close the connection before it closes it
// after an error, so that the client reads the error instead of a reset.
func (c *progressConn) CloseWrite() error {
	if cw, ok := c.Conn.(interface{ CloseWrite() error }); ok {
		return cw.CloseWrite()
	}
	return nil
}
