package index

import (
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"sync"
	"time"

	"github.com/ringstore/ringstore/internal/workers"
)

// Placement is what the index needs of the ring: the partition of a
// placement key, the owners reads go to, the owner sets writes go to (one
// per active layout version: more than one while data moves after a
// layout change), and the fallbacks to use, in order, when owners are
// unreachable.
type Placement interface {
	Partition(pk []byte) uint16
	BlobPartition(id BlobID) uint16
	Owners(p uint16) []string
	WriteSets(p uint16) [][]string
	Fallbacks(p uint16) []string
	Partitions() int
}

// Config configures an Index coordinator.
type Config struct {
	Self      string           // this node's id
	Placement func() Placement // the current ring; called per request
	Store     *Store           // this node's replica store
	// Transport reaches other nodes; nil in a one-node cluster.
	Transport Transport
	// Alive reports whether a node is believed reachable (membership
	// liveness); nil means every node is.
	Alive func(node string) bool
	// Clock issues timestamps; nil means a wall-clock HLC.
	Clock *Clock
	// N, W, R are the replication factor and the write and read quorums;
	// zero means 1 and majorities. A partition with fewer owners than a
	// quorum needs all of them.
	N, W, R int
	// RequestTimeout bounds one request to one replica; 0 means 5s.
	RequestTimeout time.Duration
	Logger         *slog.Logger
	// OnRepair, if set, counts records sent by read repair.
	OnRepair func(t Table, n int)
	// OnDigestMiss, if set, counts single-record reads whose digest read
	// did not settle them (replicas disagreed, or one failed), so they
	// were read again in full.
	OnDigestMiss func(t Table)
	// AEConfirm is how long a difference anti-entropy finds must persist,
	// unchanged, before it is repaired; 0 repairs at once.
	AEConfirm time.Duration
}

// Index coordinates quorum reads and writes of records. Any node
// coordinates any request: it sends the request to the owners of the
// record's partition (serving itself locally) and answers once a quorum
// did.
type Index struct {
	cfg  Config
	seed maphash.Seed
	// updateLocks serialise read-check-write updates (conditional writes,
	// bucket creation) per record on this coordinator. That is exact in a
	// one-node cluster; across coordinators it is the seam where a
	// cluster-wide mechanism plugs in.
	updateLocks [256]sync.Mutex
	aeStats     AEStats
	// local runs requests to this node's own store on reused goroutines:
	// a fresh goroutine's stack grows and is copied on the way down into
	// pebble every time.
	local *workers.Pool
}

// ErrQuorum means fewer owners than the quorum answered.
var ErrQuorum = errors.New("index: quorum not reached")

// New returns a coordinator.
func New(cfg Config) *Index {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = NewClock(nil)
	}
	if cfg.N <= 0 {
		cfg.N = 1
	}
	if cfg.W <= 0 {
		cfg.W = cfg.N/2 + 1
	}
	if cfg.R <= 0 {
		cfg.R = cfg.N/2 + 1
	}
	if cfg.Alive == nil {
		cfg.Alive = func(string) bool { return true }
	}
	if cfg.RequestTimeout <= 0 {
		cfg.RequestTimeout = 5 * time.Second
	}
	return &Index{cfg: cfg, seed: maphash.MakeSeed(), local: workers.New(10 * time.Second)}
}

// Clock returns the coordinator's hybrid logical clock.
func (ix *Index) Clock() *Clock { return ix.cfg.Clock }

// Store returns this node's replica store.
func (ix *Index) Store() *Store { return ix.cfg.Store }

// Record addresses one record.
type Record struct {
	Table  Table
	PK, SK []byte
	Value  []byte // encoded record; for writes
}

func (ix *Index) partition(t Table, pk []byte) uint16 {
	p := ix.cfg.Placement()
	if t == TableRefs && len(pk) == len(BlobID{}) {
		return p.BlobPartition(BlobID(pk))
	}
	return p.Partition(pk)
}

func (ix *Index) view(part uint16) view {
	p := ix.cfg.Placement()
	return view{
		owners:    p.Owners(part),
		sets:      p.WriteSets(part),
		fallbacks: func() []string { return p.Fallbacks(part) },
		alive:     ix.cfg.Alive,
	}
}

