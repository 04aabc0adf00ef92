package blobs

import (
	"crypto/sha256"
	"fmt"

	"github.com/cespare/xxhash/v2"
)

// Chunk is a chunk's bytes together with the two sums computed from them
// in one pass: its ID (SHA-256) and its fast checksum. Only Seal and Check
// make one, so a chunk cannot be stored under an ID that was not computed
// from its bytes.
//
// The fast checksum is what lets the store afford to check, right after
// writing, that the bytes it wrote are still the bytes the ID was computed
// from: recomputing the SHA-256 there would double the CPU of every
// upload, and a buffer changed under a write (reused too early by its
// owner) fails the fast checksum as surely as the ID.
type Chunk struct {
	id   ID
	sum  uint64 // fastSum of data, from the same pass as id
	data []byte
}

// sealBlock is the piece of a chunk both sums take in turn, small enough
// that the second sum reads it from the processor's cache.
const sealBlock = 32 << 10

// Seal computes data's ID and fast checksum.
func Seal(data []byte) Chunk {
	h := sha256.New()
	var x xxhash.Digest
	x.Reset()
	for off := 0; off < len(data); off += sealBlock {
		b := data[off:min(off+sealBlock, len(data))]
		h.Write(b)
		_, _ = x.Write(b)
	}
	c := Chunk{sum: x.Sum64(), data: data}
	h.Sum(c.id[:0])
	return c
}

// Check seals data and makes sure it is the chunk named id: bytes that
// arrive under a name (from another node, from a repair) are taken only
// if they hash to it.
func Check(id ID, data []byte) (Chunk, error) {
	c := Seal(data)
	if c.id != id {
		return Chunk{}, fmt.Errorf("chunk %s: %d bytes hashing to %s: %w", id, len(data), c.id, ErrCorrupt)
	}
	return c, nil
}

// ID returns the chunk's ID.
func (c Chunk) ID() ID { return c.id }

// Data returns the chunk's bytes.
func (c Chunk) Data() []byte { return c.data }

// Len returns the chunk's length.
func (c Chunk) Len() int { return len(c.data) }
