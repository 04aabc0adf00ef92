package index

import (
	"bytes"
	"errors"
	"fmt"
	"slices"
)

// The quorum logic is a set of pure state machines, in the manner of
// etcd's raft: a machine is started, is fed the replies to the messages it
// asked to send, and says when it is finished; it never touches the
// network, the disk or a clock. The Index drives machines over a real
// Transport with goroutines; the cluster simulation (sim_test.go) drives
// the same machines over a seeded, simulated network in one goroutine.
//
// Placement of one request (Dynamo §4.6, sloppy quorum): the request goes
// to every owner of the partition that is alive; in place of an owner
// known to be down, or one whose request fails, it goes to the next alive
// fallback, which keeps what it receives as a hint for that owner. A write
// succeeds once W targets acknowledged; a read once R answered.

// target is one node a machine sends to.
type target struct {
	node     string
	forOwner string // set when node is a fallback standing in for this owner
}

// send is a message a machine asks its driver to deliver.
type send struct {
	id  int // the target, an index into the machine's targets
	req *Request
}

// reply is the outcome of a send.
type reply struct {
	id   int
	resp *Response
	err  error
}

// machine is a quorum operation.
type machine interface {
	start() []send
	step(reply) []send
	finished() bool
	targetOf(id int) target
}

// view is what a machine knows of the cluster for one partition.
type view struct {
	owners    []string        // reads go to these
	sets      [][]string      // writes go to all of these; nil means {owners}
	fallbacks func() []string // computed only when needed
	alive     func(string) bool
}

// writeSets returns the owner sets writes must reach.
func (v view) writeSets() [][]string {
	if len(v.sets) == 0 {
		return [][]string{v.owners}
	}
	return v.sets
}

// targets tracks the nodes of one operation and hands out fallbacks.
type targets struct {
	v           view
	list        []target
	fbs         []string
	fbsLoaded   bool
	fbNext      int
	outstanding int
}

func (t *targets) targetOf(id int) target { return t.list[id] }

func (t *targets) add(tg target, req *Request) send {
	id := len(t.list)
	t.list = append(t.list, tg)
	t.outstanding++
	r := *req
	r.For = tg.forOwner
	return send{id: id, req: &r}
}

// fallback returns the next alive fallback not yet used by this operation.
func (t *targets) fallback() (string, bool) {
	if !t.fbsLoaded {
		t.fbsLoaded = true
		if t.v.fallbacks != nil {
			t.fbs = t.v.fallbacks()
		}
	}
	for t.fbNext < len(t.fbs) {
		n := t.fbs[t.fbNext]
		t.fbNext++
		if t.v.alive(n) && !slices.ContainsFunc(t.list, func(x target) bool { return x.node == n }) {
			return n, true
		}
	}
	return "", false
}

// initial sends req to every alive owner and to a fallback for each owner
// known to be down.
func (t *targets) initial(req *Request) []send {
	var out []send
	for _, o := range t.v.owners {
		if t.v.alive(o) {
			out = append(out, t.add(target{node: o}, req))
		} else if fb, ok := t.fallback(); ok {
			out = append(out, t.add(target{node: fb, forOwner: o}, req))
		}
	}
	return out
}

// replace sends req to a fallback standing in for the owner that the
// failed target id stood for, if a fallback is left.
func (t *targets) replace(id int, req *Request) []send {
	tg := t.list[id]
	owner := tg.forOwner
	if owner == "" {
		owner = tg.node
	}
	if fb, ok := t.fallback(); ok {
		return []send{t.add(target{node: fb, forOwner: owner}, req)}
	}
	return nil
}

// errNoTarget means no owner or fallback was reachable to ask at all.
var errNoTarget = errors.New("no owner or fallback believed alive")

// failures joins the errors of failed targets, or says none was tried.
func failures(errs []error) error {
	if len(errs) == 0 {
		return errNoTarget
	}
	return errors.Join(errs...)
}

