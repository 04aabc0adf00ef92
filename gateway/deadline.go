package gateway

import (
	"errors"
	"io"
	"net/http"
	"os"
	"time"
)

// DefaultProgressTimeout is Config.ProgressTimeout's default: S3 closes a
// connection on which a transfer has stalled for about 20 s.
const DefaultProgressTimeout = 20 * time.Second

// progressPiece is the most handed to the connection between two looks at
// the write deadline. The deadline bounds a stalled client, not a slow
// one: a 1 MiB chunk written at once would fail on any link that cannot
// take it within the deadline, while a client taking a piece per half
// timeout is making progress and keeps its connection.
const progressPiece = 64 << 10

// deadliner is the part of net/http's ResponseWriter that reaches the
// connection; http.ResponseController finds it the same way.
type deadliner interface {
	SetReadDeadline(time.Time) error
	SetWriteDeadline(time.Time) error
}

func connDeadlines(w http.ResponseWriter) deadliner {
	for {
		if d, ok := w.(deadliner); ok {
			return d
		}
		u, ok := w.(interface{ Unwrap() http.ResponseWriter })
		if !ok {
			return nil
		}
		w = u.Unwrap()
	}
}

// progress bounds how long one request's body and response may stand
// still, by deadlines on its connection that move forward as bytes move.
// net/http sets no read or write deadline of its own during a request, so
// a client that stops sending a body, or stops reading a response, would
// otherwise hold the handler, its goroutine and its buffers for ever. A
// deadline is moved only when half of it is used up: timer updates on
// every small read or write are a measurable share of a request's cost.
// A stall is therefore noticed after between half and all of the timeout.
//
// Only the handler's goroutine uses a progress, so it needs no lock.
type progress struct {
	timeout time.Duration
	conn    deadliner // nil: no connection (tests), nothing to bound

	w http.ResponseWriter
	// writeBy is the write deadline this request set, zero before its
	// first write: net/http clears the write deadline after every request.
	writeBy time.Time

	body     io.ReadCloser
	readBy   time.Time
	bodyEOF  bool
	timedOut bool
}

// start wraps w and r's body; off (a negative timeout) leaves them as they
// are.
func (p *progress) start(w http.ResponseWriter, r *http.Request, timeout time.Duration) (http.ResponseWriter, *http.Request) {
	if timeout < 0 {
		return w, r
	}
	p.timeout = timeout
	p.conn = connDeadlines(w)
	if p.conn == nil {
		return w, r
	}
	p.w = w
	if r.Body != nil && r.Body != http.NoBody {
		p.body = r.Body
		r.Body = progressBody{p}
	}
	return progressWriter{p}, r
}

// finish runs after the handler. net/http then reads what is left of the
// body, to reuse the connection, and writes what is left of the response
// (the header alone, for many): both under a deadline too.
func (p *progress) finish() {
	if p.conn == nil {
		return
	}
	if p.body != nil && !p.bodyEOF && !p.timedOut {
		p.armRead()
	}
	p.armWrite()
}

func (p *progress) armWrite() {
	now := time.Now()
	if p.writeBy.Sub(now) < p.timeout/2 {
		p.writeBy = now.Add(p.timeout)
		_ = p.conn.SetWriteDeadline(p.writeBy)
	}
}

func (p *progress) armRead() {
	now := time.Now()
	if p.readBy.Sub(now) < p.timeout/2 {
		p.readBy = now.Add(p.timeout)
		_ = p.conn.SetReadDeadline(p.readBy)
	}
}

// progressBody reads the request body under the read deadline.
type progressBody struct{ p *progress }

func (b progressBody) Read(buf []byte) (int, error) {
	p := b.p
	if p.bodyEOF {
		return p.body.Read(buf)
	}
	if p.timedOut {
		// A stalled client gets no second timeout from a reader that
		// tries again.
		return 0, ErrRequestTimeout
	}
	p.armRead()
	n, err := p.body.Read(buf)
	switch {
	case err == io.EOF:
		// At the body's end net/http clears the read deadline and starts
		// a read of its own, to notice a client that goes away; that read
		// failing would cancel the request's context, and with it a
		// handler that works on after the body (a multipart completion).
		p.bodyEOF = true
	case err != nil && errors.Is(err, os.ErrDeadlineExceeded):
		p.timedOut = true
		return n, ErrRequestTimeout
	}
	return n, err
}

func (b progressBody) Close() error { return b.p.body.Close() }

// progressWriter writes the response under the write deadline.
type progressWriter struct{ p *progress }

func (w progressWriter) Header() http.Header { return w.p.w.Header() }

func (w progressWriter) WriteHeader(code int) {
	// An informational response goes out at once; a final one waits for
	// the body or for finish.
	if code < 200 {
		w.p.armWrite()
	}
	w.p.w.WriteHeader(code)
}

func (w progressWriter) Write(b []byte) (int, error) {
	written := 0
	for {
		w.p.armWrite()
		piece := b[:min(len(b), progressPiece)]
		n, err := w.p.w.Write(piece)
		written += n
		if err != nil {
			return written, err
		}
		b = b[n:]
		if len(b) == 0 {
			return written, nil
		}
	}
}

func (w progressWriter) Flush() {
	w.p.armWrite()
	if f, ok := w.p.w.(http.Flusher); ok {
		f.Flush()
	}
}

// Unwrap lets http.ResponseController reach the connection's writer.
func (w progressWriter) Unwrap() http.ResponseWriter { return w.p.w }
