// sim_test.go is the seeded cluster simulation (in the manner of
// FoundationDB's simulator and TigerBeetle's VOPR). A whole cluster runs in
// one goroutine over a simulated network with virtual time: the real quorum
// state machines (quorum.go, handoff.go) and the real pebble stores (on
// crashable in-memory filesystems), with every fault drawn from one seeded
// random source, so a failing seed replays exactly:
//
//   - message loss, duplication, delay and reordering;
//   - network partitions, including one-way ones, healed later;
//   - node crashes that lose everything not fsynced, and restarts;
//   - one node per schedule losing its whole disk (fewer than W owners of
//     any write may lose their disks, and with W=2 that is one);
//   - clock skew between nodes (hybrid logical clocks must cope).
//
// Clients issue concurrent PUT, DELETE and GET of a few keys (Dynamo's
// last-writer-wins "null" version slot). After the schedule, the faults
// stop, hints are handed off, anti-entropy rounds run until the owners'
// Merkle roots agree (no read repair helps them), and the checks run:
//
//  1. every acknowledged write is present, or superseded by a write that
//     orders after it;
//  2. all owners of a partition hold byte-identical records;
//  3. no read returned a value that no client wrote.
//
// Run more schedules with: go test ./index -run TestSimulation -sim.schedules=5000
// and replay one with -sim.seed=N -v.
package index

import (
	"container/heap"
	"context"
	"flag"
	"fmt"
	"math/rand/v2"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"

	"github.com/ringstore/ringstore/ring"
)

var (
	simSchedules = flag.Int("sim.schedules", 500, "number of seeded schedules TestSimulation runs")
	simSeed      = flag.Int64("sim.seed", -1, "run only this seed")
)

const (
	simKeys     = 3
	simMaxDelay = 20 * time.Millisecond
	simTimeout  = 80 * time.Millisecond
	simHandoff  = 150 * time.Millisecond
	simDuration = 3 * time.Second
)

// simNode is one node of the simulated cluster.
type simNode struct {
	id      string
	fs      *vfs.MemFS
	store   *Store
	clock   *Clock
	skew    time.Duration
	crashed bool
	ops     map[int]*simOp // operations this node coordinates, by op id
}

// simOp is one client operation in flight.
type simOp struct {
	id      int
	kind    string // put, delete, get, handoff, repair
	key     int
	node    *simNode
	m       machine
	pending map[int]bool // target ids awaiting a reply
	write   *Version     // for put and delete
	hintFor string       // for handoff
	items   []Item       // for handoff
}

type simEvent struct {
	at   time.Duration
	seq  int
	kind string // deliver, reply, timeout, client, handoff
	from string
	to   string
	op   int
	tid  int
	req  *Request
	resp *Response
	err  error
}

type eventQueue []*simEvent

func (q eventQueue) Len() int { return len(q) }
func (q eventQueue) Less(i, j int) bool {
	if q[i].at != q[j].at {
		return q[i].at < q[j].at
	}
	return q[i].seq < q[j].seq
}
func (q eventQueue) Swap(i, j int) { q[i], q[j] = q[j], q[i] }
func (q *eventQueue) Push(x any)   { *q = append(*q, x.(*simEvent)) }
func (q *eventQueue) Pop() any {
	old := *q
	e := old[len(old)-1]
	*q = old[:len(old)-1]
	return e
}

type sim struct {
	t      *testing.T
	seed   int64
	r      *rand.Rand
	now    time.Duration
	seq    int
	q      eventQueue
	nodes  []*simNode
	byID   map[string]*simNode
	ring   *ring.Ring
	place  Placement
	bucket *Bucket
	cut    map[[2]string]bool // one-way partitions: from -> to blocked
	faults bool
	wiped  bool // a disk was lost this schedule

	lossP, dupP float64
	nextOp      int
	written     map[string]bool // every ETag a client wrote
	acked       []*Version      // acknowledged writes, per key in write.ETag
	ackedKey    []int
	reads       int
	stats       map[string]int
}

