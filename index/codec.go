package index

import (
	"fmt"

	"google.golang.org/protobuf/encoding/protowire"
)

// Field numbers are part of the on-disk and on-wire format: never reuse
// one for a different meaning.

func encodeKVs(e *encoder, n protowire.Number, kvs []KV) {
	for _, kv := range kvs {
		e.message(n, func(e *encoder) {
			e.str(1, kv.Name)
			e.str(2, kv.Value)
		})
	}
}

func decodeKV(d *decoder) KV {
	var kv KV
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			kv.Name = d.str(t)
		case 2:
			kv.Value = d.str(t)
		default:
			d.skip(n, t)
		}
	}
	return kv
}

func encodeChecksum(e *encoder, n protowire.Number, c Checksum) {
	if c == (Checksum{}) {
		return
	}
	e.message(n, func(e *encoder) {
		e.str(1, c.Algorithm)
		e.str(2, c.Value)
		e.str(3, c.Type)
	})
}

func decodeChecksum(d *decoder) Checksum {
	var c Checksum
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			c.Algorithm = d.str(t)
		case 2:
			c.Value = d.str(t)
		case 3:
			c.Type = d.str(t)
		default:
			d.skip(n, t)
		}
	}
	return c
}

func encodeChunks(e *encoder, n protowire.Number, cs []ChunkRef) {
	// Chunks are the bulk of large records: packed as 36-byte entries in one
	// bytes field rather than one message each.
	if len(cs) == 0 {
		return
	}
	buf := make([]byte, 0, len(cs)*36)
	for _, c := range cs {
		buf = append(buf, c.ID[:]...)
		buf = append(buf, byte(c.Size>>24), byte(c.Size>>16), byte(c.Size>>8), byte(c.Size))
	}
	e.bytes(n, buf)
}

func decodeChunks(d *decoder, t protowire.Type) []ChunkRef {
	b := d.bytes(t)
	if d.err != nil {
		return nil
	}
	if len(b)%36 != 0 {
		d.err = fmt.Errorf("index: chunk list of %d bytes", len(b))
		return nil
	}
	cs := make([]ChunkRef, len(b)/36)
	for i := range cs {
		e := b[i*36:]
		copy(cs[i].ID[:], e[:32])
		cs[i].Size = uint32(e[32])<<24 | uint32(e[33])<<16 | uint32(e[34])<<8 | uint32(e[35])
	}
	return cs
}

func encodeEncryption(e *encoder, n protowire.Number, x *Encryption) {
	if x == nil {
		return
	}
	e.message(n, func(e *encoder) {
		e.uint(1, uint64(x.Kind))
		e.str(2, x.KeyID)
		e.bytes(3, x.Salt)
		e.bytes(4, x.KeyCheck)
		e.bytes(5, x.DataKey)
	})
}

// decodeEncryption decodes an Encryption; its byte fields alias the
// input, as inline bodies do.
func decodeEncryption(d *decoder) *Encryption {
	x := &Encryption{}
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			x.Kind = uint8(d.uint(t))
		case 2:
			x.KeyID = d.str(t)
		case 3:
			x.Salt = d.bytes(t)
		case 4:
			x.KeyCheck = d.bytes(t)
		case 5:
			x.DataKey = d.bytes(t)
		default:
			d.skip(n, t)
		}
	}
	return x
}

func encodePart(e *encoder, p PartInfo) {
	e.uint(1, uint64(p.Number))
	e.int(2, p.Size)
	e.int(3, p.Offset)
	e.str(4, p.ETag)
	encodeChecksum(e, 5, p.Checksum)
}

func decodePart(d *decoder) PartInfo {
	var p PartInfo
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			p.Number = uint32(d.uint(t))
		case 2:
			p.Size = d.int(t)
		case 3:
			p.Offset = d.int(t)
		case 4:
			p.ETag = d.str(t)
		case 5:
			d.message(t, func(d *decoder) { p.Checksum = decodeChecksum(d) })
		default:
			d.skip(n, t)
		}
	}
	return p
}

func encodeVersion(e *encoder, v *Version) {
	e.str(1, v.ID)
	e.uint(2, uint64(v.Timestamp))
	e.bytes(3, v.WriteID[:])
	e.bool(4, v.Tombstone)
	e.bool(5, v.DeleteMarker)
	e.int(6, v.Size)
	e.str(7, v.ETag)
	e.str(8, v.StorageClass)
	e.str(9, v.Owner)
	encodeKVs(e, 10, v.Headers)
	encodeChecksum(e, 11, v.Checksum)
	e.bytes(12, v.Inline)
	encodeChunks(e, 13, v.Chunks)
	e.uint(14, uint64(v.ExtentRows))
	for _, p := range v.Parts {
		e.message(15, func(e *encoder) { encodePart(e, p) })
	}
	e.uint(16, uint64(v.PartCount))
	encodeKVs(e, 17, v.Tags)
	e.uint(18, uint64(v.TagsTS))
	encodeEncryption(e, 19, v.Encryption)
}

