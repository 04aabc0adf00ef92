package index

import (
	"bytes"
	"context"
	"encoding/binary"
	"fmt"
)

// Multipart uploads: an Upload record per upload, placed with the
// object's key (so uploads list like objects), and one Part record per part
// number, placed by upload id.

// Upload is the record of one multipart upload.
type Upload struct {
	Key               string
	UploadID          string
	Initiated         Timestamp
	Owner             string
	Headers           []KV
	StorageClass      string
	Tags              []KV
	ChecksumAlgorithm string
	ChecksumType      string // COMPOSITE or FULL_OBJECT when an algorithm is set
	// Done is set when the upload was completed or aborted: a tombstone.
	Done Timestamp
	// Encryption is the upload's data key, which seals every part and
	// becomes the completed version's.
	Encryption *Encryption
}

// Part is the record of one uploaded part; re-uploading a part number
// replaces it (last writer wins by Timestamp, WriteID).
type Part struct {
	Number     uint32
	Timestamp  Timestamp
	WriteID    WriteID
	Size       int64
	ETag       string
	Checksum   string // base64 value of the upload's algorithm
	Chunks     []ChunkRef
	ExtentRows uint32
}

// UploadSK is the sort key of an upload: the object key, a zero byte, and
// the upload id, so uploads sort by key and then by upload id (which
// starts with its creation time).
func UploadSK(key, uploadID string) []byte {
	sk := make([]byte, 0, len(key)+1+len(uploadID))
	sk = append(sk, key...)
	sk = append(sk, 0)
	return append(sk, uploadID...)
}

// SplitUploadSK splits an upload sort key.
func SplitUploadSK(sk []byte) (key, uploadID string, ok bool) {
	i := bytes.LastIndexByte(sk, 0)
	if i < 0 {
		return "", "", false
	}
	return string(sk[:i]), string(sk[i+1:]), true
}

// PartSK is the sort key of part number n.
func PartSK(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

func encodeUpload(u *Upload) []byte {
	e := encoder{b: make([]byte, 0, 128)}
	e.str(1, u.Key)
	e.str(2, u.UploadID)
	e.uint(3, uint64(u.Initiated))
	e.str(4, u.Owner)
	encodeKVs(&e, 5, u.Headers)
	e.str(6, u.StorageClass)
	encodeKVs(&e, 7, u.Tags)
	e.str(8, u.ChecksumAlgorithm)
	e.str(9, u.ChecksumType)
	e.uint(10, uint64(u.Done))
	encodeEncryption(&e, 11, u.Encryption)
	return e.b
}

// EncodeUpload returns the canonical encoding of u.
func EncodeUpload(u *Upload) []byte { return encodeUpload(u) }

// DecodeUpload parses an encoded Upload.
func DecodeUpload(b []byte) (*Upload, error) {
	u := &Upload{}
	d := decoder{b: b}
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			u.Key = d.str(t)
		case 2:
			u.UploadID = d.str(t)
		case 3:
			u.Initiated = Timestamp(d.uint(t))
		case 4:
			u.Owner = d.str(t)
		case 5:
			d.message(t, func(d *decoder) { u.Headers = append(u.Headers, decodeKV(d)) })
		case 6:
			u.StorageClass = d.str(t)
		case 7:
			d.message(t, func(d *decoder) { u.Tags = append(u.Tags, decodeKV(d)) })
		case 8:
			u.ChecksumAlgorithm = d.str(t)
		case 9:
			u.ChecksumType = d.str(t)
		case 10:
			u.Done = Timestamp(d.uint(t))
		case 11:
			d.message(t, func(d *decoder) { u.Encryption = decodeEncryption(d) })
		default:
			d.skip(n, t)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode upload: %w", d.err)
	}
	return u, nil
}

// EncodePart returns the canonical encoding of p.
func EncodePart(p *Part) []byte {
	e := encoder{b: make([]byte, 0, 128)}
	e.uint(1, uint64(p.Number))
	e.uint(2, uint64(p.Timestamp))
	e.bytes(3, p.WriteID[:])
	e.int(4, p.Size)
	e.str(5, p.ETag)
	e.str(6, p.Checksum)
	encodeChunks(&e, 7, p.Chunks)
	e.uint(8, uint64(p.ExtentRows))
	return e.b
}

// DecodePart parses an encoded Part.
func DecodePart(b []byte) (*Part, error) {
	p := &Part{}
	d := decoder{b: b}
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			p.Number = uint32(d.uint(t))
		case 2:
			p.Timestamp = Timestamp(d.uint(t))
		case 3:
			d.fixed(t, p.WriteID[:])
		case 4:
			p.Size = d.int(t)
		case 5:
			p.ETag = d.str(t)
		case 6:
			p.Checksum = d.str(t)
		case 7:
			p.Chunks = decodeChunks(&d, t)
		case 8:
			p.ExtentRows = uint32(d.uint(t))
		default:
			d.skip(n, t)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode part: %w", d.err)
	}
	return p, nil
}

// EncodePartInfo returns the encoding of a version's part row.
func EncodePartInfo(p *PartInfo) []byte {
	e := encoder{}
	encodePart(&e, *p)
	return e.b
}

