package ring

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"

	"github.com/cespare/xxhash/v2"
)

// Binary formats. Both start with a 3-byte magic and a format number so a
// newer format can be told apart; integers are uvarints and strings are a
// uvarint length then bytes.
//
//	layout:     "RSL" 1 version partitions replicas count
//	            count × (id zone weight addr), by ascending id
//	assignment: "RSA" 1 version body
//	body:       partitions replicas count count×id (ascending)
//	            partitions×replicas × (index into the ids)
//
// Encodings are canonical: equal values encode to equal bytes, whatever
// order the layout listed its members in.
const (
	layoutMagic     = "RSL\x01"
	assignmentMagic = "RSA\x01"
)

var errTruncated = errors.New("ring: truncated encoding")

// MarshalBinary encodes the layout canonically (members by ID). It fails
// on a layout that does not Validate, so nothing undecodable is persisted.
func (l Layout) MarshalBinary() ([]byte, error) {
	if err := l.Validate(); err != nil {
		return nil, err
	}
	b := []byte(layoutMagic)
	b = binary.AppendUvarint(b, l.Version)
	b = binary.AppendUvarint(b, uint64(l.Partitions))
	b = binary.AppendUvarint(b, uint64(l.Replicas))
	b = binary.AppendUvarint(b, uint64(len(l.Members)))
	for _, m := range l.sortedMembers() {
		b = appendString(b, string(m.ID))
		b = appendString(b, m.Zone)
		b = binary.AppendUvarint(b, uint64(m.Weight))
		b = appendString(b, m.Addr)
	}
	return b, nil
}

// UnmarshalBinary decodes what MarshalBinary produced, members ordered by
// ID, and fails unless the result Validates.
func (l *Layout) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	if !d.magic(layoutMagic) {
		return errors.New("ring: not a layout encoding")
	}
	var out Layout
	out.Version = d.uvarint()
	out.Partitions = d.int(MaxPartitions)
	out.Replicas = d.int(1 << 20)
	n := d.int(len(d.b)) // a member takes at least 4 bytes: bounds the allocation
	out.Members = make([]Member, 0, n)
	for range n {
		var m Member
		m.ID = NodeID(d.string())
		m.Zone = d.string()
		w := d.uvarint()
		if w > 1<<32-1 {
			d.err = fmt.Errorf("ring: weight %d overflows uint32", w)
		}
		m.Weight = uint32(w)
		m.Addr = d.string()
		out.Members = append(out.Members, m)
	}
	if err := d.finish(); err != nil {
		return err
	}
	if err := out.Validate(); err != nil {
		return err
	}
	out.Members = out.sortedMembers()
	*l = out
	return nil
}

// MarshalBinary encodes the assignment canonically.
func (a *Assignment) MarshalBinary() ([]byte, error) {
	b := []byte(assignmentMagic)
	b = binary.AppendUvarint(b, a.version)
	return a.appendBody(b), nil
}

// appendBody encodes everything but the version: the placement itself.
func (a *Assignment) appendBody(b []byte) []byte {
	ids := a.Nodes()
	b = binary.AppendUvarint(b, uint64(a.partitions))
	b = binary.AppendUvarint(b, uint64(a.replicas))
	b = binary.AppendUvarint(b, uint64(len(ids)))
	for _, id := range ids {
		b = appendString(b, string(id))
	}
	for _, id := range a.owners {
		i, _ := slices.BinarySearch(ids, id)
		b = binary.AppendUvarint(b, uint64(i))
	}
	return b
}

// Hash is a 64-bit xxhash of the placement: partition count, owner count
// and every partition's ordered owners, not the version. Nodes compare
// hashes to check that they computed or received the same table.
func (a *Assignment) Hash() uint64 {
	return xxhash.Sum64(a.appendBody(nil))
}

// UnmarshalBinary decodes what MarshalBinary produced. It checks the
// structure (power-of-two partition count, known and distinct owners per
// partition) but not that the table fits any particular layout: NewRing
// does.
func (a *Assignment) UnmarshalBinary(data []byte) error {
	d := decoder{b: data}
	if !d.magic(assignmentMagic) {
		return errors.New("ring: not an assignment encoding")
	}
	var out Assignment
	out.version = d.uvarint()
	out.partitions = d.int(MaxPartitions)
	out.replicas = d.int(len(d.b))
	n := d.int(len(d.b))
	ids := make([]NodeID, 0, n)
	for range n {
		id := NodeID(d.string())
		if id == "" || (len(ids) > 0 && id <= ids[len(ids)-1]) {
			d.fail(errors.New("ring: assignment node list not strictly ascending"))
		}
		ids = append(ids, id)
	}
	q := out.partitions
	if d.err == nil && (q < MinPartitions || q&(q-1) != 0) {
		d.fail(fmt.Errorf("ring: partition count %d is not a power of two in [%d, %d]", q, MinPartitions, MaxPartitions))
	}
	if d.err == nil && (out.replicas < 1 || out.replicas > len(ids)) {
		d.fail(fmt.Errorf("ring: %d owners per partition among %d nodes", out.replicas, len(ids)))
	}
	if d.err == nil && q*out.replicas > len(d.b) { // an index takes at least a byte
		d.fail(errTruncated)
	}
	if d.err == nil {
		out.owners = make([]NodeID, q*out.replicas)
		for i := range out.owners {
			x := d.int(len(ids) - 1)
			out.owners[i] = ids[x]
		}
		for p := range q {
			row := out.Owners(Partition(p))
			for i := range row {
				if slices.Contains(row[i+1:], row[i]) {
					d.fail(fmt.Errorf("ring: partition %d lists %q twice", p, row[i]))
				}
			}
		}
	}
	if err := d.finish(); err != nil {
		return err
	}
	*a = out
	return nil
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

// decoder reads uvarints and strings, remembering the first error so that
// callers check once at the end.
type decoder struct {
	b   []byte
	err error
}

func (d *decoder) fail(err error) {
	if d.err == nil {
		d.err = err
	}
}

func (d *decoder) magic(m string) bool {
	if len(d.b) < len(m) || string(d.b[:len(m)]) != m {
		return false
	}
	d.b = d.b[len(m):]
	return true
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.fail(errTruncated)
		return 0
	}
	d.b = d.b[n:]
	return v
}

// int reads a uvarint that must not exceed limit.
func (d *decoder) int(limit int) int {
	v := d.uvarint()
	if v > uint64(limit) {
		d.fail(fmt.Errorf("ring: value %d exceeds %d", v, limit))
		return 0
	}
	return int(v)
}

func (d *decoder) string() string {
	v := d.uvarint()
	if d.err == nil && v > uint64(len(d.b)) {
		d.fail(errTruncated)
	}
	if d.err != nil {
		return ""
	}
	n := int(v)
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}

func (d *decoder) finish() error {
	if d.err == nil && len(d.b) != 0 {
		d.fail(errors.New("ring: trailing bytes after encoding"))
	}
	return d.err
}