func newSim(t *testing.T, seed int64, nodes int) *sim {
	s := &sim{
		t: t, seed: seed, r: rand.New(rand.NewPCG(uint64(seed), 0x5eed)),
		byID: map[string]*simNode{}, cut: map[[2]string]bool{}, faults: true,
		written: map[string]bool{}, stats: map[string]int{},
	}
	s.lossP = []float64{0, 0.01, 0.05, 0.15}[s.r.IntN(4)]
	s.dupP = []float64{0, 0.02, 0.1}[s.r.IntN(3)]
	layout := ring.Layout{Partitions: 16, Replicas: 3, Version: 1}
	for i := 0; i < nodes; i++ {
		id := fmt.Sprintf("n%d", i+1)
		layout.Members = append(layout.Members, ring.Member{ID: ring.NodeID(id), Zone: fmt.Sprintf("z%d", i%3), Weight: 1})
	}
	rg, err := ring.NewRing(layout, ring.Assign(nil, layout))
	if err != nil {
		t.Fatal(err)
	}
	s.ring, s.place = rg, RingPlacement(rg)
	for i := 0; i < nodes; i++ {
		n := &simNode{id: fmt.Sprintf("n%d", i+1), fs: vfs.NewCrashableMem(), ops: map[int]*simOp{}}
		n.skew = time.Duration(s.r.IntN(400)-200) * time.Millisecond
		n.clock = NewClock(s.wallOf(n))
		s.open(n)
		s.nodes = append(s.nodes, n)
		s.byID[n.id] = n
	}
	s.bucket = &Bucket{Name: "b", ID: BucketID{7}, Created: 1, Shards: 1}
	return s
}

// wallOf is a node's skewed view of the virtual time.
func (s *sim) wallOf(n *simNode) func() time.Time {
	base := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	return func() time.Time { return base.Add(s.now + n.skew) }
}

func (s *sim) open(n *simNode) {
	// Through the log buffer a server's store uses: a crash then loses
	// every unsynced log write, not a random share of them.
	st, err := OpenStore("db", StoreOptions{FS: writeBufferFS{n.fs}, CacheBytes: 1 << 20})
	if err != nil {
		s.t.Fatalf("seed %d: open %s: %v", s.seed, n.id, err)
	}
	n.store = st
}

func (s *sim) crash(n *simNode) {
	// Only what was fsynced survives; in-flight operations of the node are
	// gone with it (their clients never get an answer).
	clone := n.fs.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: s.r.IntN(101), RNG: rand.New(rand.NewPCG(s.r.Uint64(), 1))})
	_ = n.store.Close()
	n.fs = clone
	n.store = nil
	n.crashed = true
	n.ops = map[int]*simOp{}
	s.stats["crash"]++
}

// wipe crashes n and replaces its disk with an empty one.
func (s *sim) wipe(n *simNode) {
	s.crash(n)
	n.fs = vfs.NewCrashableMem()
	s.wiped = true
	s.stats["wipe"]++
}

func (s *sim) restart(n *simNode) {
	s.open(n)
	n.crashed = false
}

func (s *sim) push(e *simEvent) {
	s.seq++
	e.seq = s.seq
	heap.Push(&s.q, e)
}

func (s *sim) delay() time.Duration {
	return time.Duration(1+s.r.IntN(int(simMaxDelay/time.Millisecond))) * time.Millisecond
}

// reachable reports whether a message from a to b can be delivered.
func (s *sim) reachable(a, b string) bool {
	return !s.byID[a].crashed && !s.byID[b].crashed && !s.cut[[2]string{a, b}]
}

// aliveView is node n's failure detector: it sees crashes and partitions,
// but only in one direction, and sometimes not at all (a stale view).
func (s *sim) aliveView(n *simNode) func(string) bool {
	return func(id string) bool {
		if id == n.id {
			return true
		}
		return !s.byID[id].crashed && !s.cut[[2]string{n.id, id}]
	}
}

