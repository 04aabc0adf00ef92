package blobs

import "github.com/ringstore/ringstore/ring"

// RingPlacement places chunks by the ring: the owners of the partition
// that the leading bits of the chunk id fall in.
func RingPlacement(r *ring.Ring) Placement { return ringPlacement{r} }

type ringPlacement struct{ r *ring.Ring }

func (p ringPlacement) ChunkOwners(id ID) []string {
	return nodeStrings(p.r.OwnersOfDigest(id))
}

func (p ringPlacement) ChunkFallbacks(id ID) []string {
	return nodeStrings(p.r.Fallbacks(p.r.PartitionOfDigest(id), nil))
}

func nodeStrings(ids []ring.NodeID) []string {
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}
