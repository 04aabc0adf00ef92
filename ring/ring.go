package ring

import (
	"encoding/binary"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Ring is an immutable snapshot of placement: a layout and its assignment.
// Lookups are table reads, allocation-free and safe for concurrent use; a
// layout change builds a new Ring and swaps it in.
type Ring struct {
	layout  Layout
	assign  *Assignment
	shift   uint // 64 - log2(Q): the hash's top bits are the partition
	members map[NodeID]Member
	ids     []NodeID // members by ID
}

// NewRing checks that a is an assignment of l (same partition count, owners
// per partition and version, every owner a member) and returns the
// snapshot of both.
func NewRing(l Layout, a *Assignment) (*Ring, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	l = l.Clone()
	k := min(l.Replicas, len(l.Members))
	if a.partitions != l.Partitions || a.replicas != k || a.version != l.Version {
		return nil, fmt.Errorf("ring: assignment (v%d, %d partitions × %d owners) does not fit layout (v%d, %d partitions × %d owners)",
			a.version, a.partitions, a.replicas, l.Version, l.Partitions, k)
	}
	r := &Ring{
		layout:  l,
		assign:  a,
		shift:   64 - log2(l.Partitions),
		members: make(map[NodeID]Member, len(l.Members)),
	}
	for _, m := range l.Members {
		r.members[m.ID] = m
		r.ids = append(r.ids, m.ID)
	}
	slices.Sort(r.ids)
	for _, id := range a.owners {
		if _, ok := r.members[id]; !ok {
			return nil, fmt.Errorf("ring: assignment owner %q is not a layout member", id)
		}
	}
	return r, nil
}

// Layout returns a copy of the ring's layout.
func (r *Ring) Layout() Layout { return r.layout.Clone() }

// Assignment returns the ring's assignment (immutable, so shared).
func (r *Ring) Assignment() *Assignment { return r.assign }

// Version is the layout version.
func (r *Ring) Version() uint64 { return r.layout.Version }

// Partitions is the partition count Q.
func (r *Ring) Partitions() int { return r.layout.Partitions }

// Member returns the layout's member id.
func (r *Ring) Member(id NodeID) (Member, bool) {
	m, ok := r.members[id]
	return m, ok
}

// PartitionOf returns the partition of a placement key: the top log2(Q)
// bits of its xxhash64.
func (r *Ring) PartitionOf(key []byte) Partition {
	return Partition(xxhash.Sum64(key) >> r.shift)
}

// PartitionOfDigest returns the partition of an ID that is already a
// SHA-256 digest (a blob's): its top log2(Q) bits, as the digest is
// uniform already and rehashing would only cost time.
func (r *Ring) PartitionOfDigest(id [32]byte) Partition {
	return Partition(binary.BigEndian.Uint64(id[:8]) >> r.shift)
}

// Owners returns the preference list of partition p; see
// Assignment.Owners.
func (r *Ring) Owners(p Partition) []NodeID { return r.assign.Owners(p) }

// OwnersOf returns the preference list of the partition of key. The slice
// is shared: callers must not modify it.
func (r *Ring) OwnersOf(key []byte) []NodeID { return r.assign.Owners(r.PartitionOf(key)) }

// OwnersOfDigest returns the preference list of the partition of a digest
// ID. The slice is shared: callers must not modify it.
func (r *Ring) OwnersOfDigest(id [32]byte) []NodeID {
	return r.assign.Owners(r.PartitionOfDigest(id))
}

// Fallbacks returns the nodes to try, in order, after p's owners when some
// of them are unreachable (sloppy quorum, hinted handoff): the owners of
// p+1, p+2, ... (wrapping), each node once, skipping p's owners and nodes
// for which exclude (may be nil) returns true; then any member not met on
// the walk (a node too light to own a partition), by ID. Walking the
// partition table rather than sorting by some distance makes the list
// deterministic, different per partition, and weighted like the data.
// Every node computes the same list, so the node holding a hint for p is
// found the same way by everyone.
func (r *Ring) Fallbacks(p Partition, exclude func(NodeID) bool) []NodeID {
	owners := r.Owners(p)
	q := r.layout.Partitions
	var out, excluded []NodeID
	left := len(r.ids) - len(owners) // members not yet accounted for
	consider := func(id NodeID) {
		if slices.Contains(owners, id) || slices.Contains(out, id) || slices.Contains(excluded, id) {
			return
		}
		left--
		if exclude != nil && exclude(id) {
			excluded = append(excluded, id)
			return
		}
		out = append(out, id)
	}
	for i := 1; i < q && left > 0; i++ {
		for _, id := range r.Owners(Partition((int(p) + i) % q)) {
			consider(id)
		}
	}
	for _, id := range r.ids {
		if left == 0 {
			break
		}
		consider(id)
	}
	return out
}
