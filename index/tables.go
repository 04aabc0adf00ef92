package index

import (
	"encoding/binary"
	"fmt"
)

// Table identifies a record type. A record is addressed by its table, its
// placement key (pk, which picks the partition) and its sort key (sk, which
// orders records sharing a placement key).
type Table uint8

const (
	// TableBuckets: pk "", sk bucket name.
	TableBuckets Table = 1
	// TableObjects: pk bucket id + shard, sk object key.
	TableObjects Table = 2
	// TableExtents: pk write id, sk offset of the row's first chunk.
	TableExtents Table = 3
	// TableRefs: pk blob id, sk write id.
	TableRefs Table = 4
	// TableUploads: pk bucket id + shard (as objects), sk key, 0, upload id.
	TableUploads Table = 5
	// TableParts: pk upload id, sk part number.
	TableParts Table = 6
	// TableVersionParts: pk write id of a multipart version, sk part
	// number; the part list of versions with many parts.
	TableVersionParts Table = 7
	// TableKeys: pk "", sk access key id.
	TableKeys Table = 8
)

func (t Table) String() string {
	switch t {
	case TableBuckets:
		return "buckets"
	case TableObjects:
		return "objects"
	case TableExtents:
		return "extents"
	case TableRefs:
		return "refs"
	case TableUploads:
		return "uploads"
	case TableParts:
		return "parts"
	case TableVersionParts:
		return "version-parts"
	case TableKeys:
		return "keys"
	}
	return fmt.Sprintf("table(%d)", uint8(t))
}

// MergeEncoded joins two encodings of records of table t. Both inputs are
// decoded (and so validated) first; a record that does not decode is never
// written.
func MergeEncoded(t Table, a, b []byte) ([]byte, error) {
	switch t {
	case TableBuckets:
		x, err := DecodeBucket(a)
		if err != nil {
			return nil, err
		}
		y, err := DecodeBucket(b)
		if err != nil {
			return nil, err
		}
		return EncodeBucket(MergeBucket(x, y)), nil
	case TableObjects:
		x, err := DecodeObject(a)
		if err != nil {
			return nil, err
		}
		y, err := DecodeObject(b)
		if err != nil {
			return nil, err
		}
		return EncodeObject(MergeObject(x, y)), nil
	case TableRefs:
		x, err := DecodeRef(a)
		if err != nil {
			return nil, err
		}
		y, err := DecodeRef(b)
		if err != nil {
			return nil, err
		}
		return EncodeRef(MergeRef(x, y)), nil
	case TableUploads:
		x, err := DecodeUpload(a)
		if err != nil {
			return nil, err
		}
		y, err := DecodeUpload(b)
		if err != nil {
			return nil, err
		}
		return EncodeUpload(MergeUpload(x, y)), nil
	case TableParts:
		x, err := DecodePart(a)
		if err != nil {
			return nil, err
		}
		y, err := DecodePart(b)
		if err != nil {
			return nil, err
		}
		return EncodePart(MergePart(x, y)), nil
	case TableKeys:
		x, err := DecodeAccessKey(a)
		if err != nil {
			return nil, err
		}
		y, err := DecodeAccessKey(b)
		if err != nil {
			return nil, err
		}
		return EncodeAccessKey(MergeAccessKey(x, y)), nil
	case TableVersionParts:
		if _, err := DecodePartInfo(a); err != nil {
			return nil, err
		}
		if _, err := DecodePartInfo(b); err != nil {
			return nil, err
		}
		return mergeImmutable(a, b), nil
	case TableExtents:
		if _, err := DecodeExtents(a); err != nil {
			return nil, err
		}
		if _, err := DecodeExtents(b); err != nil {
			return nil, err
		}
		return mergeImmutable(a, b), nil
	}
	return nil, fmt.Errorf("merge: unknown %v", t)
}

// canonical re-encodes a record in canonical form (sorted, deduplicated),
// validating it on the way.
func canonical(t Table, v []byte) ([]byte, error) {
	if t == TableObjects {
		// MergeObject walks both records in step, and each version meets
		// its own copy, so an object merged with itself is itself: one
		// decode and one encode give the canonical bytes, without the
		// merge's two decodes and three encodes. This is every new key a
		// replica stores.
		o, err := DecodeObject(v)
		if err != nil {
			return nil, err
		}
		return EncodeObject(o), nil
	}
	return MergeEncoded(t, v, v)
}

// ObjectPK is the placement key of the objects of bucket id in shard.
func ObjectPK(id BucketID, shard uint32) []byte {
	pk := make([]byte, 0, 20)
	pk = append(pk, id[:]...)
	return binary.BigEndian.AppendUint32(pk, shard)
}

// ExtentSK is the sort key of the extent row starting at offset.
func ExtentSK(offset int64) []byte { return binary.BigEndian.AppendUint64(nil, uint64(offset)) }

var (
	errUnknownOp      = fmt.Errorf("index: unknown replica op")
	errBadTreeRequest = fmt.Errorf("index: tree request must name one partition")
)