func decodeVersion(d *decoder) Version { return decodeVersionOpt(d, false) }

// decodeVersionOpt decodes a version; with skipInline the inline body is
// left out (listings need only metadata). Byte fields alias the input.
func decodeVersionOpt(d *decoder, skipInline bool) Version {
	var v Version
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			v.ID = d.str(t)
		case 2:
			v.Timestamp = Timestamp(d.uint(t))
		case 3:
			d.fixed(t, v.WriteID[:])
		case 4:
			v.Tombstone = d.bool(t)
		case 5:
			v.DeleteMarker = d.bool(t)
		case 6:
			v.Size = d.int(t)
		case 7:
			v.ETag = d.str(t)
		case 8:
			v.StorageClass = d.str(t)
		case 9:
			v.Owner = d.str(t)
		case 10:
			d.message(t, func(d *decoder) { v.Headers = append(v.Headers, decodeKV(d)) })
		case 11:
			d.message(t, func(d *decoder) { v.Checksum = decodeChecksum(d) })
		case 12:
			if skipInline {
				d.skip(n, t)
			} else {
				// Aliases the input: decoded records own their buffers (a
				// fresh read or merge), and inline bodies are the bulk.
				v.Inline = d.bytes(t)
			}
		case 13:
			v.Chunks = decodeChunks(d, t)
		case 14:
			v.ExtentRows = uint32(d.uint(t))
		case 15:
			d.message(t, func(d *decoder) { v.Parts = append(v.Parts, decodePart(d)) })
		case 16:
			v.PartCount = uint32(d.uint(t))
		case 17:
			d.message(t, func(d *decoder) { v.Tags = append(v.Tags, decodeKV(d)) })
		case 18:
			v.TagsTS = Timestamp(d.uint(t))
		case 19:
			d.message(t, func(d *decoder) { v.Encryption = decodeEncryption(d) })
		default:
			d.skip(n, t)
		}
	}
	return v
}

// EncodeObject returns the canonical encoding of o.
func EncodeObject(o *Object) []byte {
	e := encoder{b: make([]byte, 0, objectSizeHint(o))}
	for i := range o.Versions {
		e.message(1, func(e *encoder) { encodeVersion(e, &o.Versions[i]) })
	}
	return e.b
}

// objectSizeHint is a generous guess at an encoded object's size: the
// variable parts plus a fixed allowance per version. Growing from 256
// bytes by doubling allocated about four times the final size for a
// record of 20 versions (350 KB for 86 KB), and 5% more for one version.
func objectSizeHint(o *Object) int {
	n := 16
	for i := range o.Versions {
		v := &o.Versions[i]
		n += 160 + len(v.ID) + len(v.ETag) + len(v.StorageClass) + len(v.Owner) +
			len(v.Inline) + 48*len(v.Chunks) + 48*len(v.Parts)
		if x := v.Encryption; x != nil {
			n += 16 + len(x.KeyID) + len(x.Salt) + len(x.KeyCheck) + len(x.DataKey)
		}
		for _, kv := range v.Headers {
			n += 6 + len(kv.Name) + len(kv.Value)
		}
		for _, kv := range v.Tags {
			n += 6 + len(kv.Name) + len(kv.Value)
		}
	}
	return n
}

// DecodeObject parses an encoded Object. The result aliases b: b must not
// be modified afterwards.
func DecodeObject(b []byte) (*Object, error) { return decodeObject(b, false) }

// DecodeObjectMeta parses an encoded Object without its inline bodies.
func DecodeObjectMeta(b []byte) (*Object, error) { return decodeObject(b, true) }

func decodeObject(b []byte, skipInline bool) (*Object, error) {
	o := &Object{}
	d := decoder{b: b}
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			d.message(t, func(d *decoder) { o.Versions = append(o.Versions, decodeVersionOpt(d, skipInline)) })
		default:
			d.skip(n, t)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode object: %w", d.err)
	}
	return o, nil
}

// EncodeBucket returns the canonical encoding of b.
func EncodeBucket(b *Bucket) []byte {
	e := encoder{b: make([]byte, 0, 96)}
	e.str(1, b.Name)
	e.bytes(2, b.ID[:])
	e.uint(3, uint64(b.Created))
	e.uint(4, uint64(b.Deleted))
	e.str(5, b.Owner)
	e.str(6, b.Region)
	e.uint(7, uint64(b.Shards))
	for _, c := range b.Configs {
		e.message(8, func(e *encoder) {
			e.str(1, c.Name)
			e.uint(2, uint64(c.Timestamp))
			e.bytes(3, c.Value)
		})
	}
	return e.b
}

