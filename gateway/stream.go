package gateway

import (
	"context"
	"fmt"
	"io"

	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/sse"
)

// chunkAt is one chunk of a version with the offset of its first byte.
type chunkAt struct {
	ref    index.ChunkRef
	offset int64
}

// chunksOf calls fn, in order, for the chunks of v overlapping
// [start, start+length). fn returning false stops the walk.
func (s *Server) chunksOf(ctx context.Context, v *index.Version, start, length int64, fn func(chunkAt) bool) error {
	end := start + length
	if v.ExtentRows == 0 {
		var off int64
		for _, c := range v.Chunks {
			next := off + int64(c.Size)
			if next > start && off < end {
				if !fn(chunkAt{c, off}) {
					return nil
				}
			}
			if next >= end {
				return nil
			}
			off = next
		}
		return nil
	}
	// Find the row holding start: the last row whose first offset is at or
	// below it.
	ix := s.cfg.Index
	first, _, err := ix.Range(ctx, index.TableExtents, v.WriteID[:], nil, index.ExtentSK(start+1), 1, true)
	if err != nil {
		return err
	}
	if len(first) == 0 {
		return fmt.Errorf("version %s: no extent row at offset %d", v.WriteID, start)
	}
	from := first[0].SK
	for {
		rows, more, err := ix.Range(ctx, index.TableExtents, v.WriteID[:], from, nil, 8, false)
		if err != nil {
			return err
		}
		if len(rows) == 0 {
			return fmt.Errorf("version %s: extent rows end before offset %d", v.WriteID, end)
		}
		for _, row := range rows {
			x, err := index.DecodeExtents(row.Value)
			if err != nil {
				return err
			}
			off := int64(beUint64(row.SK))
			for _, c := range x.Chunks {
				next := off + int64(c.Size)
				if next > start && off < end {
					if !fn(chunkAt{c, off}) {
						return nil
					}
				}
				if next >= end {
					return nil
				}
				off = next
			}
		}
		if !more {
			return fmt.Errorf("version %s: extent rows end before offset %d", v.WriteID, end)
		}
		from = append(rows[len(rows)-1].SK, 0)
	}
}

func beUint64(b []byte) uint64 {
	if len(b) != 8 {
		return 0
	}
	var v uint64
	for _, c := range b {
		v = v<<8 | uint64(c)
	}
	return v
}

// streamVersion writes bytes [start, start+length) of v to w, opening
// them with key when v is encrypted. Chunks are read, verified and opened
// one ahead of the writer so disk, decryption and network overlap; a
// range opens only the chunks it touches.
func (s *Server) streamVersion(ctx context.Context, w io.Writer, v *index.Version, key *sse.Sealer, start, length int64) error {
	if length == 0 {
		return nil
	}
	if v.Inline != nil || v.Size == 0 {
		inline := v.Inline
		if key != nil {
			var err error
			if inline, err = key.Open(v.Inline); err != nil {
				return fmt.Errorf("version %s: inline body: %w", v.WriteID, err)
			}
		}
		if start+length > int64(len(inline)) {
			return fmt.Errorf("version %s: inline data of %d bytes, want up to %d", v.WriteID, len(inline), start+length)
		}
		_, err := w.Write(inline[start : start+length])
		return err
	}
	overhead := 0
	if key != nil {
		overhead = sse.Overhead
	}
	type fetched struct {
		c    chunkAt
		buf  *[]byte
		data []byte
		err  error
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	ch := make(chan fetched, 2)
	go func() {
		defer close(ch)
		err := s.chunksOf(ctx, v, start, length, func(c chunkAt) bool {
			buf := s.bufs.get()
			data, err := s.cfg.Chunks.Get(ctx, blobs.ID(c.ref.ID), *buf)
			if err == nil && len(data) != int(c.ref.Size)+overhead {
				err = fmt.Errorf("chunk %s: %d bytes, want %d", c.ref.ID, len(data), int(c.ref.Size)+overhead)
			}
			if err == nil && key != nil {
				if data, err = key.OpenInPlace(data); err != nil {
					err = fmt.Errorf("chunk %s of version %s: %w", c.ref.ID, v.WriteID, err)
				}
			}
			select {
			case ch <- fetched{c: c, buf: buf, data: data, err: err}:
				return err == nil
			case <-ctx.Done():
				s.bufs.put(buf)
				return false
			}
		})
		if err != nil {
			select {
			case ch <- fetched{err: err}:
			case <-ctx.Done():
			}
		}
	}()
	end := start + length
	var written int64
	var werr error
	for f := range ch {
		if werr == nil && f.err != nil {
			werr = f.err
		}
		if werr == nil {
			lo := max(start-f.c.offset, 0)
			hi := min(end-f.c.offset, int64(len(f.data)))
			n, err := w.Write(f.data[lo:hi])
			written += int64(n)
			if err != nil {
				werr = writeFailed{err}
			}
		}
		if f.buf != nil {
			s.bufs.put(f.buf)
		}
		if werr != nil {
			cancel()
		}
	}
	if werr != nil {
		return werr
	}
	if written != length {
		return fmt.Errorf("version %s: wrote %d of %d bytes", v.WriteID, written, length)
	}
	return nil
}

// writeFailed is a response the client did not take: it went away or
// stopped reading. The store is not at fault.
type writeFailed struct{ err error }

func (e writeFailed) Error() string { return "writing the response: " + e.err.Error() }
func (e writeFailed) Unwrap() error { return e.err }

func blobIDOf(id index.BlobID) blobs.ID { return blobs.ID(id) }
