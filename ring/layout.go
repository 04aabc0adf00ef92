package ring

import (
	"errors"
	"fmt"
	"slices"
	"strings"
)

// NodeID names a ring member. It is stable for the life of the node's data:
// the assignment is keyed by it, so renaming a node is a remove plus an add.
type NodeID string

// Partition is the index of one of the layout's equal slices of the key
// space, in [0, Partitions). uint16 is enough because Partitions is at most
// MaxPartitions, and it is the width the index uses in its storage keys.
type Partition uint16

// Bounds and defaults of a layout.
const (
	// DefaultPartitions suits clusters up to a few dozen nodes: enough
	// partitions for every node to hold many (so shares can follow weights
	// closely) while keeping per-partition bookkeeping small.
	DefaultPartitions = 256
	// MinPartitions keeps shares meaningful even on tiny clusters.
	MinPartitions = 16
	// MaxPartitions is the most a Partition can index.
	MaxPartitions = 1 << 16
	// DefaultReplicas is the replication factor N of a multi-node cluster.
	DefaultReplicas = 3
)

// Member is one node of the ring as the layout sees it.
type Member struct {
	ID NodeID `json:"id"`
	// Zone is a failure domain (rack, room, site). Replicas of a partition
	// go to distinct zones first. The empty string is a zone like any other.
	Zone string `json:"zone"`
	// Weight is the node's capacity in any unit shared by all members; its
	// share of partition-replicas follows Weight, within the limits that
	// zones and "one replica per node per partition" impose.
	Weight uint32 `json:"weight"`
	// Addr is carried for the membership layer and never interpreted here.
	Addr string `json:"addr"`
}

// Layout is the agreed description of the cluster from which every node
// derives the same placement. Partitions is fixed when the cluster is
// created (changing it would move every key); every other change bumps
// Version.
type Layout struct {
	Members    []Member `json:"members"`
	Partitions int      `json:"partitions"`
	Replicas   int      `json:"replicas"`
	Version    uint64   `json:"version"`
}

// SingleNode is the layout of a fresh one-node cluster: one member of
// weight 1 in the empty zone, one replica, Version 1. partitions 0 means
// DefaultPartitions; the partition count is fixed from here on, so a
// cluster meant to grow large should pick it now.
func SingleNode(id NodeID, addr string, partitions int) Layout {
	if partitions == 0 {
		partitions = DefaultPartitions
	}
	return Layout{
		Members:    []Member{{ID: id, Weight: 1, Addr: addr}},
		Partitions: partitions,
		Replicas:   1,
		Version:    1,
	}
}

// Validate reports whether the layout can be placed: a power-of-two
// partition count in [MinPartitions, MaxPartitions], at least one replica,
// at least one member, non-empty unique member IDs and positive weights.
func (l Layout) Validate() error {
	q := l.Partitions
	if q < MinPartitions || q > MaxPartitions || q&(q-1) != 0 {
		return fmt.Errorf("ring: partition count %d is not a power of two in [%d, %d]", q, MinPartitions, MaxPartitions)
	}
	if l.Replicas < 1 {
		return fmt.Errorf("ring: replication factor %d is below 1", l.Replicas)
	}
	if len(l.Members) == 0 {
		return errors.New("ring: layout has no members")
	}
	seen := make(map[NodeID]struct{}, len(l.Members))
	for _, m := range l.Members {
		if m.ID == "" {
			return errors.New("ring: member with an empty ID")
		}
		if _, dup := seen[m.ID]; dup {
			return fmt.Errorf("ring: duplicate member %q", m.ID)
		}
		seen[m.ID] = struct{}{}
		if m.Weight == 0 {
			return fmt.Errorf("ring: member %q has weight 0", m.ID)
		}
	}
	return nil
}

// Clone returns a copy that shares no memory with l.
func (l Layout) Clone() Layout {
	l.Members = slices.Clone(l.Members)
	return l
}

// Member returns the member with the given ID.
func (l Layout) Member(id NodeID) (Member, bool) {
	for _, m := range l.Members {
		if m.ID == id {
			return m, true
		}
	}
	return Member{}, false
}

// WithMember returns a copy of l with m added, or replacing the member with
// the same ID, and Version bumped.
func (l Layout) WithMember(m Member) Layout {
	l = l.Clone()
	l.Version++
	for i := range l.Members {
		if l.Members[i].ID == m.ID {
			l.Members[i] = m
			return l
		}
	}
	l.Members = append(l.Members, m)
	return l
}

// WithoutMember returns a copy of l without the member id, and Version
// bumped (even when id was absent, so that every call is a new version).
func (l Layout) WithoutMember(id NodeID) Layout {
	l = l.Clone()
	l.Version++
	l.Members = slices.DeleteFunc(l.Members, func(m Member) bool { return m.ID == id })
	return l
}

// sortedMembers returns the members ordered by ID: every computation that
// must not depend on the order members were listed in starts from it.
func (l Layout) sortedMembers() []Member {
	ms := slices.Clone(l.Members)
	slices.SortFunc(ms, func(a, b Member) int { return strings.Compare(string(a.ID), string(b.ID)) })
	return ms
}

// log2 returns log2(q) for a power of two q.
func log2(q int) uint {
	var b uint
	for q > 1 {
		q >>= 1
		b++
	}
	return b
}
