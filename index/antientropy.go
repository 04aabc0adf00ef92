package index

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"
)

// Anti-entropy (Dynamo §4.7): the owners of each partition compare their
// record trees and exchange only what differs, so replicas converge
// without anyone's help, whatever hints and read repair missed.
//
// One round, run by every node: for each other owner it shares
// partitions with, it sends the list of shared partitions and gets their
// tree roots back (16 bytes each: an in-sync pair costs a few KiB per
// round for all its partitions). For each partition whose roots differ it
// fetches the peer's 256 leaves, then the (key, state hash) entries of the
// differing leaves, and for each differing key pulls the peer's record and
// merges it locally, and pushes its own to the peer, where it merges too.
// Both sides end with the merge of both states: the CRDT law that makes
// the order of all this irrelevant.

// caller sends one replica request to a node.
type caller func(ctx context.Context, node string, req *Request) (*Response, error)

// AEStats counts anti-entropy work; safe for concurrent reads.
type AEStats struct {
	Rounds              atomic.Int64
	PartitionsCompared  atomic.Int64
	PartitionsDiffering atomic.Int64
	RecordsPulled       atomic.Int64
	RecordsPushed       atomic.Int64
	LastRoundUnixNano   atomic.Int64
	LastRoundNanos      atomic.Int64
	// Bytes of requests and replies exchanged, as encoded on the wire.
	BytesSent, BytesReceived atomic.Int64
	LastRoundBytes           atomic.Int64
}

// aeKeysPerPartition bounds the keys repaired in one partition per round,
// so one badly diverged partition cannot monopolise a round.
const aeKeysPerPartition = 4096

// limiter is a token bucket bounding records transferred per second, so
// repair never starves client traffic.
type limiter struct {
	perSecond float64 // 0: unlimited

	mu     sync.Mutex // guards the following fields
	tokens float64
	last   time.Time
}

func (l *limiter) wait(ctx context.Context, n int) error {
	if l == nil || l.perSecond <= 0 {
		return nil
	}
	for {
		l.mu.Lock()
		now := time.Now()
		if l.last.IsZero() {
			l.last, l.tokens = now, l.perSecond
		}
		l.tokens = min(l.perSecond, l.tokens+now.Sub(l.last).Seconds()*l.perSecond)
		l.last = now
		if l.tokens >= float64(n) || l.tokens >= l.perSecond {
			l.tokens -= float64(n)
			l.mu.Unlock()
			return nil
		}
		need := time.Duration((float64(n) - l.tokens) / l.perSecond * float64(time.Second))
		l.mu.Unlock()
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(need):
		}
	}
}

// syncer runs anti-entropy for one node.
type syncer struct {
	self  string
	store *Store
	call  caller
	limit *limiter
	stats *AEStats

	roundBytes int64
	// truncated is set when a partition had more differences than one
	// exchange repairs.
	truncated bool
	// confirm is how long differences must persist to be repaired.
	confirm time.Duration
}

// send calls node and counts the bytes as the wire would carry them.
func (s *syncer) send(ctx context.Context, node string, req *Request) (*Response, error) {
	resp, err := s.call(ctx, node, req)
	s.roundBytes += int64(len(EncodeRequest(req)))
	s.stats.BytesSent.Add(int64(len(EncodeRequest(req))))
	if err == nil {
		n := int64(len(EncodeResponse(resp)))
		s.roundBytes += n
		s.stats.BytesReceived.Add(n)
	}
	return resp, err
}

// round compares every partition this node owns with each alive co-owner.
func (s *syncer) round(ctx context.Context, p Placement, alive func(string) bool) error {
	start := time.Now()
	s.roundBytes = 0
	shared := map[string][]uint16{}
	var peers []string
	for part := 0; part < p.Partitions(); part++ {
		owners := p.Owners(uint16(part))
		if !contains(owners, s.self) {
			continue
		}
		for _, o := range owners {
			if o == s.self || !alive(o) {
				continue
			}
			if _, ok := shared[o]; !ok {
				peers = append(peers, o)
			}
			shared[o] = append(shared[o], uint16(part))
		}
	}
	var errs []error
	for _, peer := range peers {
		if err := s.syncPeer(ctx, peer, shared[peer]); err != nil {
			errs = append(errs, fmt.Errorf("anti-entropy with %s: %w", peer, err))
		}
	}
	s.stats.Rounds.Add(1)
	s.stats.LastRoundUnixNano.Store(time.Now().UnixNano())
	s.stats.LastRoundNanos.Store(int64(time.Since(start)))
	s.stats.LastRoundBytes.Store(s.roundBytes)
	return errors.Join(errs...)
}