func (s *sim) viewFor(n *simNode, part uint16) view {
	return view{
		owners:    s.place.Owners(part),
		fallbacks: func() []string { return s.place.Fallbacks(part) },
		alive:     s.aliveView(n),
	}
}

// transmit puts a message on the network, subject to loss, duplication and
// delay.
func (s *sim) transmit(e *simEvent) {
	if s.faults && s.r.Float64() < s.lossP {
		s.stats["lost"]++
		return
	}
	copies := 1
	if s.faults && s.r.Float64() < s.dupP {
		copies = 2
		s.stats["dup"]++
	}
	for i := 0; i < copies; i++ {
		c := *e
		c.at = s.now + s.delay()
		s.push(&c)
	}
}

// dispatch sends a machine's messages and arms their timeouts.
func (s *sim) dispatch(op *simOp, sends []send) {
	for _, sd := range sends {
		to := op.m.targetOf(sd.id).node
		sd.req.Clock = op.node.clock.Peek()
		op.pending[sd.id] = true
		s.transmit(&simEvent{kind: "deliver", from: op.node.id, to: to, op: op.id, tid: sd.id, req: sd.req})
		s.push(&simEvent{at: s.now + simTimeout, kind: "timeout", to: op.node.id, op: op.id, tid: sd.id})
	}
}

func (s *sim) startOp(n *simNode, op *simOp) {
	s.nextOp++
	op.id, op.node, op.pending = s.nextOp, n, map[int]bool{}
	n.ops[op.id] = op
	s.dispatch(op, op.m.start())
	s.maybeFinish(op)
}

func (s *sim) pk() []byte { return ObjectPK(s.bucket.ID, 0) }

func (s *sim) recordKey(key int) (uint16, []byte) {
	pk := s.pk()
	part := s.place.Partition(pk)
	return part, RecordKey(part, TableObjects, pk, []byte(fmt.Sprintf("key%d", key)))
}

// client starts a random client operation on a random live node.
func (s *sim) client() {
	var live []*simNode
	for _, n := range s.nodes {
		if !n.crashed {
			live = append(live, n)
		}
	}
	if len(live) == 0 {
		return
	}
	n := live[s.r.IntN(len(live))]
	key := s.r.IntN(simKeys)
	part, rk := s.recordKey(key)
	switch k := s.r.IntN(10); {
	case k < 5:
		etag := fmt.Sprintf("v%d-%d", s.seed, s.nextOp+1)
		v := &Version{ID: "null", Timestamp: n.clock.Now(), WriteID: WriteID{byte(s.nextOp), byte(s.nextOp >> 8), byte(s.nextOp >> 16)}, ETag: etag}
		s.written[etag] = true
		item := Item{Table: TableObjects, Key: rk, Value: EncodeObject(&Object{Versions: []Version{*v}})}
		s.startOp(n, &simOp{kind: "put", key: key, m: newWrite(s.viewFor(n, part), []Item{item}, 2), write: v})
	case k < 7:
		v := &Version{ID: "null", Timestamp: n.clock.Now(), WriteID: WriteID{byte(s.nextOp), byte(s.nextOp >> 8), byte(s.nextOp >> 16)}, Tombstone: true}
		item := Item{Table: TableObjects, Key: rk, Value: EncodeObject(&Object{Versions: []Version{*v}})}
		s.startOp(n, &simOp{kind: "delete", key: key, m: newWrite(s.viewFor(n, part), []Item{item}, 2), write: v})
	default:
		// Half the reads go as Index.Get sends them: a digest read first,
		// a full read when it does not settle.
		m := newRead(s.viewFor(n, part), TableObjects, &Request{Op: OpGet, Keys: [][]byte{rk}}, 2).withSelf(n.id)
		kind := "get"
		if s.r.IntN(2) == 0 {
			m, kind = m.withDigests(), "digest-get"
		}
		s.startOp(n, &simOp{kind: kind, key: key, m: m})
	}
}

