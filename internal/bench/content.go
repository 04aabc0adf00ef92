package bench

import (
	"bytes"
	"encoding/binary"
	"io"
	"math/bits"

	"github.com/cespare/xxhash/v2"
)

// Object content is a wyrand stream seeded from (run seed, key, size). It
// is position-exact whatever the read sizes, costs well under a nanosecond
// per byte, and never repeats within an object, so a swapped, shifted or
// stale chunk (the server's chunk size is 1 MiB) cannot compare equal the
// way a repeated fixed block would.

// contentSeed mixes the run seed, the object size and a hash of the key.
func contentSeed(seed uint64, key string, size int64) uint64 {
	return mix64(seed ^ mix64(uint64(size)+0x9e3779b97f4a7c15) ^ xxhash.Sum64String(key))
}

// mix64 is splitmix64's finaliser: a cheap bijection with good avalanche.
func mix64(z uint64) uint64 {
	z = (z ^ z>>30) * 0xbf58476d1ce4e5b9
	z = (z ^ z>>27) * 0x94d049bb133111eb
	return z ^ z>>31
}

// Content is an io.Reader over one object's deterministic bytes. The zero
// value is empty; use NewContent or Reset.
type Content struct {
	state     uint64
	word      [8]byte // current word, for reads that end mid-word
	wordLeft  int     // unread bytes at the end of word
	remaining int64
}

// NewContent returns a reader of the size bytes of key's object.
func NewContent(seed uint64, key string, size int64) *Content {
	c := &Content{}
	c.Reset(seed, key, size)
	return c
}

// Reset rewinds c to the start of key's object.
func (c *Content) Reset(seed uint64, key string, size int64) {
	*c = Content{state: contentSeed(seed, key, size), remaining: size}
}

func (c *Content) next() uint64 {
	c.state += 0xa0761d6478bd642f
	hi, lo := bits.Mul64(c.state, c.state^0xe7037ed1a0b428db)
	return hi ^ lo
}

// fill writes the next len(p) bytes of the stream into p, ignoring the
// object's size.
func (c *Content) fill(p []byte) {
	n := 0
	if c.wordLeft > 0 {
		n = copy(p, c.word[8-c.wordLeft:])
		c.wordLeft -= n
	}
	for ; n+8 <= len(p); n += 8 {
		binary.LittleEndian.PutUint64(p[n:], c.next())
	}
	if n < len(p) {
		binary.LittleEndian.PutUint64(c.word[:], c.next())
		k := copy(p[n:], c.word[:])
		c.wordLeft = 8 - k
	}
}

// Read implements io.Reader.
func (c *Content) Read(p []byte) (int, error) {
	if c.remaining <= 0 {
		return 0, io.EOF
	}
	if int64(len(p)) > c.remaining {
		p = p[:c.remaining]
	}
	c.fill(p)
	c.remaining -= int64(len(p))
	return len(p), nil
}

// Close is a no-op, so a *Content can be a request body as it is.
func (c *Content) Close() error { return nil }

// Len returns the number of unread bytes.
func (c *Content) Len() int64 { return c.remaining }

// Verifier compares bytes read back against an object's expected content.
type Verifier struct {
	want    Content
	scratch []byte
	offset  int64
	bad     bool
	badAt   int64
}

// NewVerifier returns a Verifier with a scratch buffer of bufSize bytes.
func NewVerifier(bufSize int) *Verifier {
	return &Verifier{scratch: make([]byte, bufSize)}
}

// Reset starts checking key's object of size bytes.
func (v *Verifier) Reset(seed uint64, key string, size int64) {
	v.want.Reset(seed, key, size)
	v.offset, v.bad, v.badAt = 0, false, 0
}

// Write consumes the next bytes of the object; it never fails, so it can
// sit behind io.Copy, and records the first mismatch for Result.
func (v *Verifier) Write(p []byte) (int, error) {
	n := len(p)
	if v.bad {
		return n, nil
	}
	for len(p) > 0 {
		if v.want.remaining <= 0 { // longer than the object
			v.bad, v.badAt = true, v.offset
			return n, nil
		}
		k := min(int64(len(p)), int64(len(v.scratch)), v.want.remaining)
		exp := v.scratch[:k]
		_, _ = v.want.Read(exp)
		if !bytes.Equal(exp, p[:k]) {
			for i := range exp {
				if exp[i] != p[i] {
					v.bad, v.badAt = true, v.offset+int64(i)
					return n, nil
				}
			}
		}
		v.offset += k
		p = p[k:]
	}
	return n, nil
}

// Result reports whether everything written so far matched and the object
// is complete; on a mismatch it gives the first differing offset.
func (v *Verifier) Result() (ok bool, badAt int64) {
	if v.bad {
		return false, v.badAt
	}
	if v.want.remaining > 0 {
		return false, v.offset // short read
	}
	return true, 0
}