func contains(list []string, x string) bool {
	for _, v := range list {
		if v == x {
			return true
		}
	}
	return false
}

// syncPeer compares the roots of parts with peer and repairs those that
// differ.
func (s *syncer) syncPeer(ctx context.Context, peer string, parts []uint16) error {
	resp, err := s.send(ctx, peer, &Request{Op: OpTreeRoots, Parts: parts})
	if err != nil {
		return err
	}
	if len(resp.Values) != len(parts) {
		return fmt.Errorf("peer sent %d roots for %d partitions", len(resp.Values), len(parts))
	}
	type pending struct {
		part       uint16
		leaves     []byte
		mine       *Tree
		theirs     []byte
		pull, push []keyState
	}
	var work []*pending
	for i, part := range parts {
		s.stats.PartitionsCompared.Add(1)
		t, err := s.store.Tree(part)
		if err != nil {
			return err
		}
		root := t.Root()
		if bytes.Equal(root[:], resp.Values[i]) {
			continue
		}
		s.stats.PartitionsDiffering.Add(1)
		theirs, err := s.peerLeaves(ctx, peer, part)
		if err != nil {
			return fmt.Errorf("partition %d: %w", part, err)
		}
		if leaves := diffLeaves(t, theirs); len(leaves) > 0 {
			work = append(work, &pending{part: part, leaves: leaves, mine: t, theirs: theirs})
		}
	}
	if len(work) == 0 {
		return nil
	}
	if s.confirm > 0 {
		// Writes in flight reach replicas a few milliseconds apart, so a busy
		// partition always differs a little. Only leaves that still differ,
		// with neither side's hash changed, a moment later are looked into
		// (busy leaves are left to the writes replicating themselves), and
		// then only keys whose states are still the same on both sides.
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(s.confirm):
		}
		kept := work[:0]
		for _, w := range work {
			t, err := s.store.Tree(w.part)
			if err != nil {
				return err
			}
			theirs, err := s.peerLeaves(ctx, peer, w.part)
			if err != nil {
				return fmt.Errorf("partition %d: %w", w.part, err)
			}
			var stableLeaves []byte
			for _, l := range w.leaves {
				if t.Leaves[l] == w.mine.Leaves[l] && bytes.Equal(theirs[int(l)*hashBytes:(int(l)+1)*hashBytes], w.theirs[int(l)*hashBytes:(int(l)+1)*hashBytes]) {
					stableLeaves = append(stableLeaves, l)
				}
			}
			if len(stableLeaves) > 0 {
				w.leaves = stableLeaves
				kept = append(kept, w)
			}
		}
		work = kept
	}
	for _, w := range work {
		pull, push, err := s.differences(ctx, peer, w.part, w.leaves)
		if err != nil {
			return fmt.Errorf("partition %d: %w", w.part, err)
		}
		if err := s.exchange(ctx, peer, pull, push); err != nil {
			return fmt.Errorf("partition %d: %w", w.part, err)
		}
	}
	return nil
}

// peerLeaves fetches the 256 leaves of peer's tree of part.
func (s *syncer) peerLeaves(ctx context.Context, peer string, part uint16) ([]byte, error) {
	resp, err := s.send(ctx, peer, &Request{Op: OpTreeLeaves, Parts: []uint16{part}})
	if err != nil {
		return nil, err
	}
	if len(resp.Values) != 1 || len(resp.Values[0]) != treeLeaves*hashBytes {
		return nil, errors.New("peer sent a malformed tree")
	}
	return resp.Values[0], nil
}

// diffLeaves lists the leaves where theirs differs from mine.
func diffLeaves(mine *Tree, theirs []byte) []byte {
	var leaves []byte
	for i := range mine.Leaves {
		if !bytes.Equal(mine.Leaves[i][:], theirs[i*hashBytes:(i+1)*hashBytes]) {
			leaves = append(leaves, byte(i))
		}
	}
	return leaves
}

