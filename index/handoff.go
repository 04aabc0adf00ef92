package index

import (
	"context"
	"fmt"
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
// and returns how many it delivered.
func (ix *Index) Handoff(ctx context.Context) (int, error) {
	owners, err := ix.cfg.Store.HintOwners()
	if err != nil {
		return 0, err
	}
	delivered := 0
	for _, owner := range owners {
		if !ix.cfg.Alive(owner) {
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
			m := &handoffMachine{owner: owner, items: items}
			if err := ix.run(ctx, m); err != nil {
				return delivered, err
			}
			if m.err != nil {
				// The owner is not reachable after all; try again later.
				ix.cfg.Logger.Debug("hint handoff failed", "owner", owner, "err", m.err)
				break
			}
			if err := ix.cfg.Store.DropHints(owner, items); err != nil {
				return delivered, fmt.Errorf("handoff to %s: %w", owner, err)
			}
			delivered += len(items)
			if len(items) < handoffBatch {
				break
			}
		}
	}
	return delivered, nil
}
