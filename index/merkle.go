package index

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"io"

	"github.com/cespare/xxhash/v2"
	"github.com/cockroachdb/pebble/v2"
)

// Merkle trees of the records of each partition, for anti-entropy.
//
// A partition's tree is fixed in shape: 256 leaves, each the XOR of the
// 128-bit hashes of (record key, record value) of the records whose key
// hashes to that leaf; 16 inner nodes, each the XOR of 16 leaves; and the
// root, the XOR of all. XOR makes the tree incremental: a record going
// from state a to state b changes its leaf by h(a) XOR h(b), whatever else
// is in the leaf, and in any order. The leaves live in the store under
//
//	't' partition(2) kind(1) leaf(1)
//
// and are updated with pebble merge operations carrying those deltas in
// the same batch as the record itself, so the tree and the records are
// always consistent, survive restarts and crashes, and concurrent commits
// need no ordering (XOR is commutative). RebuildTree recomputes a
// partition's tree from its records, and tests check the two agree.

const (
	nsTree     = 't'
	treeLeaves = 256
	treeFanout = 16
	hashBytes  = 16
	// treeKindRecords is the record tree; other kinds may follow.
	treeKindRecords = 0
)

// Hash16 is a 128-bit tree hash.
type Hash16 [hashBytes]byte

func (h *Hash16) xor(o []byte) {
	for i := range h {
		h[i] ^= o[i]
	}
}

// IsZero reports whether h is the hash of nothing.
func (h Hash16) IsZero() bool { return h == Hash16{} }

const (
	seedA = 0x7265636f72642d61 // "record-a"
	seedB = 0x7265636f72642d62
)

// itemHash is the hash of one record state.
func itemHash(key, value []byte) Hash16 {
	var h Hash16
	for i, seed := range []uint64{seedA, seedB} {
		d := xxhash.NewWithSeed(seed)
		var n [4]byte
		binary.BigEndian.PutUint32(n[:], uint32(len(key)))
		d.Write(n[:])
		d.Write(key)
		d.Write(value)
		binary.BigEndian.PutUint64(h[i*8:], d.Sum64())
	}
	return h
}

// leafOf is the leaf a record key belongs to.
func leafOf(key []byte) byte { return byte(xxhash.Sum64(key) >> 56) }

func treeKey(part uint16, kind, leaf byte) []byte {
	return []byte{nsTree, byte(part >> 8), byte(part), kind, leaf}
}

func treePrefix(part uint16, kind byte) []byte {
	return []byte{nsTree, byte(part >> 8), byte(part), kind}
}

// xorMerger makes pebble merge operands on tree keys XOR into each other.
var xorMerger = &pebble.Merger{
	Name: "ringstore.xor.v1",
	Merge: func(_, value []byte) (pebble.ValueMerger, error) {
		return &xorValue{buf: bytes.Clone(value)}, nil
	},
}

type xorValue struct{ buf []byte }

func (x *xorValue) apply(v []byte) error {
	if len(v) != len(x.buf) {
		return fmt.Errorf("tree merge: operand of %d bytes on %d", len(v), len(x.buf))
	}
	for i := range v {
		x.buf[i] ^= v[i]
	}
	return nil
}

func (x *xorValue) MergeNewer(v []byte) error { return x.apply(v) }
func (x *xorValue) MergeOlder(v []byte) error { return x.apply(v) }
func (x *xorValue) Finish(bool) ([]byte, io.Closer, error) {
	return x.buf, nil, nil
}

// recordTreeDelta returns the tree key and delta for a record changing
// from old (nil: absent) to new, or nil when the key is not a record.
func recordTreeDelta(key, old, new []byte) ([]byte, []byte) {
	if len(key) < 3 || key[0] != nsRecord {
		return nil, nil
	}
	part := uint16(key[1])<<8 | uint16(key[2])
	var d Hash16
	if old != nil {
		d = itemHash(key, old)
	}
	if new != nil {
		n := itemHash(key, new)
		d.xor(n[:])
	}
	return treeKey(part, treeKindRecords, leafOf(key)), d[:]
}

// Tree is one partition's record tree.
type Tree struct {
	Leaves [treeLeaves]Hash16
}

// Node returns inner node i (0..15): the XOR of its 16 leaves.
func (t *Tree) Node(i int) Hash16 {
	var h Hash16
	for _, l := range t.Leaves[i*treeFanout : (i+1)*treeFanout] {
		h.xor(l[:])
	}
	return h
}