// DecodeBucket parses an encoded Bucket.
func DecodeBucket(buf []byte) (*Bucket, error) {
	b := &Bucket{}
	d := decoder{b: buf}
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			b.Name = d.str(t)
		case 2:
			d.fixed(t, b.ID[:])
		case 3:
			b.Created = Timestamp(d.uint(t))
		case 4:
			b.Deleted = Timestamp(d.uint(t))
		case 5:
			b.Owner = d.str(t)
		case 6:
			b.Region = d.str(t)
		case 7:
			b.Shards = uint32(d.uint(t))
		case 8:
			var c BucketConfig
			d.message(t, func(d *decoder) {
				for n, t, ok := d.next(); ok; n, t, ok = d.next() {
					switch n {
					case 1:
						c.Name = d.str(t)
					case 2:
						c.Timestamp = Timestamp(d.uint(t))
					case 3:
						c.Value = append([]byte(nil), d.bytes(t)...)
					default:
						d.skip(n, t)
					}
				}
			})
			b.Configs = append(b.Configs, c)
		default:
			d.skip(n, t)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode bucket: %w", d.err)
	}
	return b, nil
}

// EncodeRef returns the canonical encoding of r.
func EncodeRef(r *Ref) []byte {
	e := encoder{b: make([]byte, 0, 96)}
	e.uint(1, uint64(r.Kind))
	e.bytes(2, r.Bucket[:])
	e.str(3, r.Key)
	e.str(4, r.Upload)
	e.bytes(5, r.WriteID[:])
	e.uint(6, uint64(r.Created))
	e.uint(7, uint64(r.Tombstone))
	e.uint(8, uint64(r.Shard))
	e.uint(9, uint64(r.Part))
	return e.b
}

// DecodeRef parses an encoded Ref.
func DecodeRef(b []byte) (*Ref, error) {
	r := &Ref{}
	d := decoder{b: b}
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			r.Kind = RefKind(d.uint(t))
		case 2:
			d.fixed(t, r.Bucket[:])
		case 3:
			r.Key = d.str(t)
		case 4:
			r.Upload = d.str(t)
		case 5:
			d.fixed(t, r.WriteID[:])
		case 6:
			r.Created = Timestamp(d.uint(t))
		case 7:
			r.Tombstone = Timestamp(d.uint(t))
		case 8:
			r.Shard = uint32(d.uint(t))
		case 9:
			r.Part = uint32(d.uint(t))
		default:
			d.skip(n, t)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode ref: %w", d.err)
	}
	return r, nil
}

// EncodeExtents returns the canonical encoding of x.
func EncodeExtents(x *Extents) []byte {
	e := encoder{}
	encodeChunks(&e, 1, x.Chunks)
	return e.b
}

// DecodeExtents parses an encoded Extents row.
func DecodeExtents(b []byte) (*Extents, error) {
	x := &Extents{}
	d := decoder{b: b}
	for n, t, ok := d.next(); ok; n, t, ok = d.next() {
		switch n {
		case 1:
			x.Chunks = decodeChunks(&d, t)
		default:
			d.skip(n, t)
		}
	}
	if d.err != nil {
		return nil, fmt.Errorf("decode extents: %w", d.err)
	}
	return x, nil
}

// versionInlineField is the field of a Version holding its inline body.
const versionInlineField = 12

// StripInline returns a copy of an encoded object record without its
// versions' inline bodies: what a listing needs of it (keys, sizes, ETags,
// dates, owners) and nothing of the bytes. The fields kept are copied as
// they are, so equal records strip to equal bytes. A record that does not
// parse is returned whole, for its reader to report.
func StripInline(b []byte) []byte {
	out := make([]byte, 0, min(len(b), 1024))
	for rest := b; len(rest) > 0; {
		num, typ, n := protowire.ConsumeTag(rest)
		if n < 0 {
			return append(out[:0], b...)
		}
		m := protowire.ConsumeFieldValue(num, typ, rest[n:])
		if m < 0 {
			return append(out[:0], b...)
		}
		if num != 1 || typ != protowire.BytesType {
			out = append(out, rest[:n+m]...)
			rest = rest[n+m:]
			continue
		}
		version, _ := protowire.ConsumeBytes(rest[n:])
		kept, ok := withoutField(version, versionInlineField)
		if !ok {
			return append(out[:0], b...)
		}
		out = protowire.AppendTag(out, 1, protowire.BytesType)
		out = protowire.AppendVarint(out, uint64(kept))
		for v := version; len(v) > 0; {
			vn, vt, k := protowire.ConsumeTag(v)
			l := protowire.ConsumeFieldValue(vn, vt, v[k:])
			if vn != versionInlineField {
				out = append(out, v[:k+l]...)
			}
			v = v[k+l:]
		}
		rest = rest[n+m:]
	}
	return out
}

// withoutField returns the length of msg without its fields numbered
// drop, and false if msg does not parse.
func withoutField(msg []byte, drop protowire.Number) (int, bool) {
	size := 0
	for len(msg) > 0 {
		num, typ, n := protowire.ConsumeTag(msg)
		if n < 0 {
			return 0, false
		}
		m := protowire.ConsumeFieldValue(num, typ, msg[n:])
		if m < 0 {
			return 0, false
		}
		if num != drop {
			size += n + m
		}
		msg = msg[n+m:]
	}
	return size, true
}
