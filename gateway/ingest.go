package gateway

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"hash"
	"io"
	"sync"
	"sync/atomic"

	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/sse"
)

// The write path of an object body (PUT, UploadPart):
//
//  1. The verified body (package auth checks signatures and payload hashes
//     as it is read) is cut into fixed-size chunks. This goroutine feeds
//     each chunk to MD5 (the ETag) and to the requested checksum.
//  2. Up to ChunksInFlight chunks at a time are handed to workers, which
//     hash the chunk (SHA-256, the blob id), record a blob reference naming
//     this write, and then store the chunk durably. The reference comes
//     first so garbage collection never sees a stored chunk of a live write
//     without a reference (a young reference protects it while the write is
//     in progress).
//  3. Only when the whole body was read and every check passed does the
//     caller write the object record: before that nothing is visible.
//     A failure at any step leaves chunks whose references name a write
//     that never committed; garbage collection reclaims them after the
//     grace period.
//
// Memory per upload is bounded by (ChunksInFlight + 1) chunk buffers.

// ingested describes a stored body.
type ingested struct {
	size     int64
	md5      []byte
	checksum string // base64 of the requested checksum, if any
	inline   []byte
	chunks   []index.ChunkRef
}

type bufferPool struct {
	size int
	pool sync.Pool
	// out counts buffers taken and not yet returned, so that a request
	// that keeps one, or returns one twice, shows.
	out atomic.Int64
}

func newBufferPool(size int) *bufferPool {
	p := &bufferPool{size: size}
	p.pool.New = func() any { b := make([]byte, size); return &b }
	return p
}

func (p *bufferPool) get() *[]byte {
	p.out.Add(1)
	return p.pool.Get().(*[]byte)
}

func (p *bufferPool) put(b *[]byte) {
	p.out.Add(-1)
	p.pool.Put(b)
}

// ingest reads body to its end, storing it as inline bytes or chunks.
// declared is the length the request declared (-1 when unknown); a body
// of another length is IncompleteBody. keep records the write's reference
// to every chunk and keeps it young until the write commits.
//
// With seal set, each chunk and an inline body are sealed under its data
// key. A sealed chunk holds sse.Overhead bytes less plaintext, so that it
// fills the same buffer, and a full one is as long and aligned as a
// plaintext chunk (the chunk store writes those with O_DIRECT): the
// plaintext is read into the buffer after the nonce's room and sealed
// where it lies.
func (s *Server) ingest(ctx context.Context, body io.Reader, declared, maxSize int64, keep *refKeeper, spec *checksumSpec, allowInline bool, seal *sse.Sealer) (*ingested, error) {
	md := md5.New()
	var ck hash.Hash
	if spec != nil {
		ck = newChecksum(spec.alg)
	}
	out := &ingested{}
	sum := func(p []byte) {
		md.Write(p)
		if ck != nil {
			ck.Write(p)
		}
	}

	// The plaintext of a chunk is buf[lo:lo+n], n <= hi-lo.
	lo, hi := 0, s.cfg.ChunkBytes
	if seal != nil {
		lo, hi = sse.NonceSize, s.cfg.ChunkBytes-sse.TagSize
	}

	// Small bodies: read up to InlineMax+1 bytes; if the body ends there it
	// is stored inline.
	first := s.bufs.get()
	defer func() {
		if first != nil {
			s.bufs.put(first)
		}
	}()
	n, err := readChunk(body, (*first)[lo:hi])
	if err != nil {
		return nil, bodyError(err)
	}
	out.size = int64(n)
	eof := n < hi-lo
	if eof && (n <= s.cfg.InlineMax && allowInline || n == 0) {
		plain := (*first)[lo : lo+n]
		sum(plain)
		if seal != nil && allowInline {
			out.inline = seal.Seal(plain)
		} else {
			out.inline = append([]byte(nil), plain...)
		}
		return out, s.finish(out, md, ck, declared, spec)
	}

	w := &chunkWriter{s: s, ctx: ctx, keep: keep, sem: make(chan struct{}, s.cfg.ChunksInFlight), seal: seal}
	buf := first
	first = nil
	for {
		if maxSize >= 0 && out.size > maxSize {
			s.bufs.put(buf)
			w.wait()
			return nil, ErrEntityTooLarge
		}
		sum((*buf)[lo : lo+n])
		w.submit(buf, n)
		if eof {
			break
		}
		buf = s.bufs.get()
		n, err = readChunk(body, (*buf)[lo:hi])
		if err != nil {
			s.bufs.put(buf)
			w.wait()
			return nil, bodyError(err)
		}
		if n == 0 {
			s.bufs.put(buf)
			break
		}
		out.size += int64(n)
		eof = n < hi-lo
	}
	if err := w.wait(); err != nil {
		return nil, err
	}
	out.chunks = w.chunks
	return out, s.finish(out, md, ck, declared, spec)
}

