package index

import (
	"context"
	"fmt"
	"slices"
)

// Hinted handoff (Dynamo §4.6): a fallback that accepted writes for an
// unreachable owner keeps them as hints, durably, in its own store. When
// the owner is reachable again the hints are merged into it, and each hint
// is deleted only after the owner acknowledged it durably, and only if it
// did not change in the meantime.

// handoffBatch is the number of hints sent to an owner in one request.
const handoffBatch = 256

// handoffMachine delivers one batch of hints to their owner.
type handoffMachine struct {
	owner string
	items []Item
	done  bool
	err   error
}

func (m *handoffMachine) start() []send {
	return []send{{id: 0, req: &Request{Op: OpMerge, Items: m.items, Sync: true}}}
}

func (m *handoffMachine) step(r reply) []send {
	m.done, m.err = true, r.err
	return nil
}

func (m *handoffMachine) finished() bool      { return m.done }
func (m *handoffMachine) targetOf(int) target { return target{node: m.owner} }

// Handoff delivers the hints this node holds to every owner that is alive,
// and returns how many it delivered. A hint for a partition its owner no
// longer owns (the owner was removed, or the partition moved away) goes to
// the partition's current owners with a quorum write instead: held back,
// it would never be delivered, and kept for a node that is gone for good,
// it would stay on this disk forever.
func (ix *Index) Handoff(ctx context.Context) (int, error) {
	owners, err := ix.cfg.Store.HintOwners()
	if err != nil {
		return 0, err
	}
	delivered := 0
	p := ix.cfg.Placement()
	for _, owner := range owners {
		gone := !ownsAny(p, owner)
		if !gone && !ix.cfg.Alive(owner) {
			continue
		}
		for {
			items, err := ix.cfg.Store.Hints(owner, handoffBatch)
			if err != nil {
				return delivered, err
			}
			if len(items) == 0 {
				break
			}
			n, err := ix.handOver(ctx, p, owner, items)
			delivered += n
			if err != nil {
				// The owners are not reachable after all; try again later.
				ix.cfg.Logger.Debug("hint handoff failed", "owner", owner, "err", err)
				break
			}
			if len(items) < handoffBatch {
				break
			}
		}
	}
	return delivered, nil
}

// handOver delivers one batch of owner's hints: to owner those of
// partitions it still owns, to the current owners the rest. A hint is
// dropped only once its records are durable where they went.
func (ix *Index) handOver(ctx context.Context, p Placement, owner string, items []Item) (int, error) {
	var direct []Item
	moved := map[uint16][]Item{}
	var parts []uint16
	for _, it := range items {
		pk, err := ParseRecordKey(it.Key)
		if err != nil {
			return 0, fmt.Errorf("hint for %s: %w", owner, err)
		}
		if ownsPartition(p, pk.Partition, owner) {
			direct = append(direct, it)
			continue
		}
		if moved[pk.Partition] == nil {
			parts = append(parts, pk.Partition)
		}
		moved[pk.Partition] = append(moved[pk.Partition], it)
	}
	delivered := 0
	if len(direct) > 0 {
		m := &handoffMachine{owner: owner, items: direct}
		if err := ix.run(ctx, m); err != nil {
			return delivered, err
		}
		if m.err != nil {
			return delivered, m.err
		}
		if err := ix.cfg.Store.DropHints(owner, direct); err != nil {
			return delivered, fmt.Errorf("handoff to %s: %w", owner, err)
		}
		delivered += len(direct)
	}
	for _, part := range parts {
		batch := moved[part]
		m := newWrite(ix.view(part), batch, ix.cfg.W)
		if err := ix.run(ctx, m); err != nil {
			return delivered, err
		}
		if m.err != nil {
			return delivered, fmt.Errorf("hints of %s for partition %d to its owners: %w", owner, part, m.err)
		}
		if err := ix.cfg.Store.DropHints(owner, batch); err != nil {
			return delivered, fmt.Errorf("handoff of %s's hints: %w", owner, err)
		}
		delivered += len(batch)
	}
	return delivered, nil
}

// ownsPartition reports whether node is an owner of part in some active
// layout version.
func ownsPartition(p Placement, part uint16, node string) bool {
	sets := p.WriteSets(part)
	if len(sets) == 0 {
		sets = [][]string{p.Owners(part)}
	}
	for _, set := range sets {
		if slices.Contains(set, node) {
			return true
		}
	}
	return false
}

// ownsAny reports whether node owns any partition.
func ownsAny(p Placement, node string) bool {
	for part := range p.Partitions() {
		if ownsPartition(p, uint16(part), node) {
			return true
		}
	}
	return false
}
