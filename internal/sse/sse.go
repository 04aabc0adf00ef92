// Package sse is the cryptography of server-side encryption: data keys,
// their wrapping under a customer's key (SSE-C) or a master key (SSE-S3),
// and the sealing of chunks and inline bodies with a data key.
//
// Every object version (or multipart upload) has its own random 256-bit
// data key. Bytes are sealed with AES-256-GCM under it, each piece (a
// chunk, or an inline body) with its own random 96-bit nonce, stored in
// front of the ciphertext:
//
//	nonce (12) | ciphertext (as long as the plaintext) | tag (16)
//
// Nonces are random rather than counted because the pieces of one data
// key are sealed by different requests: the parts of a multipart upload,
// re-uploads of one part number, part copies, possibly on different
// nodes. A counter would repeat a nonce under a re-upload; 2^32 random
// nonces per key keep the chance of a repeat below 2^-32, and an object
// of 5 TiB in 64 KiB chunks has fewer than 2^27 pieces.
//
// The data key is stored only wrapped, sealed with AES-256-GCM under a
// key-encryption key: for SSE-C one derived from the customer's key and a
// per-record salt, for SSE-S3 a master key named by an id. The customer's
// key itself is never stored; a salted HMAC of it tells a wrong key from a
// damaged record.
package sse

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
)

// KeySize is the size of every key here: data keys, customer keys, master
// keys.
const KeySize = 32

const (
	// NonceSize is the length of the nonce in front of a sealed piece.
	NonceSize = 12
	// TagSize is the length of the authentication tag after it.
	TagSize = 16
	// Overhead is how much longer a sealed piece is than its plaintext.
	Overhead = NonceSize + TagSize
	// saltSize is the length of an SSE-C record's salt.
	saltSize = 16
)

// Domain separation: the same customer key derives the check value and
// the wrapping key, and the same data key seals bytes and derives ETags.
const (
	labelCheck = "ringstore sse-c key check v1"
	labelWrapC = "ringstore sse-c wrapping key v1"
	labelETag  = "ringstore sse-c etag v1"
	aadWrapC   = "ringstore sse-c data key v1"
	aadWrapS3  = "ringstore sse-s3 data key v1 " // followed by the master key id
	aadPiece   = "ringstore piece v1"
)

var (
	// ErrWrongKey is a customer key other than the one the record was
	// written with.
	ErrWrongKey = errors.New("sse: the customer key does not match")
	// ErrCorrupt is a sealed piece or wrapped key that fails its
	// authentication: damaged, or not sealed under this key.
	ErrCorrupt = errors.New("sse: authentication failed")
)

// DataKey is one object's (or one upload's) key.
type DataKey [KeySize]byte

// NewDataKey returns a random data key.
func NewDataKey() DataKey {
	var k DataKey
	_, _ = rand.Read(k[:]) // crypto/rand.Read never fails on supported platforms
	return k
}

// Sealer seals and opens pieces under one data key. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
	key  DataKey
}

// NewSealer returns the sealer of data key k.
func NewSealer(k DataKey) *Sealer {
	return &Sealer{aead: newGCM(k[:]), key: k}
}

func newGCM(key []byte) cipher.AEAD {
	block, err := aes.NewCipher(key)
	if err != nil {
		panic(err) // the key has KeySize bytes: cannot fail
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		panic(err)
	}
	return aead
}

// Key returns the data key.
func (s *Sealer) Key() DataKey { return s.key }

// SealInPlace seals the n plaintext bytes at buf[NonceSize:NonceSize+n]
// where they lie and returns the sealed piece, buf[:n+Overhead]. buf must
// have room for it; nothing is copied.
func (s *Sealer) SealInPlace(buf []byte, n int) []byte {
	buf = buf[:n+Overhead]
	_, _ = rand.Read(buf[:NonceSize])
	s.aead.Seal(buf[NonceSize:NonceSize], buf[:NonceSize], buf[NonceSize:NonceSize+n], []byte(aadPiece))
	return buf
}