// DecodePartInfo parses a version's part row.
func DecodePartInfo(b []byte) (*PartInfo, error) {
	d := decoder{b: b}
	p := decodePart(&d)
	if d.err != nil {
		return nil, fmt.Errorf("decode part info: %w", d.err)
	}
	return &p, nil
}

// MergeUpload joins two states of an upload: once done it stays done.
func MergeUpload(a, b *Upload) *Upload {
	ac, bc := *a, *b
	ac.Done, bc.Done = 0, 0
	out := ac
	if bytes.Compare(encodeUpload(&ac), encodeUpload(&bc)) < 0 {
		out = bc
	}
	out.Done = max(a.Done, b.Done)
	return &out
}

// MergePart joins two writes of one part number: the newer wins.
func MergePart(a, b *Part) *Part {
	if a.Timestamp != b.Timestamp {
		if a.Timestamp > b.Timestamp {
			return a
		}
		return b
	}
	if c := bytes.Compare(a.WriteID[:], b.WriteID[:]); c != 0 {
		if c > 0 {
			return a
		}
		return b
	}
	if bytes.Compare(EncodePart(a), EncodePart(b)) >= 0 {
		return a
	}
	return b
}

// UploadPK is the placement key of key's uploads in bucket b.
func UploadPK(b *Bucket, key string) []byte { return objectPK(b, key) }

// GetUpload returns the upload record, or nil.
func (ix *Index) GetUpload(ctx context.Context, b *Bucket, key, uploadID string) (*Upload, error) {
	v, err := ix.Get(ctx, TableUploads, UploadPK(b, key), UploadSK(key, uploadID))
	if err != nil || v == nil {
		return nil, err
	}
	return DecodeUpload(v)
}

// PutUpload merges an upload record.
func (ix *Index) PutUpload(ctx context.Context, b *Bucket, u *Upload) error {
	return ix.Put(ctx, Record{Table: TableUploads, PK: UploadPK(b, u.Key), SK: UploadSK(u.Key, u.UploadID), Value: EncodeUpload(u)})
}

// PartRecord is the index record of part p of uploadID.
func PartRecord(uploadID string, p *Part) Record {
	return Record{Table: TableParts, PK: []byte(uploadID), SK: PartSK(p.Number), Value: EncodePart(p)}
}

// GetPart returns part n of uploadID, or nil.
func (ix *Index) GetPart(ctx context.Context, uploadID string, n uint32) (*Part, error) {
	v, err := ix.Get(ctx, TableParts, []byte(uploadID), PartSK(n))
	if err != nil || v == nil {
		return nil, err
	}
	return DecodePart(v)
}

// ListParts returns up to limit parts of uploadID numbered above after,
// and whether more follow.
func (ix *Index) ListParts(ctx context.Context, uploadID string, after uint32, limit int) ([]*Part, bool, error) {
	entries, more, err := ix.Range(ctx, TableParts, []byte(uploadID), PartSK(after+1), nil, limit, false)
	if err != nil {
		return nil, false, err
	}
	out := make([]*Part, 0, len(entries))
	for _, e := range entries {
		p, err := DecodePart(e.Value)
		if err != nil {
			return nil, false, err
		}
		out = append(out, p)
	}
	return out, more, nil
}

// ListUploads returns a lister over the upload records of bucket b whose
// sort keys are at or after start and whose object keys have prefix.
func (ix *Index) ListUploads(ctx context.Context, b *Bucket, start []byte, prefix string, pageHint int) *ObjectLister {
	return ix.newLister(ctx, b, TableUploads, string(start), prefix, pageHint)
}

// PartHolder is the blob reference a write of part n of upload u records
// for each chunk it stores.
func PartHolder(b *Bucket, u *Upload, n uint32, w WriteID) Ref {
	return Ref{Kind: RefPart, Bucket: b.ID, Shard: Shard(u.Key, b.Shards), Key: u.Key, Upload: u.UploadID, Part: n, WriteID: w}
}

// GetUploadByPK returns an upload record under an explicit placement key.
func (ix *Index) GetUploadByPK(ctx context.Context, pk []byte, key, uploadID string) (*Upload, error) {
	v, err := ix.Get(ctx, TableUploads, pk, UploadSK(key, uploadID))
	if err != nil || v == nil {
		return nil, err
	}
	return DecodeUpload(v)
}

// GetVersionPart returns part n of a multipart version whose part list is
// kept in rows, or nil.
func (ix *Index) GetVersionPart(ctx context.Context, w WriteID, n uint32) (*PartInfo, error) {
	v, err := ix.Get(ctx, TableVersionParts, w[:], PartSK(n))
	if err != nil || v == nil {
		return nil, err
	}
	return DecodePartInfo(v)
}

// ListVersionParts returns up to limit part rows of a multipart version
// numbered above after, and whether more follow.
func (ix *Index) ListVersionParts(ctx context.Context, w WriteID, after uint32, limit int) ([]*PartInfo, bool, error) {
	entries, more, err := ix.Range(ctx, TableVersionParts, w[:], PartSK(after+1), nil, limit, false)
	if err != nil {
		return nil, false, err
	}
	out := make([]*PartInfo, 0, len(entries))
	for _, e := range entries {
		p, err := DecodePartInfo(e.Value)
		if err != nil {
			return nil, false, err
		}
		out = append(out, p)
	}
	return out, more, nil
}
