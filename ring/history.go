package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
)

// Moving data when the layout changes (after Garage's layout history).
//
// A new layout does not replace the old one at once: while data moves,
// several layout versions are active. Writes go to the owners of every
// active version (a write quorum in each), so whichever owners end up with
// a partition see every write made during the move. Reads go to the owners
// of the newest version whose data is known to be complete (the read
// version), which is the old one until the move is done.
//
// Three trackers, gossiped, each a map node -> layout version merged by
// max, record how far every node got:
//
//	Ack:     the node writes to the owners of this version (and its writes
//	         started under older versions have finished);
//	Sync:    every node acknowledged this version, and then this node
//	         pushed everything it holds for partitions it owned in older
//	         versions to this version's owners;
//	SyncAck: reads of this node moved to this version (every node synced
//	         it) and its reads under older versions have finished.
//
// When every node of the active versions has acknowledged a version in
// SyncAck, the versions before it are retired: they are no longer written
// or read, and a node drops what it holds for partitions it owns in no
// active version. A node removed from the layout keeps serving and pushing
// its data until then; only after that may it be shut down.

// LayoutVersion is one layout with its assignment.
type LayoutVersion struct {
	Layout     Layout
	Assignment *Assignment
}

// Version is the layout version number.
func (v LayoutVersion) Version() uint64 { return v.Layout.Version }

// Ring returns the placement of this version.
func (v LayoutVersion) Ring() (*Ring, error) { return NewRing(v.Layout, v.Assignment) }

// Trackers record how far each node got in moving to newer layouts.
type Trackers struct {
	Ack, Sync, SyncAck map[NodeID]uint64
	// Retired: versions below it are no longer active.
	Retired uint64
}

// NewTrackers returns empty trackers.
func NewTrackers() *Trackers {
	return &Trackers{Ack: map[NodeID]uint64{}, Sync: map[NodeID]uint64{}, SyncAck: map[NodeID]uint64{}}
}

// Clone returns a deep copy.
func (t *Trackers) Clone() *Trackers {
	c := NewTrackers()
	c.Merge(t)
	return c
}

// Merge folds o into t (per-node maximum) and reports whether t changed.
func (t *Trackers) Merge(o *Trackers) bool {
	changed := false
	for _, p := range []struct{ dst, src map[NodeID]uint64 }{{t.Ack, o.Ack}, {t.Sync, o.Sync}, {t.SyncAck, o.SyncAck}} {
		for n, v := range p.src {
			if v > p.dst[n] {
				p.dst[n] = v
				changed = true
			}
		}
	}
	if o.Retired > t.Retired {
		t.Retired = o.Retired
		changed = true
	}
	return changed
}

// Set raises one node's entry of one tracker; it reports whether it rose.
func set(m map[NodeID]uint64, n NodeID, v uint64) bool {
	if m[n] >= v {
		return false
	}
	m[n] = v
	return true
}

// MarshalBinary encodes the trackers.
func (t *Trackers) MarshalBinary() ([]byte, error) {
	out := binary.AppendUvarint(nil, t.Retired)
	for _, m := range []map[NodeID]uint64{t.Ack, t.Sync, t.SyncAck} {
		ids := make([]NodeID, 0, len(m))
		for id := range m {
			ids = append(ids, id)
		}
		slices.Sort(ids)
		out = binary.AppendUvarint(out, uint64(len(ids)))
		for _, id := range ids {
			out = binary.AppendUvarint(out, uint64(len(id)))
			out = append(out, id...)
			out = binary.AppendUvarint(out, m[id])
		}
	}
	return out, nil
}