// checkRead fails the run when a read returned a value nobody wrote.
func (s *sim) checkRead(v []byte) {
	s.reads++
	if v == nil {
		return
	}
	o, err := DecodeObject(v)
	if err != nil {
		s.t.Fatalf("seed %d: read returned a corrupt record: %v", s.seed, err)
	}
	if l := o.Latest(); l != nil && !s.written[l.ETag] {
		s.t.Fatalf("seed %d: read returned %q, which no client wrote", s.seed, l.ETag)
	}
}

func (s *sim) maybeFinish(op *simOp) {
	if !op.m.finished() {
		return
	}
	delete(op.node.ops, op.id)
	switch op.kind {
	case "put", "delete":
		wm := op.m.(*writeMachine)
		if wm.err == nil {
			s.acked = append(s.acked, op.write)
			s.ackedKey = append(s.ackedKey, op.key)
			s.stats["acked"]++
		} else {
			s.stats["failed"]++
		}
	case "get":
		rm := op.m.(*readMachine)
		vals, repairs, err := rm.getResult()
		if err != nil {
			s.stats["read-failed"]++
			return
		}
		s.checkRead(vals[0])
		// Read repair: fire and forget.
		for _, r := range repairs {
			s.stats["repair"]++
			r.req.Clock = op.node.clock.Peek()
			s.transmit(&simEvent{kind: "deliver", from: op.node.id, to: rm.targetOf(r.id).node, op: -1, req: r.req})
		}
	case "digest-get":
		if vals, ok := op.m.(*readMachine).digestResult(); ok {
			s.stats["digest-read"]++
			s.checkRead(vals[0])
			return
		}
		s.stats["digest-miss"]++
		part, rk := s.recordKey(op.key)
		s.startOp(op.node, &simOp{kind: "get", key: op.key, m: newRead(s.viewFor(op.node, part), TableObjects, &Request{Op: OpGet, Keys: [][]byte{rk}}, 2).withSelf(op.node.id)})
	case "handoff":
		if hm := op.m.(*handoffMachine); hm.err == nil {
			if err := op.node.store.DropHints(op.hintFor, op.items); err != nil {
				s.t.Fatalf("seed %d: drop hints: %v", s.seed, err)
			}
			s.stats["handoff"] += len(op.items)
		}
	}
}

// handoffTick starts hint delivery on node n for every owner it believes
// alive (one batch per owner per tick).
func (s *sim) handoffTick(n *simNode) {
	owners, err := n.store.HintOwners()
	if err != nil {
		s.t.Fatalf("seed %d: hint owners: %v", s.seed, err)
	}
	for _, owner := range owners {
		busy := false
		for _, op := range n.ops {
			if op.kind == "handoff" && op.hintFor == owner {
				busy = true
			}
		}
		if busy || !s.aliveView(n)(owner) {
			continue
		}
		items, err := n.store.Hints(owner, handoffBatch)
		if err != nil {
			s.t.Fatalf("seed %d: hints: %v", s.seed, err)
		}
		if len(items) == 0 {
			continue
		}
		s.startOp(n, &simOp{kind: "handoff", m: &handoffMachine{owner: owner, items: items}, hintFor: owner, items: items})
	}
}