// writeMachine merges items into the owners of every write set (one set
// per active layout version) and succeeds once each set has a write
// quorum of acknowledgements, a fallback's counting for the owner it
// stands in for.
type writeMachine struct {
	targets
	req     *Request
	sets    [][]string
	need    []int
	acked   map[string]bool // owner -> acknowledged, directly or by a fallback
	pending map[string]int  // owner -> targets in flight for it
	done    bool
	err     error
	errs    []error
}

func newWrite(v view, items []Item, w int) *writeMachine {
	m := &writeMachine{
		targets: targets{v: v},
		req:     &Request{Op: OpMerge, Items: items, Sync: true},
		sets:    v.writeSets(),
		acked:   map[string]bool{},
		pending: map[string]int{},
	}
	for _, set := range m.sets {
		m.need = append(m.need, min(w, len(set)))
	}
	return m
}

func (m *writeMachine) start() []send {
	var out []send
	seen := map[string]bool{}
	for _, set := range m.sets {
		for _, o := range set {
			if seen[o] {
				continue
			}
			seen[o] = true
			if m.v.alive(o) {
				out = append(out, m.add(target{node: o}, m.req))
				m.pending[o]++
			} else if fb, ok := m.fallback(); ok {
				out = append(out, m.add(target{node: fb, forOwner: o}, m.req))
				m.pending[o]++
			}
		}
	}
	m.check()
	return out
}

func (m *writeMachine) ownerOf(id int) string {
	if t := m.list[id]; t.forOwner != "" {
		return t.forOwner
	}
	return m.list[id].node
}

func (m *writeMachine) step(r reply) []send {
	m.outstanding--
	owner := m.ownerOf(r.id)
	m.pending[owner]--
	if m.done {
		return nil
	}
	if r.err == nil {
		m.acked[owner] = true
		m.check()
		return nil
	}
	m.errs = append(m.errs, fmt.Errorf("%s: %w", m.list[r.id].node, r.err))
	var out []send
	if !m.acked[owner] {
		out = m.replace(r.id, m.req)
		m.pending[owner] += len(out)
	}
	m.check()
	return out
}

// check finishes the machine when every set has its quorum, or when some
// set can no longer reach it.
func (m *writeMachine) check() {
	if m.done {
		return
	}
	satisfied := true
	for i, set := range m.sets {
		acks, possible := 0, 0
		for _, o := range set {
			if m.acked[o] {
				acks++
				possible++
			} else if m.pending[o] > 0 {
				possible++
			}
		}
		if possible < m.need[i] {
			m.done = true
			m.err = fmt.Errorf("%w: %d of %d acknowledgements: %w", ErrQuorum, acks, m.need[i], failures(m.errs))
			return
		}
		if acks < m.need[i] {
			satisfied = false
		}
	}
	if satisfied {
		m.done = true
	}
}

func (m *writeMachine) finished() bool { return m.done }

// readMachine reads from R targets, then merges the replies. Unlike a
// write, which goes to every owner, a read asks only R of them (this node
// first when it is one), keeping the other owners as spares for a target
// that fails: on the small machines ringstore also runs on, an extra
// replica read per request costs more than the repair it might trigger,
// and anti-entropy finds what reads miss.
type readMachine struct {
	targets
	req     *Request
	table   Table
	need    int
	ok      int
	replies map[int]*Response
	spares  []string // alive owners not asked yet
	self    string
	done    bool
	err     error
	errs    []error

	// digest, when set, is sent to every target but the first (id 0),
	// which alone reads the records themselves; see withDigests.
	digest *Request
}

func newRead(v view, t Table, req *Request, r int) *readMachine {
	return &readMachine{targets: targets{v: v}, req: req, table: t, need: min(r, len(v.owners)), replies: map[int]*Response{}}
}

// withDigests makes an OpGet read ask one target for the records and the
// others only for their state hashes, as Dynamo-style stores do: on a
// 4 KiB object the second reply shrinks from the record to 16 bytes. It
// gives up at the first failure; digestResult then says no, and the
// caller reads again in full.
func (m *readMachine) withDigests() *readMachine {
	d := *m.req
	d.Op = OpDigest
	m.digest = &d
	return m
}

