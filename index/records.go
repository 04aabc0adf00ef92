package index

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"slices"
	"strings"
)

// WriteID names one write of an object version (or of a multipart part)
// uniquely across the cluster. Blob references name the write that holds
// them, so a reference stays attributable after the S3 version id "null" is
// reused by a later write.
type WriteID [16]byte

// NewWriteID returns a random WriteID.
func NewWriteID() WriteID {
	var w WriteID
	_, _ = rand.Read(w[:]) // crypto/rand.Read never fails on supported platforms
	return w
}

func (w WriteID) String() string { return hex.EncodeToString(w[:]) }

// IsZero reports whether w is unset.
func (w WriteID) IsZero() bool { return w == WriteID{} }

// BlobID is the SHA-256 digest of a chunk's bytes.
type BlobID [32]byte

func (id BlobID) String() string { return hex.EncodeToString(id[:]) }

// ParseBlobID parses a hex blob id.
func ParseBlobID(s string) (BlobID, error) {
	var id BlobID
	if len(s) != 64 {
		return id, fmt.Errorf("blob id %q: want 64 hex digits", s)
	}
	if _, err := hex.Decode(id[:], []byte(s)); err != nil {
		return id, fmt.Errorf("blob id %q: %w", s, err)
	}
	return id, nil
}

// BucketID names one incarnation of a bucket. Objects are placed by
// BucketID, not by name, so a deleted and re-created bucket starts empty
// even if a stale replica still holds objects of the old one.
type BucketID [16]byte

// NewBucketID returns a random BucketID.
func NewBucketID() BucketID {
	var b BucketID
	_, _ = rand.Read(b[:])
	return b
}

func (b BucketID) String() string { return hex.EncodeToString(b[:]) }

// KV is a name/value pair; lists of them are kept sorted by name.
type KV struct{ Name, Value string }

// ChunkRef is one chunk of an object's bytes.
type ChunkRef struct {
	ID   BlobID
	Size uint32
}

// Checksum is an object's or part's additional checksum as S3 reports it.
type Checksum struct {
	Algorithm string // CRC32, CRC32C, CRC64NVME, SHA1 or SHA256
	Value     string // base64, as in the x-amz-checksum-* header
	Type      string // FULL_OBJECT or COMPOSITE
}

// PartInfo describes one part of a multipart object.
type PartInfo struct {
	Number   uint32
	Size     int64
	Offset   int64 // of the part's first byte within the object
	ETag     string
	Checksum Checksum
}

// Version is one S3 object version (or delete marker), or the tombstone of
// one. Within an Object record a version id names a slot that holds a
// last-writer-wins register ordered by (Timestamp, WriteID).
type Version struct {
	ID        string    // S3 version id; "null" for the null version
	Timestamp Timestamp // hybrid logical clock at write; also Last-Modified
	WriteID   WriteID

	// Tombstone marks the slot as deleted for good (a DELETE with a
	// versionId, or a DELETE in an unversioned bucket). Every other field
	// but ID, Timestamp and WriteID is empty in a tombstone.
	Tombstone    bool
	DeleteMarker bool

	Size         int64
	ETag         string // without quotes
	StorageClass string
	Owner        string // access key id of the writer
	// Headers are the stored response headers, lower-case names, sorted:
	// content-type, cache-control, x-amz-meta-*, and the like.
	Headers  []KV
	Checksum Checksum

	// The bytes are in exactly one place: Inline, Chunks, or (for large
	// objects) ExtentRows rows of the extents table placed by WriteID.
	Inline     []byte
	Chunks     []ChunkRef
	ExtentRows uint32

	// Parts of a multipart object, inline when few; PartCount is always set
	// for multipart objects.
	Parts     []PartInfo
	PartCount uint32

	Tags   []KV
	TagsTS Timestamp // last-writer-wins clock of Tags, separate from the body

	// Encryption is set when the bytes (Inline and the chunks) are sealed
	// under a data key of the version's own; nil for plaintext.
	Encryption *Encryption
}

// The kinds of server-side encryption.
const (
	EncryptionS3 uint8 = 1 // SSE-S3: the data key wrapped with a master key
	EncryptionC  uint8 = 2 // SSE-C: the data key wrapped with the customer's key
)