// call sends req to node, serving it locally when node is this one.
func (ix *Index) call(ctx context.Context, node string, req *Request) (*Response, error) {
	if node == ix.cfg.Self {
		return ix.cfg.Store.Serve(req)
	}
	if ix.cfg.Transport == nil {
		return nil, fmt.Errorf("index: no transport to reach %s", node)
	}
	req.Clock = ix.cfg.Clock.Peek()
	ctx, cancel := context.WithTimeout(ctx, ix.cfg.RequestTimeout)
	defer cancel()
	resp, err := ix.cfg.Transport.Call(ctx, node, req)
	if err == nil {
		ix.cfg.Clock.Observe(resp.Clock)
	}
	return resp, err
}

// run drives a machine to completion over the transport.
func (ix *Index) run(ctx context.Context, m machine) error {
	sends := m.start()
	// The common one-node case: one local request, no goroutines.
	if len(sends) == 1 && m.targetOf(sends[0].id).node == ix.cfg.Self {
		resp, err := ix.cfg.Store.Serve(sends[0].req)
		sends = m.step(reply{id: sends[0].id, resp: resp, err: err})
		if m.finished() {
			return nil
		}
	}
	replies := make(chan reply, 8)
	stop := make(chan struct{})
	defer close(stop)
	inflight := 0
	dispatch := func(ss []send) {
		for _, s := range ss {
			inflight++
			node := m.targetOf(s.id).node
			// Each request runs on a goroutine of its own, remote ones too:
			// a write to an owner that stopped reading blocks, and must
			// block only that request, never this loop (an asynchronous send
			// from here stalled every quorum behind one hung owner:
			// TestQuorumOutlivesAHungOwner).
			send := func() {
				resp, err := ix.call(ctx, node, s.req)
				select {
				case replies <- reply{id: s.id, resp: resp, err: err}:
				case <-stop:
				}
			}
			if node == ix.cfg.Self {
				ix.local.Go(send)
			} else {
				go send()
			}
		}
	}
	dispatch(sends)
	for !m.finished() {
		if inflight == 0 {
			return fmt.Errorf("index: operation stalled with nothing in flight")
		}
		select {
		case r := <-replies:
			inflight--
			dispatch(m.step(r))
		case <-ctx.Done():
			return fmt.Errorf("%w: %w", ErrQuorum, ctx.Err())
		}
	}
	return nil
}

// repair sends read-repair merges in the background: the reader already
// has its answer, and anti-entropy catches whatever a lost repair misses.
func (ix *Index) repair(ctx context.Context, m machine, t Table, repairs []send) {
	for _, s := range repairs {
		if ix.cfg.OnRepair != nil {
			ix.cfg.OnRepair(t, len(s.req.Items))
		}
		node := m.targetOf(s.id).node
		go func() {
			ctx := context.WithoutCancel(ctx)
			if _, err := ix.call(ctx, node, s.req); err != nil {
				ix.cfg.Logger.Warn("read repair failed", "node", node, "table", t.String(), "err", err)
			}
		}()
	}
}