// reqFor is the request for the n-th target of the read.
func (m *readMachine) reqFor(n int) *Request {
	if n == 0 || m.digest == nil {
		return m.req
	}
	return m.digest
}

// withSelf makes the read prefer self among the owners.
func (m *readMachine) withSelf(self string) *readMachine {
	m.self = self
	return m
}

func (m *readMachine) start() []send {
	var alive, down []string
	if slices.Contains(m.v.owners, m.self) {
		alive = append(alive, m.self)
	}
	for _, o := range m.v.owners {
		if o == m.self {
			continue
		}
		if m.v.alive(o) {
			alive = append(alive, o)
		} else {
			down = append(down, o)
		}
	}
	var out []send
	for i, o := range alive {
		if i < m.need {
			out = append(out, m.add(target{node: o}, m.reqFor(len(out))))
		} else {
			m.spares = append(m.spares, o)
		}
	}
	// Owners known down are stood in for by fallbacks, which may hold
	// hints for them, until the quorum is covered.
	for _, o := range down {
		if len(out) >= m.need {
			break
		}
		if fb, ok := m.fallback(); ok {
			out = append(out, m.add(target{node: fb, forOwner: o}, m.reqFor(len(out))))
		}
	}
	m.check()
	return out
}

func (m *readMachine) step(r reply) []send {
	m.outstanding--
	if m.done {
		return nil
	}
	if r.err == nil {
		m.replies[r.id] = r.resp
		m.ok++
		if m.ok >= m.need {
			m.done = true
		}
		return nil
	}
	m.errs = append(m.errs, fmt.Errorf("%s: %w", m.list[r.id].node, r.err))
	if m.digest != nil {
		m.done = true
		m.err = fmt.Errorf("%w: digest read: %w", ErrQuorum, failures(m.errs))
		return nil
	}
	var out []send
	if len(m.spares) > 0 {
		out = []send{m.add(target{node: m.spares[0]}, m.req)}
		m.spares = m.spares[1:]
	} else {
		out = m.replace(r.id, m.req)
	}
	m.check()
	return out
}

func (m *readMachine) check() {
	if !m.done && m.ok+m.outstanding < m.need {
		m.done = true
		m.err = fmt.Errorf("%w: %d of %d replies: %w", ErrQuorum, m.ok, m.need, failures(m.errs))
	}
}

func (m *readMachine) finished() bool { return m.done }