func (s *sim) handle(e *simEvent) {
	switch e.kind {
	case "deliver":
		if !s.reachable(e.from, e.to) {
			s.stats["undeliverable"]++
			return
		}
		n := s.byID[e.to]
		n.clock.Observe(e.req.Clock)
		resp, err := n.store.Serve(e.req)
		if err != nil {
			s.t.Fatalf("seed %d: %s serving %v: %v", s.seed, n.id, e.req.Op, err)
		}
		if e.op < 0 {
			return // a repair: nobody waits for the answer
		}
		resp.Clock = n.clock.Peek()
		s.transmit(&simEvent{kind: "reply", from: e.to, to: e.from, op: e.op, tid: e.tid, resp: resp})
	case "reply", "timeout":
		if e.kind == "reply" && !s.reachable(e.from, e.to) {
			return
		}
		n := s.byID[e.to]
		if n.crashed {
			return
		}
		op := n.ops[e.op]
		if op == nil || !op.pending[e.tid] {
			return // finished, or a duplicate, or a reply after its timeout
		}
		delete(op.pending, e.tid)
		r := reply{id: e.tid, resp: e.resp}
		if e.kind == "timeout" {
			r.err = fmt.Errorf("timeout")
		} else {
			n.clock.Observe(e.resp.Clock)
		}
		s.dispatch(op, op.m.step(r))
		s.maybeFinish(op)
	case "client":
		s.client()
	case "handoff":
		for _, n := range s.nodes {
			if !n.crashed {
				s.handoffTick(n)
			}
		}
		s.push(&simEvent{at: s.now + simHandoff, kind: "handoff"})
	}
}

// fault injects or heals one random fault.
func (s *sim) fault() {
	n := s.nodes[s.r.IntN(len(s.nodes))]
	switch k := s.r.IntN(10); {
	case k < 3:
		down := 0
		for _, x := range s.nodes {
			if x.crashed {
				down++
			}
		}
		if !n.crashed && down < len(s.nodes)-1 {
			s.crash(n)
		}
	case k < 6:
		if n.crashed {
			s.restart(n)
		} else if !s.wiped && s.r.IntN(4) == 0 {
			s.wipe(n)
		}
	case k < 8:
		m := s.nodes[s.r.IntN(len(s.nodes))]
		if m != n {
			s.cut[[2]string{n.id, m.id}] = true
			if s.r.IntN(2) == 0 {
				s.cut[[2]string{m.id, n.id}] = true // a full partition
			}
			s.stats["partition"]++
		}
	default:
		// Heal a random cut ("swizzle": unclog in random order).
		var keys [][2]string
		for k := range s.cut {
			keys = append(keys, k)
		}
		sort.Slice(keys, func(i, j int) bool { return keys[i][0]+keys[i][1] < keys[j][0]+keys[j][1] })
		if len(keys) > 0 {
			delete(s.cut, keys[s.r.IntN(len(keys))])
		}
	}
}

// runUntil processes events up to virtual time end.
func (s *sim) runUntil(end time.Duration) {
	for s.q.Len() > 0 && s.q[0].at <= end {
		e := heap.Pop(&s.q).(*simEvent)
		s.now = e.at
		s.handle(e)
	}
	s.now = end
}

func (s *sim) run() {
	s.push(&simEvent{at: simHandoff, kind: "handoff"})
	for t := time.Duration(0); t < simDuration; t += time.Duration(1+s.r.IntN(15)) * time.Millisecond {
		s.push(&simEvent{at: t, kind: "client"})
	}
	for t := time.Duration(0); t < simDuration; t += time.Duration(50+s.r.IntN(400)) * time.Millisecond {
		s.runUntil(t)
		s.fault()
	}
	s.runUntil(simDuration)
	s.heal()
	s.check()
}

// heal stops every fault, lets hints drain and reads every key from all
// owners so read repair makes them equal.
func (s *sim) heal() {
	s.faults = false
	s.cut = map[[2]string]bool{}
	for _, n := range s.nodes {
		if n.crashed {
			s.restart(n)
		}
	}
	s.runUntil(s.now + 2*simTimeout) // in-flight operations settle
	for round := 0; ; round++ {
		s.runUntil(s.now + 2*simHandoff)
		left := 0
		for _, n := range s.nodes {
			owners, _ := n.store.HintOwners()
			left += len(owners)
		}
		if left == 0 {
			break
		}
		if round > 200 {
			s.t.Fatalf("seed %d: hints never drained", s.seed)
		}
	}
	s.converge()
}

