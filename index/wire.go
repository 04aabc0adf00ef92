package index

import (
	"errors"
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Records are encoded in the protobuf wire format, written by hand with
// protowire: it is compact, skips unknown fields (so a newer node's records
// stay readable by an older one during an upgrade), and needs no generated
// code. Fields with zero values are omitted, and repeated fields are written
// in a canonical order, so equal records encode to equal bytes.

var errTruncated = errors.New("index: truncated record")

type encoder struct{ b []byte }

func (e *encoder) uint(n protowire.Number, v uint64) {
	if v == 0 {
		return
	}
	e.b = protowire.AppendTag(e.b, n, protowire.VarintType)
	e.b = protowire.AppendVarint(e.b, v)
}

func (e *encoder) int(n protowire.Number, v int64) { e.uint(n, protowire.EncodeZigZag(v)) }

func (e *encoder) bool(n protowire.Number, v bool) {
	if v {
		e.uint(n, 1)
	}
}

func (e *encoder) bytes(n protowire.Number, v []byte) {
	if len(v) == 0 {
		return
	}
	e.b = protowire.AppendTag(e.b, n, protowire.BytesType)
	e.b = protowire.AppendBytes(e.b, v)
}

func (e *encoder) str(n protowire.Number, v string) {
	if v == "" {
		return
	}
	e.b = protowire.AppendTag(e.b, n, protowire.BytesType)
	e.b = protowire.AppendString(e.b, v)
}

// message appends a nested message; it is written even when empty so a
// repeated field keeps its element count.
func (e *encoder) message(n protowire.Number, f func(*encoder)) {
	e.b = protowire.AppendTag(e.b, n, protowire.BytesType)
	// Reserve one length byte, encode in place, then fix the length up; most
	// nested messages are under 128 bytes, so this rarely moves bytes.
	at := len(e.b)
	e.b = append(e.b, 0)
	f(e)
	size := len(e.b) - at - 1
	if size < 128 {
		e.b[at] = byte(size)
		return
	}
	lenBytes := protowire.AppendVarint(nil, uint64(size))
	e.b = append(e.b, lenBytes[1:]...)
	copy(e.b[at+len(lenBytes):], e.b[at+1:at+1+size])
	copy(e.b[at:], lenBytes)
}

// decoder walks the fields of one message.
type decoder struct {
	b   []byte
	err error
}

// next returns the next field's number and type, or false at the end or on
// error.
func (d *decoder) next() (protowire.Number, protowire.Type, bool) {
	if d.err != nil || len(d.b) == 0 {
		return 0, 0, false
	}
	n, t, l := protowire.ConsumeTag(d.b)
	if l < 0 {
		d.err = fmt.Errorf("field tag: %w", protowire.ParseError(l))
		return 0, 0, false
	}
	d.b = d.b[l:]
	return n, t, true
}

func (d *decoder) uint(t protowire.Type) uint64 {
	if t != protowire.VarintType {
		d.err = fmt.Errorf("index: wire type %d where varint expected", t)
		return 0
	}
	v, l := protowire.ConsumeVarint(d.b)
	if l < 0 {
		d.err = fmt.Errorf("varint: %w", protowire.ParseError(l))
		return 0
	}
	d.b = d.b[l:]
	return v
}

func (d *decoder) int(t protowire.Type) int64 { return protowire.DecodeZigZag(d.uint(t)) }

func (d *decoder) bool(t protowire.Type) bool { return d.uint(t) != 0 }

// bytes returns a slice aliasing the input; callers that keep it past the
// input's lifetime copy it.
func (d *decoder) bytes(t protowire.Type) []byte {
	if t != protowire.BytesType {
		d.err = fmt.Errorf("index: wire type %d where bytes expected", t)
		return nil
	}
	v, l := protowire.ConsumeBytes(d.b)
	if l < 0 {
		d.err = fmt.Errorf("bytes: %w", protowire.ParseError(l))
		return nil
	}
	d.b = d.b[l:]
	return v
}

// view returns the bytes field without copying: it aliases the decoded
// buffer, capped so an append to it cannot overwrite what follows. Empty
// is nil.
func (d *decoder) view(t protowire.Type) []byte {
	v := d.bytes(t)
	if len(v) == 0 {
		return nil
	}
	return v[:len(v):len(v)]
}

func (d *decoder) str(t protowire.Type) string { return string(d.bytes(t)) }

func (d *decoder) message(t protowire.Type, f func(*decoder)) {
	b := d.bytes(t)
	if d.err != nil {
		return
	}
	sub := decoder{b: b}
	f(&sub)
	if sub.err != nil {
		d.err = sub.err
	}
}

func (d *decoder) skip(n protowire.Number, t protowire.Type) {
	l := protowire.ConsumeFieldValue(n, t, d.b)
	if l < 0 {
		d.err = fmt.Errorf("field %d: %w", n, protowire.ParseError(l))
		return
	}
	d.b = d.b[l:]
}

// fixed32 decodes a fixed-size byte array field of length len(dst).
func (d *decoder) fixed(t protowire.Type, dst []byte) {
	b := d.bytes(t)
	if d.err != nil {
		return
	}
	if len(b) != len(dst) {
		d.err = fmt.Errorf("index: field of %d bytes where %d expected", len(b), len(dst))
		return
	}
	copy(dst, b)
}