// Put merges records into their owners and returns once a write quorum of
// each record's partition has them durably. Records sharing a partition
// travel in one request; partitions are written in parallel.
func (ix *Index) Put(ctx context.Context, recs ...Record) error {
	type group struct {
		part  uint16
		items []Item
	}
	var groups []*group
	byPart := map[uint16]*group{}
	for _, r := range recs {
		part := ix.partition(r.Table, r.PK)
		g := byPart[part]
		if g == nil {
			g = &group{part: part}
			byPart[part] = g
			groups = append(groups, g)
		}
		g.items = append(g.items, Item{Table: r.Table, Key: RecordKey(part, r.Table, r.PK, r.SK), Value: r.Value})
	}
	putGroup := func(g *group) error {
		m := newWrite(ix.view(g.part), g.items, ix.cfg.W)
		if err := ix.run(ctx, m); err != nil {
			return fmt.Errorf("put %d records in partition %d: %w", len(g.items), g.part, err)
		}
		if m.err != nil {
			return fmt.Errorf("put %d records in partition %d: %w", len(g.items), g.part, m.err)
		}
		return nil
	}
	if len(groups) == 1 {
		return putGroup(groups[0])
	}
	errs := make([]error, len(groups))
	var wg sync.WaitGroup
	for i, g := range groups {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = putGroup(g)
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// Get reads one record from a read quorum of its owners, merges the
// replies, and repairs owners that answered with a stale state. It returns
// nil when no owner has the record.
func (ix *Index) Get(ctx context.Context, t Table, pk, sk []byte) ([]byte, error) {
	part := ix.partition(t, pk)
	key := RecordKey(part, t, pk, sk)
	req := &Request{Op: OpGet, Keys: [][]byte{key}}
	// First one record and R-1 digests; only when they disagree, or a
	// target fails, the full read below, which merges and repairs.
	if ix.cfg.R > 1 {
		d := newRead(ix.view(part), t, req, ix.cfg.R).withSelf(ix.cfg.Self).withDigests()
		if err := ix.run(ctx, d); err == nil {
			if vals, ok := d.digestResult(); ok {
				return vals[0], nil
			}
		}
		if ix.cfg.OnDigestMiss != nil {
			ix.cfg.OnDigestMiss(t)
		}
	}
	m := newRead(ix.view(part), t, req, ix.cfg.R).withSelf(ix.cfg.Self)
	if err := ix.run(ctx, m); err != nil {
		return nil, fmt.Errorf("get %v record: %w", t, err)
	}
	vals, repairs, err := m.getResult()
	if err != nil {
		return nil, fmt.Errorf("get %v record: %w", t, err)
	}
	ix.repair(ctx, m, t, repairs)
	return vals[0], nil
}

// RangeEntry is one record returned by Range.
type RangeEntry struct {
	SK    []byte
	Value []byte
}

// Range reads up to limit records of one placement key with sort keys in
// [from, to) (to nil: no bound), ascending or descending, from a read
// quorum of owners, merged. more reports whether records may follow.
func (ix *Index) Range(ctx context.Context, t Table, pk, from, to []byte, limit int, reverse bool) (entries []RangeEntry, more bool, err error) {
	return ix.rangeRead(ctx, t, pk, from, to, limit, reverse, false)
}

// rangeRead is Range; noInline (object records only) reads the records
// without their inline bodies (Request.NoInline). Such records are not
// whole, so replicas found to differ are not repaired from them: a
// version merged in without its body would lose it. Anti-entropy and
// full reads repair them.
func (ix *Index) rangeRead(ctx context.Context, t Table, pk, from, to []byte, limit int, reverse, noInline bool) (entries []RangeEntry, more bool, err error) {
	part := ix.partition(t, pk)
	prefix := recordPrefix(part, t, pk)
	lo := RecordKey(part, t, pk, from)
	hi := prefixEnd(prefix)
	if to != nil {
		hi = RecordKey(part, t, pk, to)
	}
	m := newRead(ix.view(part), t, &Request{Op: OpRange, Lo: lo, Hi: hi, Limit: limit, Reverse: reverse, NoInline: noInline}, ix.cfg.R).withSelf(ix.cfg.Self)
	if err := ix.run(ctx, m); err != nil {
		return nil, false, fmt.Errorf("range %v: %w", t, err)
	}
	kvs, more, repairs, err := m.rangeResult()
	if err != nil {
		return nil, false, fmt.Errorf("range %v: %w", t, err)
	}
	if !noInline {
		ix.repair(ctx, m, t, repairs)
	}
	entries = make([]RangeEntry, len(kvs))
	for i, kv := range kvs {
		entries[i] = RangeEntry{SK: kv.Key[len(prefix):], Value: kv.Value}
	}
	return entries, more, nil
}

// lockUpdate serialises read-check-write updates of one record on this
// coordinator.
func (ix *Index) lockUpdate(t Table, pk, sk []byte) func() {
	var h maphash.Hash
	h.SetSeed(ix.seed)
	h.WriteByte(byte(t))
	h.Write(pk)
	h.WriteByte(0)
	h.Write(sk)
	m := &ix.updateLocks[h.Sum64()%uint64(len(ix.updateLocks))]
	m.Lock()
	return m.Unlock
}