// UnmarshalBinary decodes trackers.
func (t *Trackers) UnmarshalBinary(b []byte) error {
	uv := func() (uint64, error) {
		v, n := binary.Uvarint(b)
		if n <= 0 {
			return 0, errors.New("trackers: truncated")
		}
		b = b[n:]
		return v, nil
	}
	out := NewTrackers()
	var err error
	if out.Retired, err = uv(); err != nil {
		return err
	}
	for _, m := range []map[NodeID]uint64{out.Ack, out.Sync, out.SyncAck} {
		n, err := uv()
		if err != nil || n > 1<<16 {
			return errors.New("trackers: bad count")
		}
		for i := uint64(0); i < n; i++ {
			l, err := uv()
			if err != nil || l > uint64(len(b)) {
				return errors.New("trackers: bad id")
			}
			id := NodeID(b[:l])
			b = b[l:]
			v, err := uv()
			if err != nil {
				return err
			}
			m[id] = v
		}
	}
	*t = *out
	return nil
}

// Active returns the versions in use, oldest first; the current layout is
// last.
func (c *ClusterLayout) Active(t *Trackers) []LayoutVersion {
	var out []LayoutVersion
	for _, h := range c.History {
		if h.Version() >= t.Retired {
			out = append(out, h)
		}
	}
	return append(out, LayoutVersion{Layout: c.Layout, Assignment: c.Assignment})
}

// Nodes returns every member of the given versions, sorted.
func Nodes(vs []LayoutVersion) []NodeID {
	var ids []NodeID
	for _, v := range vs {
		for _, m := range v.Layout.Members {
			ids = append(ids, m.ID)
		}
	}
	slices.Sort(ids)
	return slices.Compact(ids)
}

// minOver is the least entry of m among nodes (0 if one is missing).
func minOver(m map[NodeID]uint64, nodes []NodeID) uint64 {
	if len(nodes) == 0 {
		return 0
	}
	least := ^uint64(0)
	for _, n := range nodes {
		least = min(least, m[n])
	}
	return least
}

// ReadVersion is the newest active version every node has synced, or the
// oldest active one.
func (c *ClusterLayout) ReadVersion(t *Trackers) LayoutVersion {
	active := c.Active(t)
	synced := minOver(t.Sync, Nodes(active))
	for i := len(active) - 1; i > 0; i-- {
		if active[i].Version() <= synced {
			return active[i]
		}
	}
	return active[0]
}

// withHistory returns the history for a layout replacing c: c's history
// and c itself, without versions already retired.
func (c *ClusterLayout) withHistory(retired uint64) []LayoutVersion {
	var h []LayoutVersion
	for _, v := range c.History {
		if v.Version() >= retired {
			h = append(h, v)
		}
	}
	return append(h, LayoutVersion{Layout: c.Layout, Assignment: c.Assignment})
}

func marshalVersions(vs []LayoutVersion) ([]byte, error) {
	out := binary.AppendUvarint(nil, uint64(len(vs)))
	for _, v := range vs {
		lb, err := v.Layout.MarshalBinary()
		if err != nil {
			return nil, err
		}
		ab, err := v.Assignment.MarshalBinary()
		if err != nil {
			return nil, err
		}
		out = binary.AppendUvarint(out, uint64(len(lb)))
		out = append(out, lb...)
		out = binary.AppendUvarint(out, uint64(len(ab)))
		out = append(out, ab...)
	}
	return out, nil
}

func unmarshalVersions(b []byte) ([]LayoutVersion, error) {
	n, l := binary.Uvarint(b)
	if l <= 0 || n > 1024 {
		return nil, errors.New("layout history: bad count")
	}
	b = b[l:]
	next := func() ([]byte, error) {
		n, l := binary.Uvarint(b)
		if l <= 0 || uint64(len(b)-l) < n {
			return nil, errors.New("layout history: truncated")
		}
		v := b[l : l+int(n)]
		b = b[l+int(n):]
		return v, nil
	}
	var out []LayoutVersion
	for i := uint64(0); i < n; i++ {
		lb, err := next()
		if err != nil {
			return nil, err
		}
		ab, err := next()
		if err != nil {
			return nil, err
		}
		var v LayoutVersion
		if err := v.Layout.UnmarshalBinary(lb); err != nil {
			return nil, fmt.Errorf("layout history: %w", err)
		}
		v.Assignment = &Assignment{}
		if err := v.Assignment.UnmarshalBinary(ab); err != nil {
			return nil, fmt.Errorf("layout history: %w", err)
		}
		out = append(out, v)
	}
	return out, nil
}