// exchange pulls the peer's states of pull and pushes ours of push; both
// sides merge.
func (s *syncer) exchange(ctx context.Context, peer string, pull, push []keyState) error {
	if len(pull) > aeKeysPerPartition || len(push) > aeKeysPerPartition {
		s.truncated = true
	}
	pull, push = pull[:min(len(pull), aeKeysPerPartition)], push[:min(len(push), aeKeysPerPartition)]
	for i := 0; i < len(pull); i += 256 {
		batch := keysOf(pull[i:min(i+256, len(pull))])
		if err := s.limit.wait(ctx, len(batch)); err != nil {
			return err
		}
		resp, err := s.send(ctx, peer, &Request{Op: OpGet, Keys: batch})
		if err != nil {
			return err
		}
		var items []Item
		for j, v := range resp.Values {
			if v == nil || j >= len(batch) {
				continue
			}
			p, err := ParseRecordKey(batch[j])
			if err != nil {
				return err
			}
			items = append(items, Item{Table: p.Table, Key: batch[j], Value: v})
		}
		if _, err := s.store.Merge(items, true); err != nil {
			return err
		}
		s.stats.RecordsPulled.Add(int64(len(items)))
	}
	for i := 0; i < len(push); i += 256 {
		batch := keysOf(push[i:min(i+256, len(push))])
		if err := s.limit.wait(ctx, len(batch)); err != nil {
			return err
		}
		var items []Item
		for _, k := range batch {
			v, err := s.store.Get(k)
			if err != nil {
				return err
			}
			if v == nil {
				continue
			}
			p, err := ParseRecordKey(k)
			if err != nil {
				return err
			}
			items = append(items, Item{Table: p.Table, Key: k, Value: v})
		}
		if len(items) == 0 {
			continue
		}
		if _, err := s.send(ctx, peer, &Request{Op: OpMerge, Items: items, Sync: true}); err != nil {
			return err
		}
		s.stats.RecordsPushed.Add(int64(len(items)))
	}
	return nil
}

// keyState is a key with the hashes of its state on each side.
type keyState struct {
	key           []byte
	local, theirs string
}

// differences lists the keys of the given leaves whose states differ
// between this node and peer: those to pull (the peer has a state) and
// those to push (this node has one).
func (s *syncer) differences(ctx context.Context, peer string, part uint16, leaves []byte) (pull, push []keyState, err error) {
	local, err := s.store.LeafEntries(part, leaves)
	if err != nil {
		return nil, nil, err
	}
	resp, err := s.send(ctx, peer, &Request{Op: OpLeafEntries, Parts: []uint16{part}, Leaves: leaves})
	if err != nil {
		return nil, nil, err
	}
	remote := map[string][]byte{}
	for _, kv := range resp.Range {
		remote[string(kv.Key)] = kv.Value
	}
	for _, e := range local {
		h, ok := remote[string(e.Key)]
		if !ok || !bytes.Equal(h, e.Hash[:]) {
			ks := keyState{key: e.Key, local: string(e.Hash[:]), theirs: string(h)}
			push = append(push, ks)
			if ok {
				pull = append(pull, ks)
			}
		}
		delete(remote, string(e.Key))
	}
	for k, h := range remote {
		pull = append(pull, keyState{key: []byte(k), theirs: string(h)})
	}
	return pull, push, nil
}

func keysOf(ks []keyState) [][]byte {
	out := make([][]byte, len(ks))
	for i, k := range ks {
		out[i] = k.key
	}
	return out
}

// AntiEntropy runs rounds every interval until ctx is done, transferring
// at most perSecond records per second (0: unlimited).
func (ix *Index) AntiEntropy(ctx context.Context, interval time.Duration, perSecond float64) {
	s := ix.syncer(perSecond)
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := s.round(ctx, ix.cfg.Placement(), ix.cfg.Alive); err != nil && ctx.Err() == nil {
			ix.cfg.Logger.Warn("anti-entropy round", "err", err)
		}
	}
}

// AntiEntropyRound runs one round now.
func (ix *Index) AntiEntropyRound(ctx context.Context) error {
	return ix.syncer(0).round(ctx, ix.cfg.Placement(), ix.cfg.Alive)
}

func (ix *Index) syncer(perSecond float64) *syncer {
	return &syncer{self: ix.cfg.Self, store: ix.cfg.Store, call: ix.call, limit: &limiter{perSecond: perSecond}, stats: &ix.aeStats, confirm: ix.cfg.AEConfirm}
}

// AEStats returns the node's anti-entropy counters.
func (ix *Index) AEStats() *AEStats { return &ix.aeStats }