// converge runs anti-entropy rounds on every node until every partition's
// owners have equal tree roots.
func (s *sim) converge() {
	for round := 0; ; round++ {
		for _, n := range s.nodes {
			sy := &syncer{self: n.id, store: n.store, call: s.syncCaller(n), stats: &AEStats{}}
			if err := sy.round(context.Background(), s.place, s.aliveView(n)); err != nil {
				s.t.Fatalf("seed %d: anti-entropy on %s: %v", s.seed, n.id, err)
			}
			s.stats["ae-pulled"] += int(sy.stats.RecordsPulled.Load())
			s.stats["ae-pushed"] += int(sy.stats.RecordsPushed.Load())
		}
		if s.rootsAgree() {
			return
		}
		if round > 5 {
			s.t.Fatalf("seed %d: owners' trees still differ after %d anti-entropy rounds", s.seed, round)
		}
	}
}

// syncCaller delivers anti-entropy requests synchronously.
func (s *sim) syncCaller(from *simNode) caller {
	return func(_ context.Context, node string, req *Request) (*Response, error) {
		if !s.reachable(from.id, node) {
			return nil, fmt.Errorf("unreachable")
		}
		return s.byID[node].store.Serve(req)
	}
}

func (s *sim) rootsAgree() bool {
	for part := 0; part < s.place.Partitions(); part++ {
		var first *Hash16
		for _, o := range s.place.Owners(uint16(part)) {
			t, err := s.byID[o].store.Tree(uint16(part))
			if err != nil {
				s.t.Fatal(err)
			}
			r := t.Root()
			if first == nil {
				first = &r
			} else if r != *first {
				return false
			}
		}
	}
	return true
}

func (s *sim) check() {
	for key := 0; key < simKeys; key++ {
		part, rk := s.recordKey(key)
		var first []byte
		for i, owner := range s.place.Owners(part) {
			v, err := s.byID[owner].store.Get(rk)
			if err != nil {
				s.t.Fatalf("seed %d: %v", s.seed, err)
			}
			if i == 0 {
				first = v
			} else if string(v) != string(first) {
				s.t.Fatalf("seed %d: key%d: owners %s and %s differ after healing:\n%x\n%x", s.seed, key, s.place.Owners(part)[0], owner, first, v)
			}
		}
		var final *Version
		if first != nil {
			o, err := DecodeObject(first)
			if err != nil {
				s.t.Fatal(err)
			}
			final = o.Find("null")
			for i := range o.Versions {
				if o.Versions[i].ID == "null" {
					final = &o.Versions[i]
				}
			}
		}
		for i, w := range s.acked {
			if s.ackedKey[i] != key {
				continue
			}
			if final == nil || newer(w, final) {
				s.t.Fatalf("seed %d: key%d: acknowledged write %s (ts %v) lost; final state %+v", s.seed, key, w.ETag, w.Timestamp, final)
			}
		}
	}
}

func TestSimulation(t *testing.T) {
	if testing.Short() {
		t.Skip("simulation in -short mode")
	}
	seeds := make([]int64, 0, *simSchedules)
	if *simSeed >= 0 {
		seeds = append(seeds, *simSeed)
	} else {
		for i := 0; i < *simSchedules; i++ {
			seeds = append(seeds, int64(i))
		}
	}
	total := map[string]int{}
	for _, seed := range seeds {
		nodes := []int{3, 4, 5}[seed%3]
		s := newSim(t, seed, nodes)
		s.run()
		for k, v := range s.stats {
			total[k] += v
		}
		for _, n := range s.nodes {
			_ = n.store.Close()
		}
		if *simSeed >= 0 {
			t.Logf("seed %d: %d nodes, stats %v", seed, nodes, s.stats)
		}
	}
	var parts []string
	for k, v := range total {
		parts = append(parts, fmt.Sprintf("%s=%d", k, v))
	}
	slices.Sort(parts)
	t.Logf("%d schedules: %s", len(seeds), strings.Join(parts, " "))
}