// Encryption is what a record keeps of its data key: never the key
// itself, only the key wrapped under a key the store does not keep
// (SSE-C) or keeps outside the index (SSE-S3).
type Encryption struct {
	Kind uint8
	// KeyID names the master key that wrapped DataKey (SSE-S3).
	KeyID string
	// Salt and KeyCheck (SSE-C): a salted HMAC of the customer's key, to
	// tell a wrong key from a damaged record.
	Salt, KeyCheck []byte
	// DataKey is the wrapped data key: nonce, sealed key, tag.
	DataKey []byte
}

// KindOf returns x's kind, 0 for none (a nil x: plaintext).
func (x *Encryption) KindOf() uint8 {
	if x == nil {
		return 0
	}
	return x.Kind
}

// Header returns the stored header value for a lower-case name.
func (v *Version) Header(name string) string {
	i, ok := slices.BinarySearchFunc(v.Headers, name, func(kv KV, n string) int { return strings.Compare(kv.Name, n) })
	if !ok {
		return ""
	}
	return v.Headers[i].Value
}

// newer reports whether a outranks b in a version slot.
func newer(a, b *Version) bool {
	if a.Timestamp != b.Timestamp {
		return a.Timestamp > b.Timestamp
	}
	return bytes.Compare(a.WriteID[:], b.WriteID[:]) > 0
}

// Object is the record of one S3 key: every version slot it has had, sorted
// by version id.
type Object struct {
	Versions []Version
}

// Latest returns the current version (possibly a delete marker), or nil
// when the key has no live version.
func (o *Object) Latest() *Version {
	var best *Version
	for i := range o.Versions {
		v := &o.Versions[i]
		if v.Tombstone {
			continue
		}
		if best == nil || newer(v, best) {
			best = v
		}
	}
	return best
}

// Find returns the version with the given id, or nil; tombstones are not
// returned.
func (o *Object) Find(id string) *Version {
	i, ok := slices.BinarySearchFunc(o.Versions, id, func(v Version, id string) int { return strings.Compare(v.ID, id) })
	if !ok || o.Versions[i].Tombstone {
		return nil
	}
	return &o.Versions[i]
}

// Live returns the non-tombstone versions, newest first, as S3 lists them.
func (o *Object) Live() []*Version {
	out := make([]*Version, 0, len(o.Versions))
	for i := range o.Versions {
		if !o.Versions[i].Tombstone {
			out = append(out, &o.Versions[i])
		}
	}
	slices.SortFunc(out, func(a, b *Version) int {
		if newer(a, b) {
			return -1
		}
		if newer(b, a) {
			return 1
		}
		return 0
	})
	return out
}

// Bucket is the record of one bucket name. A name can be deleted and
// created again; each creation is an incarnation with its own ID, and the
// latest incarnation wins.
type Bucket struct {
	Name    string
	ID      BucketID
	Created Timestamp // the incarnation
	Deleted Timestamp // non-zero once this incarnation was deleted
	Owner   string
	Region  string
	Shards  uint32 // object records of the bucket are spread over this many placement keys
	// Configs are per-name last-writer-wins registers: "versioning", "cors",
	// "tagging", ... An empty Value with a Timestamp is a deleted config.
	Configs []BucketConfig
}

// BucketConfig is one bucket configuration register.
type BucketConfig struct {
	Name      string
	Timestamp Timestamp
	Value     []byte
}

// Config returns the value of the named config, or nil.
func (b *Bucket) Config(name string) []byte {
	for _, c := range b.Configs {
		if c.Name == name {
			return c.Value
		}
	}
	return nil
}

// Live reports whether the bucket exists.
func (b *Bucket) Live() bool { return b != nil && b.Deleted == 0 && b.Created != 0 }

// RefKind says what kind of record holds a blob reference.
type RefKind uint8

const (
	// RefVersion: an object version (Bucket, Key, WriteID) holds the blob.
	RefVersion RefKind = 1
	// RefPart: a multipart upload part (Bucket, Key = upload id, WriteID)
	// holds the blob.
	RefPart RefKind = 2
)

// Ref is a blob reference: the record that a write holds a blob. It is
// placed with the blob (by blob id) so the blob's owners can tell locally
// whether anything may still point at it.
type Ref struct {
	Kind      RefKind
	Bucket    BucketID
	Shard     uint32 // the holder's shard within Bucket, so its record can be found
	Key       string
	Upload    string // multipart upload id, for RefPart
	Part      uint32 // part number, for RefPart
	WriteID   WriteID
	Created   Timestamp
	Tombstone Timestamp // non-zero once the holder let the blob go
}

// Extents is one row of a large version's chunk list.
type Extents struct {
	Chunks []ChunkRef
}
