package index

import "github.com/ringstore/ringstore/ring"

// RingPlacement adapts a ring snapshot to Placement. The owner lists are
// converted once here so lookups on the request path don't allocate.
func RingPlacement(r *ring.Ring) Placement {
	p := ringPlacement{r: r, owners: make([][]string, r.Partitions())}
	for i := range p.owners {
		ids := r.Owners(ring.Partition(i))
		p.owners[i] = make([]string, len(ids))
		for j, id := range ids {
			p.owners[i][j] = string(id)
		}
	}
	return p
}

type ringPlacement struct {
	r      *ring.Ring
	owners [][]string
}

func (p ringPlacement) Partition(pk []byte) uint16 { return uint16(p.r.PartitionOf(pk)) }

func (p ringPlacement) BlobPartition(id BlobID) uint16 { return uint16(p.r.PartitionOfDigest(id)) }

func (p ringPlacement) Owners(part uint16) []string { return p.owners[part] }

func (p ringPlacement) Fallbacks(part uint16) []string {
	ids := p.r.Fallbacks(ring.Partition(part), nil)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

func (p ringPlacement) Partitions() int { return len(p.owners) }
