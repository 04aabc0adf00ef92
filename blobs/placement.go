package blobs

import "github.com/ringstore/ringstore/ring"

// RingPlacement places chunks by the ring: the owners of the partition
// that the leading bits of the chunk id fall in.
func RingPlacement(r *ring.Ring) Placement { return ringPlacement{r} }

type ringPlacement struct{ r *ring.Ring }

func (p ringPlacement) ChunkOwners(id ID) []string {
	return nodeStrings(p.r.OwnersOfDigest(id))
}

func (p ringPlacement) ChunkWriteSets(id ID) [][]string {
	return [][]string{p.ChunkOwners(id)}
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

// ViewPlacement places chunks by a membership view: reads by the read
// version, writes by every active version, fallbacks by the current one.
func ViewPlacement(v *ring.View) Placement { return viewPlacement{v} }

type viewPlacement struct{ v *ring.View }

func (p viewPlacement) ChunkOwners(id ID) []string { return nodeStrings(p.v.Read.OwnersOfDigest(id)) }

func (p viewPlacement) ChunkWriteSets(id ID) [][]string {
	out := make([][]string, len(p.v.Active))
	for i, r := range p.v.Active {
		out[i] = nodeStrings(r.OwnersOfDigest(id))
	}
	return out
}

func (p viewPlacement) ChunkFallbacks(id ID) []string {
	return nodeStrings(p.v.Current.Fallbacks(p.v.Current.PartitionOfDigest(id), nil))
}
