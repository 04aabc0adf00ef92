package index

import (
	"bytes"
	"context"
	"fmt"
	"slices"
)

// holds reports whether this node is in any of a partition's write sets:
// it owns the partition in some active layout version.
func (ix *Index) holds(sets [][]string) bool {
	for _, set := range sets {
		if slices.Contains(set, ix.cfg.Self) {
			return true
		}
	}
	return false
}

// Chunk anti-entropy starts from the references: a chunk a node must hold
// is one that a live reference names in a partition the node owns (refs
// are placed by chunk id, on the chunk's owners). Anti-entropy brings the
// refs back to a node that lost its disk within seconds; OwnedChunks is how
// the chunks follow them, without a read of every object and without an
// operator.

// OwnedChunks calls fn once for every chunk this node should hold: named
// by a reference that is not let go and was created before createdBefore
// (a younger one may belong to a write whose chunk is still being stored),
// in a partition this node owns in any active layout version. Chunks come
// partition by partition, each partition's in id order (on a ring, id
// order throughout). fn returning false stops the walk. It reads only
// this node's store.
func (ix *Index) OwnedChunks(ctx context.Context, createdBefore Timestamp, fn func(id BlobID) bool) error {
	p := ix.cfg.Placement()
	const page = 1024
	for part := 0; part < p.Partitions(); part++ {
		if !ix.holds(p.WriteSets(uint16(part))) {
			continue
		}
		lo := RecordKey(uint16(part), TableRefs, nil, nil)[:4]
		hi := prefixEnd(lo)
		var last BlobID
		seen := false
		for {
			if err := ctx.Err(); err != nil {
				return err
			}
			kvs, err := ix.cfg.Store.Scan(lo, hi, page, false)
			if err != nil {
				return fmt.Errorf("owned chunks: %w", err)
			}
			for _, kv := range kvs {
				k, err := ParseRecordKey(kv.Key)
				if err != nil || len(k.PK) != len(BlobID{}) {
					continue
				}
				id := BlobID(k.PK)
				if seen && id == last {
					continue
				}
				r, err := DecodeRef(kv.Value)
				if err != nil || r.Tombstone != 0 || r.Created >= createdBefore {
					continue
				}
				last, seen = id, true
				if !fn(id) {
					return nil
				}
			}
			if len(kvs) < page {
				break
			}
			lo = append(bytes.Clone(kvs[len(kvs)-1].Key), 0)
		}
	}
	return nil
}
