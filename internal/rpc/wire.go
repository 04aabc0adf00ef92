package rpc

import (
	"bufio"
	"net"
	"sync"
)

// wireConn is the TCP connection under TLS. TLS writes each record (at
// most 16 KiB) with a system call of its own and reads about a record per
// call, so a 1 MiB chunk would cross in some 64 writes and as many reads
// each way. Once the handshake is done, wireConn keeps what TLS writes
// until the connection's writer sends it at once (send), and reads
// through a buffer, so a chunk moves in a few system calls, as frames did
// before TLS (docs/ARCHITECTURE.md has the measurements).
type wireConn struct {
	net.Conn
	r *bufio.Reader

	mu      sync.Mutex // guards the following
	holding bool
	out     []byte // kept records, in small, in big or on their own
	// small is the connection's own buffer, for what a flush of the
	// buffered writer makes; big is a pooled one, for chunks, while out is
	// in it.
	small []byte
	big   *[]byte
}

const (
	// wireReadBuffer is the read buffer under TLS: four full records.
	wireReadBuffer = 64 << 10
	// wireSmall holds the records of a full buffered writer (64 KiB).
	wireSmall = 72 << 10
	// wireBig holds the records of a writePiece and of a full buffered
	// writer before it.
	wireBig = writePiece + 64<<10 + 16<<10
)

// wireBufs are the big buffers, shared by the connections.
var wireBufs = sync.Pool{New: func() any { b := make([]byte, 0, wireBig); return &b }}

func newWireConn(c net.Conn) *wireConn {
	return &wireConn{Conn: c, r: bufio.NewReaderSize(c, wireReadBuffer)}
}

func (w *wireConn) Read(p []byte) (int, error) { return w.r.Read(p) }

// Write sends p at once during the handshake and keeps it after hold.
// TLS writes outside the connection's writer (a key update reply, an
// alert before it closes) are kept too, and go with the next send.
func (w *wireConn) Write(p []byte) (int, error) {
	w.mu.Lock()
	if w.holding {
		if len(w.out)+len(p) > cap(w.out) {
			w.room(len(p))
		}
		w.out = append(w.out, p...)
		w.mu.Unlock()
		return len(p), nil
	}
	w.mu.Unlock()
	return w.Conn.Write(p)
}

// room moves out to a buffer with room for n more bytes; the caller holds
// mu.
func (w *wireConn) room(n int) {
	need := len(w.out) + n
	var next []byte
	switch {
	case need <= wireSmall:
		// out is empty: nothing fits less than small.
		if w.small == nil {
			w.small = make([]byte, 0, wireSmall)
		}
		next = w.small[:0]
	case need <= wireBig && w.big == nil:
		w.big = wireBufs.Get().(*[]byte)
		next = (*w.big)[:0]
	default:
		next = make([]byte, 0, need+need/2)
	}
	w.out = append(next, w.out...)
}

// hold starts keeping writes for send.
func (w *wireConn) hold() {
	w.mu.Lock()
	w.holding = true
	w.mu.Unlock()
}

// send writes what was kept with one system call, under the connection's
// write deadline.
func (w *wireConn) send() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.out) == 0 {
		return nil
	}
	_, err := w.Conn.Write(w.out)
	w.out = w.small[:0]
	if w.big != nil {
		*w.big = (*w.big)[:0]
		wireBufs.Put(w.big)
		w.big = nil
	}
	return err
}
