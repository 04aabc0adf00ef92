package gateway

import (
	"context"
	"sync"
	"time"

	"github.com/ringstore/ringstore/index"
)

// A write records a reference to each chunk before it stores it and
// commits its holder (the version or the part) last. Garbage collection
// counts a reference as live while its holder exists or while it is
// younger than the grace period: the second rule is what protects a write
// in progress. A write that takes longer than the grace period (a client
// trickling its body, an operator's short --gc-grace) would lose its first
// chunks to a sweep before it commits, and be acknowledged without them.
//
// refKeeper closes that: while its write runs, it records the write's
// references again every quarter of the grace period, so they never get
// old, and before the commit it refuses to go on if it could not (the
// index unreachable for half the grace period): the chunks may then be
// gone, and the client is told to retry instead of getting an object it
// cannot read.

// refKeeper keeps the references of one write in progress young.
type refKeeper struct {
	s      *Server
	holder index.Ref
	every  time.Duration

	mu      sync.Mutex // guards the following fields
	ids     map[index.BlobID]struct{}
	fresh   time.Time // the last time every reference was recorded
	stopped bool
	stopc   chan struct{}
	done    chan struct{}
}

// keepRefs returns the keeper of a write by holder. Its stop must be
// called when the write has committed or failed.
func (s *Server) keepRefs(holder index.Ref) *refKeeper {
	return &refKeeper{s: s, holder: holder, every: s.cfg.GCGrace / 4, ids: map[index.BlobID]struct{}{}, fresh: time.Now()}
}

// record writes a reference from the write to each chunk and keeps them
// young from then on.
func (k *refKeeper) record(ctx context.Context, ids ...index.BlobID) error {
	if err := k.put(ctx, ids); err != nil {
		return err
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	for _, id := range ids {
		k.ids[id] = struct{}{}
	}
	if k.stopc == nil && k.every > 0 && !k.stopped {
		k.stopc, k.done = make(chan struct{}), make(chan struct{})
		go k.run()
	}
	return nil
}

// put records the references of ids, created now.
func (k *refKeeper) put(ctx context.Context, ids []index.BlobID) error {
	ref := k.holder
	ref.Created = k.s.cfg.Index.Clock().Now()
	val := index.EncodeRef(&ref)
	for i := 0; i < len(ids); i += 256 {
		var recs []index.Record
		for _, id := range ids[i:min(i+256, len(ids))] {
			recs = append(recs, index.Record{Table: index.TableRefs, PK: append([]byte(nil), id[:]...), SK: ref.WriteID[:], Value: val})
		}
		if err := k.s.cfg.Index.Put(ctx, recs...); err != nil {
			return err
		}
	}
	return nil
}

func (k *refKeeper) run() {
	defer close(k.done)
	t := time.NewTicker(k.every)
	defer t.Stop()
	for {
		select {
		case <-k.stopc:
			return
		case <-t.C:
		}
		start := time.Now()
		k.mu.Lock()
		ids := make([]index.BlobID, 0, len(k.ids))
		for id := range k.ids {
			ids = append(ids, id)
		}
		k.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), k.every)
		err := k.put(ctx, ids)
		cancel()
		if err != nil {
			k.s.cfg.Logger.Warn("could not renew the references of a write in progress", "key", k.holder.Key, "err", err)
			continue
		}
		k.mu.Lock()
		k.fresh = start
		k.mu.Unlock()
	}
}

// check reports whether the write's references are young enough for the
// write to commit: recorded again within half the grace period, so none
// can have been collected and none can be before the commit lands.
func (k *refKeeper) check() error {
	if k.every <= 0 {
		return nil
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	if len(k.ids) > 0 && time.Since(k.fresh) > 2*k.every {
		return ErrServiceUnavailable.msg("The upload took longer than the store could keep its data reserved; please retry.")
	}
	return nil
}

// stop ends the renewals; the write has committed or failed.
func (k *refKeeper) stop() {
	k.mu.Lock()
	stopc, done := k.stopc, k.done
	k.stopped = true
	k.mu.Unlock()
	if stopc != nil {
		close(stopc)
		<-done
	}
}
