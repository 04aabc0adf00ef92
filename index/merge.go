package index

import (
	"bytes"
	"slices"
	"strings"
)

// The merge functions below are the CRDT joins of each record type. Each is
// commutative, associative and idempotent (merge_test.go checks the laws on
// random records), and none mutates its arguments. Ties that "cannot happen"
// (two different states under the same identity) are still broken by
// comparing encodings, so that even corrupted or buggy inputs converge the
// same way on every replica.

// MergeObject joins two Object records: the union of their version slots,
// each slot keeping its newer register value.
func MergeObject(a, b *Object) *Object {
	out := &Object{Versions: make([]Version, 0, max(len(a.Versions), len(b.Versions)))}
	i, j := 0, 0
	for i < len(a.Versions) || j < len(b.Versions) {
		switch {
		case j == len(b.Versions) || (i < len(a.Versions) && a.Versions[i].ID < b.Versions[j].ID):
			out.Versions = append(out.Versions, a.Versions[i])
			i++
		case i == len(a.Versions) || b.Versions[j].ID < a.Versions[i].ID:
			out.Versions = append(out.Versions, b.Versions[j])
			j++
		default:
			out.Versions = append(out.Versions, mergeVersion(&a.Versions[i], &b.Versions[j]))
			i++
			j++
		}
	}
	return out
}

func mergeVersion(a, b *Version) Version {
	if a.WriteID != b.WriteID || a.Timestamp != b.Timestamp {
		if newer(a, b) {
			return *a
		}
		return *b
	}
	// The same write seen twice: only the tag register can differ.
	base, other := a, b
	if c := compareEncoded(a, b, true); c < 0 {
		base, other = b, a
	}
	out := *base
	if other.TagsTS > base.TagsTS || (other.TagsTS == base.TagsTS && compareKVs(other.Tags, base.Tags) > 0) {
		out.Tags, out.TagsTS = other.Tags, other.TagsTS
	}
	return out
}

// compareEncoded orders two versions by their encoding, optionally
// ignoring the tag register.
func compareEncoded(a, b *Version, ignoreTags bool) int {
	ac, bc := *a, *b
	if ignoreTags {
		ac.Tags, ac.TagsTS, bc.Tags, bc.TagsTS = nil, 0, nil, 0
	}
	var ea, eb encoder
	encodeVersion(&ea, &ac)
	encodeVersion(&eb, &bc)
	return bytes.Compare(ea.b, eb.b)
}

func compareKVs(a, b []KV) int {
	return slices.CompareFunc(a, b, func(x, y KV) int {
		if c := strings.Compare(x.Name, y.Name); c != 0 {
			return c
		}
		return strings.Compare(x.Value, y.Value)
	})
}

// MergeBucket joins two Bucket records: the later incarnation wins whole;
// within one incarnation a delete is final and each config register keeps
// its newer value.
func MergeBucket(a, b *Bucket) *Bucket {
	if a.Created != b.Created || a.ID != b.ID {
		if a.Created > b.Created || (a.Created == b.Created && bytes.Compare(a.ID[:], b.ID[:]) > 0) {
			return cloneBucket(a)
		}
		return cloneBucket(b)
	}
	base, other := a, b
	if bytes.Compare(bucketIdentity(a), bucketIdentity(b)) < 0 {
		base, other = b, a
	}
	out := cloneBucket(base)
	out.Deleted = max(a.Deleted, b.Deleted)
	out.Configs = mergeConfigs(base.Configs, other.Configs)
	return out
}

func bucketIdentity(b *Bucket) []byte {
	c := *b
	c.Deleted, c.Configs = 0, nil
	return EncodeBucket(&c)
}

func cloneBucket(b *Bucket) *Bucket {
	c := *b
	c.Configs = slices.Clone(b.Configs)
	return &c
}

func mergeConfigs(a, b []BucketConfig) []BucketConfig {
	out := slices.Clone(a)
	for _, c := range b {
		i := slices.IndexFunc(out, func(x BucketConfig) bool { return x.Name == c.Name })
		if i < 0 {
			out = append(out, c)
			continue
		}
		o := out[i]
		if c.Timestamp > o.Timestamp || (c.Timestamp == o.Timestamp && bytes.Compare(c.Value, o.Value) > 0) {
			out[i] = c
		}
	}
	slices.SortFunc(out, func(x, y BucketConfig) int { return strings.Compare(x.Name, y.Name) })
	return out
}

// MergeRef joins two states of one blob reference: once tombstoned it stays
// tombstoned, and it is as young as its latest recording (a write in
// progress records its references again so that they stay young).
func MergeRef(a, b *Ref) *Ref {
	ac, bc := *a, *b
	ac.Tombstone, bc.Tombstone = 0, 0
	ac.Created, bc.Created = 0, 0
	out := ac
	if bytes.Compare(EncodeRef(&ac), EncodeRef(&bc)) < 0 {
		out = bc
	}
	out.Created = max(a.Created, b.Created)
	out.Tombstone = max(a.Tombstone, b.Tombstone)
	return &out
}

// mergeImmutable joins records that are written once and never change
// (extent rows): equal in practice, and the larger encoding otherwise.
func mergeImmutable(a, b []byte) []byte {
	if bytes.Compare(a, b) >= 0 {
		return a
	}
	return b
}
