package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"slices"
	"sync"
)

// Placement is what the index needs of the ring: the partition of a
// placement key and the preference list of a partition.
type Placement interface {
	Partition(pk []byte) uint16
	BlobPartition(id BlobID) uint16
	Owners(p uint16) []string
}

// Config configures an Index coordinator.
type Config struct {
	Self      string           // this node's id
	Placement func() Placement // the current ring; called per request
	Store     *Store           // this node's replica store
	// Transport reaches other nodes; nil in a one-node cluster.
	Transport Transport
	// Clock issues timestamps; nil means a wall-clock HLC.
	Clock *Clock
	// N, W, R are the replication factor and the write and read quorums;
	// zero means 1 and majorities. A partition with fewer owners than a
	// quorum needs all of them.
	N, W, R int
	Logger  *slog.Logger
	// OnRepair, if set, counts records sent by read repair.
	OnRepair func(t Table, n int)
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
	return &Index{cfg: cfg, seed: maphash.MakeSeed()}
}

// Clock returns the coordinator's hybrid logical clock.
func (ix *Index) Clock() *Clock { return ix.cfg.Clock }

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

func (ix *Index) owners(part uint16) []string {
	return ix.cfg.Placement().Owners(part)
}

func quorum(want, owners int) int { return min(want, owners) }

// call sends req to node, serving it locally when node is this one.
func (ix *Index) call(ctx context.Context, node string, req *Request) (*Response, error) {
	if node == ix.cfg.Self {
		return ix.cfg.Store.Serve(req)
	}
	if ix.cfg.Transport == nil {
		return nil, fmt.Errorf("index: no transport to reach %s", node)
	}
	return ix.cfg.Transport.Call(ctx, node, req)
}

// fanout sends one request per owner and returns once need of them
// succeeded (or all answered). Replies arrive in owner order in the result
// slice; failed owners have a nil response.
func (ix *Index) fanout(ctx context.Context, owners []string, need int, req func(node string) *Request) ([]*Response, error) {
	if len(owners) == 1 {
		r, err := ix.call(ctx, owners[0], req(owners[0]))
		if err != nil {
			return nil, fmt.Errorf("%w: %w", ErrQuorum, err)
		}
		return []*Response{r}, nil
	}
	type reply struct {
		i   int
		r   *Response
		err error
	}
	ch := make(chan reply, len(owners))
	for i, n := range owners {
		go func() {
			r, err := ix.call(ctx, n, req(n))
			ch <- reply{i, r, err}
		}()
	}
	out := make([]*Response, len(owners))
	ok, answered := 0, 0
	var errs []error
	for answered < len(owners) {
		select {
		case rep := <-ch:
			answered++
			if rep.err != nil {
				errs = append(errs, rep.err)
				continue
			}
			out[rep.i] = rep.r
			ok++
			if ok >= need {
				return out, nil
			}
		case <-ctx.Done():
			return nil, fmt.Errorf("%w: %w", ErrQuorum, ctx.Err())
		}
	}
	return nil, fmt.Errorf("%w: %d of %d owners answered, %d needed: %w", ErrQuorum, ok, len(owners), need, errors.Join(errs...))
}

// Put merges records into their owners and returns once a write quorum of
// each record's owners has them durably. Records sharing a partition
// travel in one request.
func (ix *Index) Put(ctx context.Context, recs ...Record) error {
	type group struct {
		owners []string
		items  []Item
	}
	groups := map[uint16]*group{}
	var order []uint16
	for _, r := range recs {
		part := ix.partition(r.Table, r.PK)
		g := groups[part]
		if g == nil {
			g = &group{owners: ix.owners(part)}
			groups[part] = g
			order = append(order, part)
		}
		g.items = append(g.items, Item{Table: r.Table, Key: RecordKey(part, r.Table, r.PK, r.SK), Value: r.Value})
	}
	for _, part := range order {
		g := groups[part]
		req := &Request{Op: OpMerge, Items: g.items, Sync: true}
		if _, err := ix.fanout(ctx, g.owners, quorum(ix.cfg.W, len(g.owners)), func(string) *Request { return req }); err != nil {
			return fmt.Errorf("put %d records in partition %d: %w", len(g.items), part, err)
		}
	}
	return nil
}