// readChunk fills buf from r; it returns fewer bytes than len(buf) only at
// the end of r.
func readChunk(r io.Reader, buf []byte) (int, error) {
	n, err := io.ReadFull(r, buf)
	if err == io.EOF || err == io.ErrUnexpectedEOF {
		return n, nil
	}
	return n, err
}

// bodyError maps a failure to read the request body to an S3 error.
func bodyError(err error) error {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	if authErr := asAuthError(err); authErr != nil {
		return authErr
	}
	return ErrIncompleteBody
}

// finish checks the body against what the request declared.
func (s *Server) finish(out *ingested, md, ck hash.Hash, declared int64, spec *checksumSpec) error {
	if declared >= 0 && out.size != declared {
		return ErrIncompleteBody
	}
	out.md5 = md.Sum(nil)
	if ck != nil {
		out.checksum = base64.StdEncoding.EncodeToString(ck.Sum(nil))
		if spec.value != "" && spec.value != out.checksum {
			return ErrBadDigest.msg("The %s you specified did not match the calculated checksum.", spec.alg)
		}
	}
	return nil
}

// chunkWriter stores chunks with bounded parallelism, keeping their order.
// With seal set it seals each chunk first: the n plaintext bytes of a
// buffer lie at buf[sse.NonceSize:], and its chunk records n, the
// plaintext length, so that offsets within the object stay plaintext
// offsets.
type chunkWriter struct {
	s    *Server
	ctx  context.Context
	keep *refKeeper
	seal *sse.Sealer
	sem  chan struct{}
	wg   sync.WaitGroup

	mu     sync.Mutex // guards the following fields
	chunks []index.ChunkRef
	err    error
}

func (w *chunkWriter) submit(buf *[]byte, n int) {
	w.mu.Lock()
	i := len(w.chunks)
	w.chunks = append(w.chunks, index.ChunkRef{Size: uint32(n)})
	failed := w.err != nil
	w.mu.Unlock()
	if failed {
		w.s.bufs.put(buf)
		return
	}
	w.sem <- struct{}{}
	w.wg.Add(1)
	go func() {
		defer func() {
			w.s.bufs.put(buf)
			<-w.sem
			w.wg.Done()
		}()
		data := (*buf)[:n]
		if w.seal != nil {
			data = w.seal.SealInPlace(*buf, n)
		}
		c := blobs.Seal(data)
		err := w.store(c)
		w.mu.Lock()
		w.chunks[i].ID = index.BlobID(c.ID())
		if err != nil && w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
	}()
}

// store records the reference, then stores the chunk. The buffer goes
// back to the pool when store returns, so nothing below may hold it past
// that (Chunks.Put's contract).
func (w *chunkWriter) store(c blobs.Chunk) error {
	if err := w.keep.record(w.ctx, index.BlobID(c.ID())); err != nil {
		return err
	}
	return w.s.cfg.Chunks.Put(w.ctx, c)
}

func (w *chunkWriter) wait() error {
	w.wg.Wait()
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.err
}
