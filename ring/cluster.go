package ring

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/cespare/xxhash/v2"
)

// ClusterLayout is what nodes agree on and gossip: the layout, the
// assignment computed from it (which depends on the assignment before it,
// so it travels rather than being recomputed), and the ids removed from
// the cluster for good, so a removed node that is still running does not
// add itself back.
type ClusterLayout struct {
	Layout     Layout
	Assignment *Assignment
	Removed    []NodeID
	// History holds earlier versions that may still be active while data
	// moves (see history.go), oldest first.
	History []LayoutVersion
}

// NewClusterLayout starts a cluster whose first member is m.
func NewClusterLayout(m Member, partitions, replicas int) (*ClusterLayout, error) {
	return NewClusterLayoutOf([]Member{m}, partitions, replicas)
}

// NewClusterLayoutOf starts a cluster with every one of members at once:
// its first version places every partition on all of them, with no data
// to move between versions.
func NewClusterLayoutOf(members []Member, partitions, replicas int) (*ClusterLayout, error) {
	members = slices.Clone(members)
	slices.SortFunc(members, func(a, b Member) int { return strings.Compare(string(a.ID), string(b.ID)) })
	l := Layout{Members: members, Partitions: partitions, Replicas: replicas, Version: 1}
	if err := l.Validate(); err != nil {
		return nil, err
	}
	return &ClusterLayout{Layout: l, Assignment: Assign(nil, l)}, nil
}

// With returns the layout with m added (or updated); retired is the
// trackers' retirement point, below which history is dropped.
func (c *ClusterLayout) With(m Member, retired uint64) *ClusterLayout {
	l := c.Layout.WithMember(m)
	return &ClusterLayout{
		Layout: l, Assignment: Assign(c.Assignment, l),
		Removed: slices.DeleteFunc(slices.Clone(c.Removed), func(id NodeID) bool { return id == m.ID }),
		History: c.withHistory(retired),
	}
}

// Without returns the layout with id removed for good.
func (c *ClusterLayout) Without(id NodeID, retired uint64) (*ClusterLayout, error) {
	if _, ok := c.Layout.Member(id); !ok {
		return nil, fmt.Errorf("node %s is not in the layout", id)
	}
	if len(c.Layout.Members) == 1 {
		return nil, errors.New("cannot remove the last node of a cluster")
	}
	l := c.Layout.WithoutMember(id)
	removed := append(slices.Clone(c.Removed), id)
	slices.Sort(removed)
	return &ClusterLayout{Layout: l, Assignment: Assign(c.Assignment, l), Removed: slices.Compact(removed), History: c.withHistory(retired)}, nil
}

// IsRemoved reports whether id was removed from the cluster.
func (c *ClusterLayout) IsRemoved(id NodeID) bool { return slices.Contains(c.Removed, id) }

// Ring returns the placement snapshot of the layout.
func (c *ClusterLayout) Ring() (*Ring, error) { return NewRing(c.Layout, c.Assignment) }

// MarshalBinary encodes the cluster layout.
func (c *ClusterLayout) MarshalBinary() ([]byte, error) {
	lb, err := c.Layout.MarshalBinary()
	if err != nil {
		return nil, err
	}
	ab, err := c.Assignment.MarshalBinary()
	if err != nil {
		return nil, err
	}
	out := binary.AppendUvarint(nil, uint64(len(lb)))
	out = append(out, lb...)
	out = binary.AppendUvarint(out, uint64(len(ab)))
	out = append(out, ab...)
	out = binary.AppendUvarint(out, uint64(len(c.Removed)))
	for _, id := range c.Removed {
		out = binary.AppendUvarint(out, uint64(len(id)))
		out = append(out, id...)
	}
	hb, err := marshalVersions(c.History)
	if err != nil {
		return nil, err
	}
	return append(out, hb...), nil
}

// UnmarshalBinary decodes a cluster layout and checks it.
func (c *ClusterLayout) UnmarshalBinary(b []byte) error {
	next := func() ([]byte, error) {
		n, l := binary.Uvarint(b)
		if l <= 0 || uint64(len(b)-l) < n {
			return nil, errors.New("cluster layout: truncated")
		}
		v := b[l : l+int(n)]
		b = b[l+int(n):]
		return v, nil
	}
	lb, err := next()
	if err != nil {
		return err
	}
	ab, err := next()
	if err != nil {
		return err
	}
	var out ClusterLayout
	if err := out.Layout.UnmarshalBinary(lb); err != nil {
		return fmt.Errorf("cluster layout: %w", err)
	}
	out.Assignment = &Assignment{}
	if err := out.Assignment.UnmarshalBinary(ab); err != nil {
		return fmt.Errorf("cluster layout: %w", err)
	}
	n, l := binary.Uvarint(b)
	if l <= 0 || n > 1<<16 {
		return errors.New("cluster layout: bad removed list")
	}
	b = b[l:]
	for i := uint64(0); i < n; i++ {
		id, err := next()
		if err != nil {
			return err
		}
		out.Removed = append(out.Removed, NodeID(id))
	}
	if len(b) > 0 {
		if out.History, err = unmarshalVersions(b); err != nil {
			return fmt.Errorf("cluster layout: %w", err)
		}
	}
	if _, err := out.Ring(); err != nil {
		return fmt.Errorf("cluster layout: %w", err)
	}
	*c = out
	return nil
}

// Hash identifies a cluster layout's content.
func (c *ClusterLayout) Hash() uint64 {
	b, _ := c.MarshalBinary()
	return xxhash.Sum64(b)
}

// Newer reports whether c should replace cur: a higher version wins, and
// between two different layouts of one version (two nodes changed it at
// once) the higher hash does, the same way on every node.
func (c *ClusterLayout) Newer(cur *ClusterLayout) bool {
	if cur == nil {
		return true
	}
	if c.Layout.Version != cur.Layout.Version {
		return c.Layout.Version > cur.Layout.Version
	}
	cb, _ := c.MarshalBinary()
	ub, _ := cur.MarshalBinary()
	if bytes.Equal(cb, ub) {
		return false
	}
	return xxhash.Sum64(cb) > xxhash.Sum64(ub)
}