// Get reads one record from a read quorum of its owners, merges the
// replies, and repairs owners that answered with a stale state. It returns
// nil when no owner has the record.
func (ix *Index) Get(ctx context.Context, t Table, pk, sk []byte) ([]byte, error) {
	part := ix.partition(t, pk)
	key := RecordKey(part, t, pk, sk)
	owners := ix.owners(part)
	req := &Request{Op: OpGet, Keys: [][]byte{key}}
	resps, err := ix.fanout(ctx, owners, quorum(ix.cfg.R, len(owners)), func(string) *Request { return req })
	if err != nil {
		return nil, fmt.Errorf("get %v record: %w", t, err)
	}
	var merged []byte
	for _, r := range resps {
		if r == nil || r.Values[0] == nil {
			continue
		}
		if merged == nil {
			merged = r.Values[0]
			continue
		}
		if merged, err = MergeEncoded(t, merged, r.Values[0]); err != nil {
			return nil, fmt.Errorf("get %v record: %w", t, err)
		}
	}
	if merged != nil {
		ix.repair(ctx, t, owners, resps, [][]byte{key}, [][]byte{merged}, func(r *Response, i int) []byte { return r.Values[i] })
	}
	return merged, nil
}

// repair sends the merged state to every owner that answered with
// something else. It runs in the background: the reader already has its
// answer, and anti-entropy catches whatever a lost repair misses.
func (ix *Index) repair(ctx context.Context, t Table, owners []string, resps []*Response, keys, merged [][]byte, got func(*Response, int) []byte) {
	for oi, r := range resps {
		if r == nil {
			continue
		}
		var items []Item
		for i := range keys {
			if !bytes.Equal(got(r, i), merged[i]) {
				items = append(items, Item{Table: t, Key: keys[i], Value: merged[i]})
			}
		}
		if len(items) == 0 {
			continue
		}
		if ix.cfg.OnRepair != nil {
			ix.cfg.OnRepair(t, len(items))
		}
		node := owners[oi]
		go func() {
			ctx := context.WithoutCancel(ctx)
			if _, err := ix.call(ctx, node, &Request{Op: OpMerge, Items: items}); err != nil {
				ix.cfg.Logger.Warn("read repair failed", "node", node, "table", t.String(), "err", err)
			}
		}()
	}
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
	part := ix.partition(t, pk)
	prefix := recordPrefix(part, t, pk)
	lo := RecordKey(part, t, pk, from)
	hi := prefixEnd(prefix)
	if to != nil {
		hi = RecordKey(part, t, pk, to)
	}
	owners := ix.owners(part)
	req := &Request{Op: OpRange, Lo: lo, Hi: hi, Limit: limit, Reverse: reverse}
	resps, err := ix.fanout(ctx, owners, quorum(ix.cfg.R, len(owners)), func(string) *Request { return req })
	if err != nil {
		return nil, false, fmt.Errorf("range %v: %w", t, err)
	}
	// Each owner's reply is complete only up to its last key when it hit
	// the limit; the merge is complete up to the least such key.
	var bound []byte
	cmp := func(a, b []byte) int {
		if reverse {
			return bytes.Compare(b, a)
		}
		return bytes.Compare(a, b)
	}
	merged := map[string][]byte{}
	for _, r := range resps {
		if r == nil {
			continue
		}
		if limit > 0 && len(r.Range) >= limit {
			more = true
			last := r.Range[len(r.Range)-1].Key
			if bound == nil || cmp(last, bound) < 0 {
				bound = last
			}
		}
		for _, kv := range r.Range {
			if cur, ok := merged[string(kv.Key)]; ok {
				if merged[string(kv.Key)], err = MergeEncoded(t, cur, kv.Value); err != nil {
					return nil, false, fmt.Errorf("range %v: %w", t, err)
				}
				continue
			}
			merged[string(kv.Key)] = kv.Value
		}
	}
	keys := make([]string, 0, len(merged))
	for k := range merged {
		if bound == nil || cmp([]byte(k), bound) <= 0 {
			keys = append(keys, k)
		}
	}
	slices.SortFunc(keys, func(a, b string) int { return cmp([]byte(a), []byte(b)) })
	if len(resps) > 1 {
		kb := make([][]byte, len(keys))
		vals := make([][]byte, len(keys))
		for i, k := range keys {
			kb[i], vals[i] = []byte(k), merged[k]
		}
		ix.repairRange(ctx, t, owners, resps, kb, vals)
	}
	entries = make([]RangeEntry, len(keys))
	for i, k := range keys {
		entries[i] = RangeEntry{SK: []byte(k[len(prefix):]), Value: merged[k]}
	}
	return entries, more, nil
}

func (ix *Index) repairRange(ctx context.Context, t Table, owners []string, resps []*Response, keys, vals [][]byte) {
	for oi, r := range resps {
		if r == nil {
			continue
		}
		have := make(map[string][]byte, len(r.Range))
		for _, kv := range r.Range {
			have[string(kv.Key)] = kv.Value
		}
		one := []*Response{r}
		ix.repair(ctx, t, owners[oi:oi+1], one, keys, vals, func(_ *Response, i int) []byte { return have[string(keys[i])] })
	}
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
