// scenario_test.go holds scripted cluster scenarios on the simulation
// harness of sim_test.go, each naming the part of the Dynamo paper it
// checks. Unlike the random schedules, each one forces one rare path.
package index

import (
	"fmt"
	"testing"
	"time"
)

// scripted returns a fault-free simulation of n nodes.
func scripted(t *testing.T, n int) *sim {
	s := newSim(t, 1, n)
	s.faults = false
	for _, node := range s.nodes {
		node.skew = 0
	}
	return s
}

// put runs one PUT of key through node and returns whether it was
// acknowledged.
func (s *sim) scriptPut(node *simNode, key int, etag string) (*Version, bool) {
	part, rk := s.recordKey(key)
	v := &Version{ID: "null", Timestamp: node.clock.Now(), WriteID: NewWriteID(), ETag: etag}
	s.written[etag] = true
	before := len(s.acked)
	item := Item{Table: TableObjects, Key: rk, Value: EncodeObject(&Object{Versions: []Version{*v}})}
	s.startOp(node, &simOp{kind: "put", key: key, m: newWrite(s.viewFor(node, part), []Item{item}, 2), write: v})
	s.runUntil(s.now + 5*simTimeout)
	return v, len(s.acked) > before
}

// TestHintedHandoffSurvivesOwnerDiskLoss is Dynamo §4.6: with two owners of
// a key unreachable, a write is acknowledged by the third owner and a
// fallback holding a hint. The third owner then loses its disk. The hint is
// the only copy left; handoff must deliver it before dropping it.
func TestHintedHandoffSurvivesOwnerDiskLoss(t *testing.T) {
	s := scripted(t, 5)
	part, _ := s.recordKey(0)
	owners := s.place.Owners(part)
	a, b, c := s.byID[owners[0]], s.byID[owners[1]], s.byID[owners[2]]
	var coord *simNode
	for _, n := range s.nodes {
		if n != a && n != b && n != c {
			coord = n
			break
		}
	}
	// The coordinator cannot reach b and c, in both directions.
	for _, x := range []*simNode{b, c} {
		s.cut[[2]string{coord.id, x.id}] = true
		s.cut[[2]string{x.id, coord.id}] = true
	}
	v, ok := s.scriptPut(coord, 0, "precious")
	if !ok {
		t.Fatal("write with one owner and fallbacks reachable was not acknowledged")
	}
	hints := 0
	for _, n := range s.nodes {
		owners, _ := n.store.HintOwners()
		hints += len(owners)
	}
	if hints == 0 {
		t.Fatal("no fallback holds a hint")
	}
	s.wipe(a)
	s.restart(a)
	// The partition heals, but at first every message is lost: the
	// fallbacks' handoff attempts fail and must keep their hints.
	s.cut = map[[2]string]bool{}
	s.faults, s.lossP = true, 1
	s.push(&simEvent{at: s.now, kind: "handoff"})
	s.runUntil(s.now + 3*simHandoff)
	s.lossP = 0
	s.heal()
	s.check()
	o := s.readOwner(b, 0)
	if o == nil || o.Find("null") == nil || o.Find("null").ETag != v.ETag {
		t.Fatalf("owner %s after handoff holds %+v; want %s", b.id, o, v.ETag)
	}
}

// TestReadRepair is Dynamo §4.7 (read repair): an owner that missed a write
// gets it from the first quorum read that sees the difference.
func TestReadRepair(t *testing.T) {
	s := scripted(t, 3)
	part, _ := s.recordKey(1)
	owners := s.place.Owners(part)
	lagging := s.byID[owners[2]]
	coord := s.byID[owners[0]]
	s.cut[[2]string{coord.id, lagging.id}] = true
	s.cut[[2]string{lagging.id, coord.id}] = true
	if _, ok := s.scriptPut(coord, 1, "fresh"); !ok {
		t.Fatal("write not acknowledged")
	}
	if o := s.readOwner(lagging, 1); o != nil {
		t.Fatalf("lagging owner has %+v before repair", o)
	}
	s.cut = map[[2]string]bool{}
	_, rk := s.recordKey(1)
	s.startOp(coord, &simOp{kind: "get", key: 1, m: newRead(s.viewFor(coord, part), TableObjects, &Request{Op: OpGet, Keys: [][]byte{rk}}, 3)})
	s.runUntil(s.now + 5*simTimeout)
	if o := s.readOwner(lagging, 1); o == nil || o.Find("null").ETag != "fresh" {
		t.Fatalf("lagging owner after a quorum read holds %+v; want the repaired write", o)
	}
}

// TestClockSkewCannotReorderSeenWrites checks the hybrid logical clock: a
// node whose wall clock is an hour behind still orders its write after a
// write it has seen (through the read that precedes its own write).
func TestClockSkewCannotReorderSeenWrites(t *testing.T) {
	s := scripted(t, 3)
	ahead, behind := s.nodes[0], s.nodes[1]
	ahead.skew = time.Hour
	first, ok := s.scriptPut(ahead, 2, "first")
	if !ok {
		t.Fatal("first write not acknowledged")
	}
	part, rk := s.recordKey(2)
	s.startOp(behind, &simOp{kind: "get", key: 2, m: newRead(s.viewFor(behind, part), TableObjects, &Request{Op: OpGet, Keys: [][]byte{rk}}, 2)})
	s.runUntil(s.now + 5*simTimeout)
	second, ok := s.scriptPut(behind, 2, "second")
	if !ok {
		t.Fatal("second write not acknowledged")
	}
	if !newer(second, first) {
		t.Fatalf("write %v after seeing %v orders before it", second.Timestamp, first.Timestamp)
	}
	s.heal()
	if o := s.readOwner(s.byID[s.place.Owners(part)[0]], 2); o.Find("null").ETag != "second" {
		t.Fatalf("final value %q; want second", o.Find("null").ETag)
	}
}

func (s *sim) readOwner(n *simNode, key int) *Object {
	_, rk := s.recordKey(key)
	v, err := n.store.Get(rk)
	if err != nil {
		s.t.Fatal(err)
	}
	if v == nil {
		return nil
	}
	o, err := DecodeObject(v)
	if err != nil {
		s.t.Fatal(err)
	}
	return o
}

// TestEmptyDiskConverges is Dynamo §4.7 (anti-entropy): a replica restored
// from an empty disk gets every record back by itself, through Merkle tree
// comparison with its co-owners; only differing leaves are exchanged.
func TestEmptyDiskConverges(t *testing.T) {
	s := scripted(t, 3)
	part, _ := s.recordKey(0)
	owners := s.place.Owners(part)
	for k := 0; k < simKeys; k++ {
		if _, ok := s.scriptPut(s.byID[owners[0]], k, fmt.Sprintf("value-%d", k)); !ok {
			t.Fatal("write not acknowledged")
		}
	}
	lost := s.byID[owners[2]]
	s.wipe(lost)
	s.restart(lost)
	if o := s.readOwner(lost, 0); o != nil {
		t.Fatal("wiped node still has data")
	}
	s.converge()
	for k := 0; k < simKeys; k++ {
		if o := s.readOwner(lost, k); o == nil || o.Find("null").ETag != fmt.Sprintf("value-%d", k) {
			t.Fatalf("key%d on the restored node = %+v", k, o)
		}
	}
	if s.stats["ae-pulled"]+s.stats["ae-pushed"] < simKeys {
		t.Fatalf("anti-entropy moved %d records; want at least %d", s.stats["ae-pulled"]+s.stats["ae-pushed"], simKeys)
	}
}