// Seal returns plaintext sealed as a new piece.
func (s *Sealer) Seal(plaintext []byte) []byte {
	buf := make([]byte, len(plaintext)+Overhead)
	copy(buf[NonceSize:], plaintext)
	return s.SealInPlace(buf, len(plaintext))
}

// OpenInPlace opens a sealed piece where it lies and returns its
// plaintext, a subslice of piece: its bytes are overwritten.
func (s *Sealer) OpenInPlace(piece []byte) ([]byte, error) {
	if len(piece) < Overhead {
		return nil, ErrCorrupt
	}
	ct := piece[NonceSize:]
	out, err := s.aead.Open(ct[:0], piece[:NonceSize], ct, []byte(aadPiece))
	if err != nil {
		return nil, ErrCorrupt
	}
	return out, nil
}

// Open returns the plaintext of a sealed piece, leaving the piece as it
// is.
func (s *Sealer) Open(piece []byte) ([]byte, error) {
	return s.OpenInPlace(append([]byte(nil), piece...))
}

// ETag derives an SSE-C object's (or part's) ETag from the MD5 of its
// plaintext. S3 does not return the MD5 of the plaintext for SSE-C: it
// would let anyone who can list a bucket confirm a guess of an object's
// contents. Derived from the data key, which is random per object, the
// ETag is stable for the object and unrelated to any other's.
func (s *Sealer) ETag(md5 []byte) string {
	m := hmac.New(sha256.New, s.key[:])
	m.Write([]byte(labelETag))
	m.Write(md5)
	return hex.EncodeToString(m.Sum(nil)[:16])
}

// CustomerWrap is what a record keeps of an SSE-C data key.
type CustomerWrap struct {
	Salt     []byte // random, per record
	KeyCheck []byte // HMAC-SHA256 of the customer key and Salt
	Wrapped  []byte // the data key, sealed under a key derived from both
}

func derive(key []byte, label string, salt []byte) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(label))
	m.Write(salt)
	return m.Sum(nil)
}

// WrapCustomer wraps k under a customer key.
func WrapCustomer(customerKey []byte, k DataKey) (CustomerWrap, error) {
	if len(customerKey) != KeySize {
		return CustomerWrap{}, fmt.Errorf("sse: customer key of %d bytes, want %d", len(customerKey), KeySize)
	}
	w := CustomerWrap{Salt: make([]byte, saltSize)}
	_, _ = rand.Read(w.Salt)
	w.KeyCheck = derive(customerKey, labelCheck, w.Salt)
	w.Wrapped = wrap(derive(customerKey, labelWrapC, w.Salt), k, aadWrapC)
	return w, nil
}

// CheckCustomer reports whether customerKey is the key w was made with.
func CheckCustomer(customerKey []byte, w CustomerWrap) bool {
	return len(customerKey) == KeySize && hmac.Equal(derive(customerKey, labelCheck, w.Salt), w.KeyCheck)
}

// UnwrapCustomer returns the data key of w: ErrWrongKey for another
// customer key, ErrCorrupt for a damaged record.
func UnwrapCustomer(customerKey []byte, w CustomerWrap) (DataKey, error) {
	if !CheckCustomer(customerKey, w) {
		return DataKey{}, ErrWrongKey
	}
	return unwrap(derive(customerKey, labelWrapC, w.Salt), w.Wrapped, aadWrapC)
}

func wrap(kek []byte, k DataKey, aad string) []byte {
	out := make([]byte, KeySize+Overhead)
	copy(out[NonceSize:], k[:])
	_, _ = rand.Read(out[:NonceSize])
	newGCM(kek).Seal(out[NonceSize:NonceSize], out[:NonceSize], out[NonceSize:NonceSize+KeySize], []byte(aad))
	return out
}

func unwrap(kek, wrapped []byte, aad string) (DataKey, error) {
	var k DataKey
	if len(wrapped) != KeySize+Overhead {
		return k, ErrCorrupt
	}
	plain, err := newGCM(kek).Open(nil, wrapped[:NonceSize], wrapped[NonceSize:], []byte(aad))
	if err != nil {
		return k, ErrCorrupt
	}
	copy(k[:], plain)
	return k, nil
}
