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

func (p ringPlacement) WriteSets(part uint16) [][]string { return [][]string{p.owners[part]} }

func (p ringPlacement) Fallbacks(part uint16) []string {
	ids := p.r.Fallbacks(ring.Partition(part), nil)
	out := make([]string, len(ids))
	for i, id := range ids {
		out[i] = string(id)
	}
	return out
}

func (p ringPlacement) Partitions() int { return len(p.owners) }

// ViewPlacement adapts a membership view: reads go to the read version's
// owners, writes to the owners of every active version, fallbacks follow
// the current version.
func ViewPlacement(v *ring.View) Placement {
	read := RingPlacement(v.Read).(ringPlacement)
	cur := RingPlacement(v.Current).(ringPlacement)
	vp := viewPlacement{read: read, cur: cur, sets: make([][][]string, len(read.owners))}
	var actives []ringPlacement
	for _, r := range v.Active {
		actives = append(actives, RingPlacement(r).(ringPlacement))
	}
	for part := range vp.sets {
		for _, a := range actives {
			vp.sets[part] = append(vp.sets[part], a.owners[part])
		}
	}
	return vp
}

type viewPlacement struct {
	read, cur ringPlacement
	sets      [][][]string
}

func (p viewPlacement) Partition(pk []byte) uint16       { return p.cur.Partition(pk) }
func (p viewPlacement) BlobPartition(id BlobID) uint16   { return p.cur.BlobPartition(id) }
func (p viewPlacement) Owners(part uint16) []string      { return p.read.owners[part] }
func (p viewPlacement) WriteSets(part uint16) [][]string { return p.sets[part] }
func (p viewPlacement) Fallbacks(part uint16) []string   { return p.cur.Fallbacks(part) }
func (p viewPlacement) Partitions() int                  { return len(p.read.owners) }
