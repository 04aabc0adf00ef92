package ring

import (
	"fmt"
	"slices"
)

// Assignment is the placement table: for every partition its ordered
// owners. Owners(p)[0] is the partition's first owner. An Assignment is
// immutable once built (by Assign or UnmarshalBinary) and safe for
// concurrent use.
type Assignment struct {
	version    uint64   // the Version of the layout it was computed for
	partitions int      // Q
	replicas   int      // owners per partition: min(N, members)
	owners     []NodeID // row p, length replicas, holds the owners of p
}

// Version is the Version of the layout the assignment was computed for.
func (a *Assignment) Version() uint64 { return a.version }

// Partitions is the partition count Q.
func (a *Assignment) Partitions() int { return a.partitions }

// Replicas is the number of owners of every partition: the layout's
// replication factor, or the member count if that is smaller.
func (a *Assignment) Replicas() int { return a.replicas }

// Owners returns the preference list of partition p, first owner first.
// The slice is shared: callers must not modify it. It panics if p is not
// below Partitions.
func (a *Assignment) Owners(p Partition) []NodeID {
	i := int(p) * a.replicas
	return a.owners[i : i+a.replicas : i+a.replicas]
}

// PartitionsOf returns, ascending, the partitions that id owns.
func (a *Assignment) PartitionsOf(id NodeID) []Partition {
	var ps []Partition
	for p := range a.partitions {
		if slices.Contains(a.Owners(Partition(p)), id) {
			ps = append(ps, Partition(p))
		}
	}
	return ps
}

// Nodes returns, sorted, every node that owns at least one partition.
func (a *Assignment) Nodes() []NodeID {
	ns := slices.Clone(a.owners)
	slices.Sort(ns)
	return slices.Compact(ns)
}

// Move is one partition-replica changing hands. From is empty for a
// replica that did not exist before (the owner count grew), To is empty
// for one that no longer exists (it shrank).
type Move struct {
	Partition Partition
	From, To  NodeID
}

// String formats the move for logs.
func (m Move) String() string {
	return fmt.Sprintf("%d: %q -> %q", m.Partition, m.From, m.To)
}

// Diff returns the moves that turn a into next, by partition. A node that
// stays an owner of a partition (at whatever position) is no move. Within a
// partition a leaving and an arriving owner are paired when they hold the
// same position, which is how Assign places a replacement, then in
// position order. a may be nil (a fresh cluster: every replica arrives).
// Diff panics if the two differ in partition count: they describe
// different key spaces.
func (a *Assignment) Diff(next *Assignment) []Move {
	if a == nil {
		a = &Assignment{partitions: next.partitions}
	}
	if a.partitions != next.partitions {
		panic(fmt.Sprintf("ring: Diff between %d and %d partitions", a.partitions, next.partitions))
	}
	var moves []Move
	var gone, came []int
	for p := range a.partitions {
		var old, cur []NodeID
		if a.replicas > 0 {
			old = a.Owners(Partition(p))
		}
		cur = next.Owners(Partition(p))
		gone, came = gone[:0], came[:0]
		for i, id := range old {
			if !slices.Contains(cur, id) {
				gone = append(gone, i)
			}
		}
		for i, id := range cur {
			if !slices.Contains(old, id) {
				came = append(came, i)
			}
		}
		// Same position first.
		for gi := 0; gi < len(gone); gi++ {
			if ci := slices.Index(came, gone[gi]); ci >= 0 {
				moves = append(moves, Move{Partition(p), old[gone[gi]], cur[came[ci]]})
				came = slices.Delete(came, ci, ci+1)
				gone = slices.Delete(gone, gi, gi+1)
				gi--
			}
		}
		for len(gone) > 0 || len(came) > 0 {
			var mv Move
			mv.Partition = Partition(p)
			if len(gone) > 0 {
				mv.From, gone = old[gone[0]], gone[1:]
			}
			if len(came) > 0 {
				mv.To, came = cur[came[0]], came[1:]
			}
			moves = append(moves, mv)
		}
	}
	return moves
}