// ids returns the ids of the targets that replied, in order.
func (m *readMachine) ids() []int {
	ids := make([]int, 0, len(m.replies))
	for id := range m.replies {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

// digestResult returns the records of a digest read when every digest
// matches the full reply, so the replicas asked agree and nothing needs
// merging or repair; ok is false otherwise.
func (m *readMachine) digestResult() (values [][]byte, ok bool) {
	const fullID = 0 // the first target added, by start
	full := m.replies[fullID]
	if m.err != nil || m.digest == nil || full == nil || len(full.Values) != len(m.req.Keys) {
		return nil, false
	}
	want := make([][]byte, len(full.Values))
	for i, v := range full.Values {
		if v != nil {
			h := itemHash(m.req.Keys[i], v)
			want[i] = h[:]
		}
	}
	for id, r := range m.replies {
		if id == fullID {
			continue
		}
		if len(r.Values) != len(want) {
			return nil, false
		}
		for i := range want {
			if !bytes.Equal(r.Values[i], want[i]) {
				return nil, false
			}
		}
	}
	return full.Values, true
}

// getResult merges the replies to an OpGet, and returns the repairs to
// send to targets that answered with a stale state.
func (m *readMachine) getResult() ([][]byte, []send, error) {
	if m.err != nil {
		return nil, nil, m.err
	}
	merged := make([][]byte, len(m.req.Keys))
	ids := m.ids()
	for _, id := range ids {
		for i, v := range m.replies[id].Values {
			if v == nil {
				continue
			}
			if merged[i] == nil {
				merged[i] = v
				continue
			}
			// Stored records are canonical, so equal bytes are equal
			// states, and merging a state with itself changes nothing.
			if bytes.Equal(merged[i], v) {
				continue
			}
			var err error
			if merged[i], err = MergeEncoded(m.table, merged[i], v); err != nil {
				return nil, nil, err
			}
		}
	}
	var repairs []send
	for _, id := range ids {
		var items []Item
		for i, v := range m.replies[id].Values {
			if merged[i] != nil && !bytes.Equal(v, merged[i]) {
				items = append(items, Item{Table: m.table, Key: m.req.Keys[i], Value: merged[i]})
			}
		}
		if len(items) > 0 {
			repairs = append(repairs, send{id: id, req: &Request{Op: OpMerge, Items: items, For: m.list[id].forOwner}})
		}
	}
	return merged, repairs, nil
}

// mergeSorted merges two key-ordered lists of records.
func mergeSorted(t Table, a, b []KeyValue, cmp func(x, y []byte) int) ([]KeyValue, error) {
	if len(a) == 0 {
		return b, nil
	}
	if len(b) == 0 {
		return a, nil
	}
	out := make([]KeyValue, 0, max(len(a), len(b)))
	i, j := 0, 0
	for i < len(a) && j < len(b) {
		switch c := cmp(a[i].Key, b[j].Key); {
		case c < 0:
			out = append(out, a[i])
			i++
		case c > 0:
			out = append(out, b[j])
			j++
		default:
			v := a[i].Value
			if !bytes.Equal(v, b[j].Value) {
				var err error
				if v, err = MergeEncoded(t, v, b[j].Value); err != nil {
					return nil, err
				}
			}
			out = append(out, KeyValue{Key: a[i].Key, Value: v})
			i++
			j++
		}
	}
	out = append(out, a[i:]...)
	return append(out, b[j:]...), nil
}

// rangeResult merges the replies to an OpRange. Each reply that hit the
// limit is complete only up to its last key, so the merge is cut at the
// least such key; more reports whether records may follow the result.
func (m *readMachine) rangeResult() (kvs []KeyValue, more bool, repairs []send, err error) {
	if m.err != nil {
		return nil, false, nil, m.err
	}
	req := m.req
	cmp := func(a, b []byte) int {
		if req.Reverse {
			return bytes.Compare(b, a)
		}
		return bytes.Compare(a, b)
	}
	ids := m.ids()
	if len(ids) == 1 {
		// One replica (a one-node cluster, or R=1): its reply is already in
		// order and needs no merging.
		r := m.replies[ids[0]].Range
		return r, req.Limit > 0 && len(r) >= req.Limit, nil, nil
	}
	var bound []byte
	for _, id := range ids {
		r := m.replies[id]
		if req.Limit > 0 && len(r.Range) >= req.Limit {
			more = true
			last := r.Range[len(r.Range)-1].Key
			if bound == nil || cmp(last, bound) < 0 {
				bound = last
			}
		}
	}
	// The replies are each in order: merge them like sorted lists, merging
	// the records of a key that several replicas returned.
	for _, id := range ids {
		kvs, err = mergeSorted(m.table, kvs, m.replies[id].Range, cmp)
		if err != nil {
			return nil, false, nil, err
		}
	}
	if bound != nil {
		cut := len(kvs)
		for i, kv := range kvs {
			if cmp(kv.Key, bound) > 0 {
				cut = i
				break
			}
		}
		kvs = kvs[:cut]
	}
	if len(ids) > 1 {
		for _, id := range ids {
			have := make(map[string][]byte, len(m.replies[id].Range))
			for _, kv := range m.replies[id].Range {
				have[string(kv.Key)] = kv.Value
			}
			var items []Item
			for _, kv := range kvs {
				if !bytes.Equal(have[string(kv.Key)], kv.Value) {
					items = append(items, Item{Table: m.table, Key: kv.Key, Value: kv.Value})
				}
			}
			if len(items) > 0 {
				repairs = append(repairs, send{id: id, req: &Request{Op: OpMerge, Items: items, For: m.list[id].forOwner}})
			}
		}
	}
	return kvs, more, repairs, nil
}