// Root is the XOR of every leaf.
func (t *Tree) Root() Hash16 {
	var h Hash16
	for _, l := range t.Leaves {
		h.xor(l[:])
	}
	return h
}

// Tree reads a partition's record tree.
func (s *Store) Tree(part uint16) (*Tree, error) {
	pre := treePrefix(part, treeKindRecords)
	kvs, err := s.Scan(pre, prefixEnd(pre), 0, false)
	if err != nil {
		return nil, err
	}
	t := &Tree{}
	for _, kv := range kvs {
		if len(kv.Key) != len(pre)+1 || len(kv.Value) != hashBytes {
			return nil, fmt.Errorf("tree of partition %d: bad leaf %x", part, kv.Key)
		}
		copy(t.Leaves[kv.Key[len(pre)]][:], kv.Value)
	}
	return t, nil
}

// ComputeTree computes a partition's record tree from its records.
func (s *Store) ComputeTree(part uint16) (*Tree, error) {
	t := &Tree{}
	err := s.scanPartition(part, func(k, v []byte) error {
		h := itemHash(k, v)
		t.Leaves[leafOf(k)].xor(h[:])
		return nil
	})
	return t, err
}

// RebuildTree replaces a partition's stored tree with one computed from
// its records (after a repair that bypassed Merge, or to heal a tree
// found wrong).
func (s *Store) RebuildTree(part uint16) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := s.writable(); err != nil {
		return err
	}
	// Writers of the partition are held off so no delta lands between the
	// scan and the overwrite.
	unlock := s.lockAll()
	t := &Tree{}
	err := s.scanPartitionLocked(part, nil, func(k, v []byte) error {
		h := itemHash(k, v)
		t.Leaves[leafOf(k)].xor(h[:])
		return nil
	})
	if err != nil {
		unlock()
		return err
	}
	b := s.db.NewBatch()
	pre := treePrefix(part, treeKindRecords)
	err = b.DeleteRange(pre, prefixEnd(pre), nil)
	for i, l := range t.Leaves {
		if err == nil && !l.IsZero() {
			err = b.Set(treeKey(part, treeKindRecords, byte(i)), l[:], nil)
		}
	}
	if err != nil {
		_ = b.Close()
		unlock()
		return err
	}
	return s.commit(b, true, unlock)
}

// lockAll takes every stripe lock.
func (s *Store) lockAll() func() {
	for i := range s.stripes {
		s.stripes[i].Lock()
	}
	return func() {
		for i := range s.stripes {
			s.stripes[i].Unlock()
		}
	}
}

func (s *Store) scanPartition(part uint16, fn func(k, v []byte) error) error {
	return s.scanPartitionKeys(part, nil, fn)
}

// scanPartitionKeys is scanPartition over the keys keep accepts (all if
// keep is nil). The others' values are never read: with values separated
// into blob files, that is most of a scan's cost.
func (s *Store) scanPartitionKeys(part uint16, keep func(k []byte) bool, fn func(k, v []byte) error) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	return s.scanPartitionLocked(part, keep, fn)
}

func (s *Store) scanPartitionLocked(part uint16, keep func(k []byte) bool, fn func(k, v []byte) error) error {
	lo := []byte{nsRecord, byte(part >> 8), byte(part)}
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: prefixEnd(lo)})
	if err != nil {
		return fmt.Errorf("scan partition %d: %w", part, err)
	}
	for ok := it.First(); ok; ok = it.Next() {
		if keep != nil && !keep(it.Key()) {
			continue
		}
		v, err := it.ValueAndErr()
		if err == nil {
			err = fn(it.Key(), v)
		}
		if err != nil {
			_ = it.Close()
			return fmt.Errorf("scan partition %d: %w", part, err)
		}
	}
	if err := it.Close(); err != nil {
		return fmt.Errorf("scan partition %d: %w", part, err)
	}
	return nil
}

// LeafEntry is one record of a leaf, by key and state hash.
type LeafEntry struct {
	Key  []byte
	Hash Hash16
}

// LeafEntries lists the records of a partition that fall in the given
// leaves, sorted by key.
func (s *Store) LeafEntries(part uint16, leaves []byte) ([]LeafEntry, error) {
	var want [treeLeaves]bool
	for _, l := range leaves {
		want[l] = true
	}
	var out []LeafEntry
	err := s.scanPartitionKeys(part, func(k []byte) bool { return want[leafOf(k)] }, func(k, v []byte) error {
		out = append(out, LeafEntry{Key: bytes.Clone(k), Hash: itemHash(k, v)})
		return nil
	})
	return out, err
}
