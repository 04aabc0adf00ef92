package index

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/ringstore/ringstore/internal/workers"
)

// Store is a node's local record store on pebble: the replica side of the
// index. It is the only file in package index that touches the disk.
//
// Writes are merges: Merge reads the stored record, joins the incoming one
// with the table's CRDT merge, and writes the result back, all under a
// striped per-key lock so concurrent merges of one key never lose an
// update. Synced writes from concurrent requests share WAL fsyncs through
// pebble's commit pipeline (group commit).
type Store struct {
	db      *pebble.DB
	seed    maphash.Seed
	stripes [256]sync.Mutex // serialise read-merge-write per key (by hash)

	// closeMu is held shared by every operation and exclusively by Close,
	// so requests still in flight on background goroutines (replies a
	// coordinator stopped waiting for, read repairs) finish or fail with
	// ErrClosed instead of touching a closed pebble.
	closeMu sync.RWMutex
	closed  bool

	// filters hold every key written, so the read before a merge can skip
	// keys that are certainly new (keyfilter.go); filterBusy is set while
	// one is being built.
	filters      atomic.Pointer[filterSet]
	filterBusy   atomic.Bool
	filterFailed atomic.Int64 // unix nanoseconds of the last failed growth scan
	log          *slog.Logger

	// cacheBytes and memTableBytes are the block cache and memtable sizes
	// the store was opened with.
	cacheBytes    int64
	memTableBytes uint64

	// disk is what the filesystem saw of the disk (diskfull.go); diskFull
	// is StoreOptions.DiskFull.
	disk     *diskState
	diskFull func() bool
	// roomy is StoreOptions.Roomy.
	roomy func() bool
	// fullWait is how long a write already in flight when the disk fills
	// is waited for before its caller is answered ErrDiskFull.
	fullWait time.Duration
	// commits counts the goroutines of commits (commit), which may
	// outlive a caller that stopped waiting.
	commits sync.WaitGroup
	// committers runs synced commits: reused goroutines keep the stack a
	// pebble commit grows, which a fresh goroutine per commit grew again
	// each time.
	committers *workers.Pool
}

// ErrClosed is returned by operations on a closed Store.
var ErrClosed = errors.New("index: store closed")

func (s *Store) enter() error {
	s.closeMu.RLock()
	if s.closed {
		s.closeMu.RUnlock()
		return ErrClosed
	}
	return nil
}

func (s *Store) leave() { s.closeMu.RUnlock() }

// StoreOptions tunes a Store; the zero value is a good default.
type StoreOptions struct {
	// FS replaces the real filesystem (tests use vfs.NewMem or a crashable
	// in-memory FS).
	FS vfs.FS
	// MemoryBytes is the store's memory budget; 0 means DefaultMemory.
	// Half of it is the block cache; the other half is for memtables, of
	// which up to four (one being written, three waiting for a flush) may
	// be held at once, each an eighth of the budget on average.
	MemoryBytes int64
	// CacheBytes, if set, replaces the block cache size MemoryBytes gives.
	CacheBytes int64
	Logger     *slog.Logger
	// WALSyncDelay, when set, is asked after each sync of the write-ahead
	// log how long the next sync must wait (pebble's WALMinSyncInterval):
	// writes committed meanwhile share that sync. Nil or 0 syncs at once.
	WALSyncDelay func() time.Duration
	// MemTableSize, if set, replaces the size drawn from MemoryBytes
	// (tests use small ones).
	MemTableSize uint64
	// DiskFull, if set, is asked before every write; while it answers
	// true the store refuses writes with ErrDiskFull. A server answers
	// true below its reserve of free space, so that the log never meets
	// a full disk in normal operation.
	DiskFull func() bool
	// Roomy, if set, reports that the disk has room well beyond what the
	// writes in flight can take (a server: free space of at least twice
	// its floor). Synced commits then run on their caller's goroutine;
	// otherwise, and without Roomy, each is handed to a worker so that
	// its caller's wait stays bounded should the disk fill up under it.
	Roomy func() bool

	// Tests: buffer writes as a server's store does (writeBufferFS) on FS
	// too; the wait for writes in flight when the disk fills; the longest
	// wait between attempts of a write that found the disk full.
	bufferWrites bool
	fullWait     time.Duration
	retryMax     time.Duration
}

// DefaultMemory is the index store's default memory budget: a 256 MiB
// block cache and memtables of 48-80 MiB.
const DefaultMemory = 512 << 20

// MinMemory and MaxMemory bound a store's memory budget; past the most, a
// memtable would outgrow pebble's limit of 4 GiB.
const (
	MinMemory = 16 << 20
	MaxMemory = 16 << 30
)

// OpenStore opens (creating if needed) the store in dir.
func OpenStore(dir string, o StoreOptions) (*Store, error) {
	if o.MemoryBytes == 0 {
		o.MemoryBytes = DefaultMemory
	}
	if o.MemoryBytes < MinMemory || o.MemoryBytes > MaxMemory {
		return nil, fmt.Errorf("open index store %s: memory budget %d outside %d-%d", dir, o.MemoryBytes, MinMemory, MaxMemory)
	}
	if o.CacheBytes == 0 {
		o.CacheBytes = o.MemoryBytes / 2
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	disk := newDiskState(o.Logger)
	if o.retryMax > 0 {
		disk.retryMax = o.retryMax
	}
	base, buffer := o.FS, o.bufferWrites
	if base == nil {
		base, buffer = vfs.Default, true
	}
	var fs vfs.FS = spaceFS{base, disk}
	if buffer {
		// Below the buffer, the space handling sees the writes that reach
		// the disk.
		fs = writeBufferFS{fs}
	}
	if o.fullWait == 0 {
		o.fullWait = time.Second
	}
	cache := pebble.NewCache(o.CacheBytes)
	defer cache.Unref()
	opts := &pebble.Options{
		FS:                 fs,
		Cache:              cache,
		Logger:             pebbleLogger{o.Logger.With("component", "pebble"), disk},
		FormatMajorVersion: pebble.FormatNewest,
		Merger:             xorMerger,
		EventListener:      storeEvents(o.Logger),
		// Every merge first reads the key it writes, mostly a new key: bloom
		// filters spare those reads a probe of every table.
		Levels: bloomLevels(),
	}
	// Records of small objects carry their bytes inline (up to 64 KiB), so
	// most of the store's volume is values that compactions would otherwise
	// copy again at every level. Separated into blob files, a value is
	// written once at flush and compactions move only keys and references.
	// Measured on 4 KiB objects: 32% less CPU for a sustained synced merge
	// load (BenchmarkStoreMerge), 14% less server CPU per PUT on a 3-node
	// cluster. Records without an inline body stay below MinimumSize, in
	// the tables, where listing reads them without a second lookup.
	opts.Experimental.ValueSeparationPolicy = func() pebble.ValueSeparationPolicy {
		return pebble.ValueSeparationPolicy{
			Enabled:               true,
			MinimumSize:           1 << 10,
			MaxBlobReferenceDepth: 10,
			// Blob files holding deleted or overwritten values are
			// rewritten once a fifth of them is garbage, so deletes give
			// their space back.
			RewriteMinimumAge:  5 * time.Minute,
			TargetGarbageRatio: 0.2,
		}
	}
	// Files of 8 MiB in L0 (doubling per level) rather than pebble's 2 MiB:
	// with values in blob files a 64 MiB flush otherwise makes about 30
	// pairs of tiny tables and blob files, each created and synced on its
	// own. Measured: 15-20% less CPU for a sustained synced merge load
	// (BenchmarkStoreMerge/sync/parallel32 over 300k 4 KiB records, 34-37 s
	// to 28-30 s); reads and listing unchanged.
	opts.TargetFileSizes[0] = 8 << 20
	// Every owner of a partition receives the same writes, so with one
	// memtable size the owners' memtables fill in step and all of them
	// flush at the same moment. A flush is a burst of work for its node;
	// with every owner in one at once, no write quorum can route around
	// them (on a 3-node cluster the PUTs slower than 20 ms came in bursts
	// at exactly the flush times of all three nodes). A size drawn per
	// process keeps the owners' flushes apart.
	opts.MemTableSize = memTableSize(rand.Uint64(), uint64(o.MemoryBytes)/8)
	if o.MemTableSize > 0 {
		opts.MemTableSize = o.MemTableSize
	}
	// Writes stop while this many memtables wait to be flushed. Pebble's
	// 2 let one slow flush stop every write: 64 KiB PUTs at 32 clients
	// (inline, so all their bytes pass through the memtables at 200-250
	// MiB/s) stalled 0 to 23 times in 30 s, up to 3.2 s in all, p99.9
	// 34-107 ms over eight runs. With 4, over six runs: 0 to 2 stalls of
	// 105-144 ms, p99.9 31-45 ms, the same throughput (3,300-4,100/s).
	// The extra memtables fill only while flushes fall behind (resident
	// memory in those runs: 260-300 MB either way).
	opts.MemTableStopWritesThreshold = 4
	opts.WALMinSyncInterval = o.WALSyncDelay
	db, err := pebble.Open(dir, opts)
	if err != nil {
		return nil, fmt.Errorf("open index store %s: %w", dir, err)
	}
	s := &Store{db: db, seed: maphash.MakeSeed(), log: o.Logger, cacheBytes: o.CacheBytes, memTableBytes: opts.MemTableSize, committers: workers.New(10 * time.Second),
		disk: disk, diskFull: o.DiskFull, roomy: o.Roomy, fullWait: o.fullWait}
	s.startKeyFilter()
	return s, nil
}

// memTableSize maps a random number to a memtable size within a quarter
// of mean either way: 48 to 80 MiB for the default budget's 64 MiB.
func memTableSize(r, mean uint64) uint64 {
	lo, span := mean-mean/4, mean/2
	return lo + r%(span+1)
}

// storeEvents reports what an operator must know of pebble: corruption,
// and write stalls, during which every acknowledged write waits.
func storeEvents(log *slog.Logger) *pebble.EventListener {
	var stallMu sync.Mutex
	var stallStart time.Time
	var stallReason string
	return &pebble.EventListener{
		// Corruption is a read error, not the end of the process: the
		// replica answers with an error, quorums go to the other owners,
		// and scrub refills the damaged partition from them.
		DataCorruption: func(info pebble.DataCorruptionInfo) {
			log.Error("index store: on-disk corruption", "path", info.Path, "err", info.Details)
		},
		WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
			stallMu.Lock()
			stallStart, stallReason = time.Now(), info.Reason
			stallMu.Unlock()
		},
		WriteStallEnd: func() {
			stallMu.Lock()
			d, reason := time.Since(stallStart), stallReason
			stallMu.Unlock()
			log.Warn("index store: writes stalled", "reason", reason, "duration", d)
		},
	}
}

func bloomLevels() (levels [7]pebble.LevelOptions) {
	for i := range levels {
		levels[i].FilterPolicy = bloom.FilterPolicy(10)
	}
	return levels
}

// WALFsyncLatency is pebble's histogram of write-ahead-log fsyncs, in
// nanoseconds. Every synced commit waits for one, so its tail bounds the
// tail of every acknowledged write.
func (s *Store) WALFsyncLatency() prometheus.Histogram {
	return s.db.Metrics().LogWriter.FsyncLatency
}

// Close flushes and closes the store.
func (s *Store) Close() error {
	s.closeMu.Lock()
	defer s.closeMu.Unlock()
	if s.closed {
		return nil
	}
	s.closed = true
	// Pebble's close waits for its writes, which wait for space, or for a
	// commit pipeline a failed write may have left locked. Left open, the
	// store loses nothing acknowledged: the next start replays its log.
	if err := s.disk.err(); err != nil {
		return fmt.Errorf("close index store: left open: %w", err)
	}
	s.commits.Wait()
	// Flushing on a clean shutdown keeps the next start from replaying a
	// long WAL.
	if err := s.db.Flush(); err != nil {
		_ = s.db.Close()
		return fmt.Errorf("flush index store: %w", err)
	}
	if err := s.db.Close(); err != nil {
		return fmt.Errorf("close index store: %w", err)
	}
	return nil
}

// Get returns a copy of the value at key, or nil if there is none.
func (s *Store) Get(key []byte) ([]byte, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	return s.get(key)
}

func (s *Store) get(key []byte) ([]byte, error) {
	v, closer, err := s.db.Get(key)
	if errors.Is(err, pebble.ErrNotFound) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("index get: %w", err)
	}
	out := bytes.Clone(v)
	if err := closer.Close(); err != nil {
		return nil, fmt.Errorf("index get: %w", err)
	}
	return out, nil
}

// getBeforeMerge is get for the read every merge makes first, mostly of
// a new key: the key filter (keyfilter.go) answers those without a read.
func (s *Store) getBeforeMerge(key []byte) ([]byte, error) {
	if s.keyIsNew(key) {
		return nil, nil
	}
	return s.get(key)
}

// Item is one record to merge into the store.
type Item struct {
	Table Table
	Key   []byte // a RecordKey
	Value []byte // an encoded record of Table
}

// Merged is the outcome of merging one Item.
type Merged struct {
	Value   []byte // the stored record after the merge
	Changed bool   // whether the merge changed what was stored
}

// Merge joins items into the store in one atomic batch; with sync the batch
// is durable when Merge returns. Records that the merge does not change are
// not rewritten.
func (s *Store) Merge(items []Item, sync bool) ([]Merged, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	if err := s.writable(); err != nil {
		return nil, err
	}
	keys := make([][]byte, len(items))
	for i, it := range items {
		keys[i] = it.Key
	}
	unlock := s.lockKeys(keys)
	b := s.db.NewBatch()
	owned := true // b and the locks are still this function's to release
	defer func() {
		if owned {
			_ = b.Close()
			unlock()
		}
	}()

	out := make([]Merged, len(items))
	pending := map[string]int{} // a key merged twice in one batch sees its first merge
	for i, it := range items {
		var cur []byte
		if j, ok := pending[string(it.Key)]; ok {
			cur = out[j].Value
		} else {
			var err error
			if cur, err = s.getBeforeMerge(it.Key); err != nil {
				return nil, err
			}
		}
		var merged []byte
		var err error
		if cur == nil {
			merged, err = canonical(it.Table, it.Value)
		} else {
			merged, err = MergeEncoded(it.Table, cur, it.Value)
		}

		if err != nil {
			return nil, fmt.Errorf("merge %v record: %w", it.Table, err)
		}
		out[i] = Merged{Value: merged, Changed: !bytes.Equal(cur, merged)}
		pending[string(it.Key)] = i
		if out[i].Changed {
			if err := b.Set(it.Key, merged, nil); err != nil {
				return nil, fmt.Errorf("index batch: %w", err)
			}
			if tk, delta := recordTreeDelta(it.Key, cur, merged); tk != nil {
				if err := b.Merge(tk, delta, nil); err != nil {
					return nil, fmt.Errorf("index batch: %w", err)
				}
			}
		}
	}
	if b.Empty() {
		owned = false
		_ = b.Close()
		unlock()
		if sync {
			// What this merge found may be a merge that is visible but not
			// yet synced (see below): acknowledging it needs that sync,
			// which a log record written after it brings.
			lb := s.db.NewBatch()
			if err := lb.LogData(nil, nil); err != nil {
				_ = lb.Close()
				return nil, fmt.Errorf("index sync: %w", err)
			}
			if err := s.commit(lb, true, nil); err != nil {
				return nil, fmt.Errorf("index sync: %w", err)
			}
		}
		return out, nil
	}
	written := keys[:0] // keys is free again: the stripe locks were taken from it
	for i, it := range items {
		if out[i].Changed {
			written = append(written, it.Key)
		}
	}
	s.addKeys(written)
	// The stripe locks order the read-merge-write of each key; they need
	// not cover the WAL sync. The batch is visible once applied, so the
	// next merge of these keys reads it, and that merge's own sync covers
	// this one's log record, which comes before its own. Held through the
	// sync, every merge that hashed to a busy stripe (about one in nine
	// with 32 merges in flight over 256 stripes) waited for a whole extra
	// sync.
	owned = false
	if err := s.commit(b, sync, unlock); err != nil {
		return nil, fmt.Errorf("index commit: %w", err)
	}
	return out, nil
}

// Refusing returns why the store refuses writes now, or nil.
func (s *Store) Refusing() error { return s.writable() }

// writable returns why the store must refuse a write now, or nil.
func (s *Store) writable() error {
	if err := s.disk.err(); err != nil {
		return err
	}
	if s.diskFull != nil && s.diskFull() {
		return errBelowReserve
	}
	return nil
}

// commit applies b, calls unlock (if not nil) once b is applied, and
// returns when b is durable, or applied when not sync. It takes b.
//
// A synced commit near a full disk runs on a worker so that the caller's
// wait has a bound once the disk is full: the commit may then wait for
// space without end, and its caller is answered ErrDiskFull after
// fullWait instead. The commit still lands if space returns; its caller
// was not told it succeeded, so that is allowed. With the disk roomy
// (StoreOptions.Roomy) the commit runs on the caller's goroutine: the
// handoff, a second goroutine woken per commit, cost about a tenth of a
// node's small PUTs, and a disk that fills from well above the floor
// within one reading of it is not what the floor is for. Commits without
// a sync (read repairs) wait only for a stalled memtable flush, and stay
// on the caller's goroutine.
func (s *Store) commit(b *pebble.Batch, sync bool, unlock func()) error {
	if b.Empty() {
		_ = b.Close()
		if unlock != nil {
			unlock()
		}
		return nil
	}
	if !sync {
		err := s.apply(b, false, unlock)
		return s.commitErr(err)
	}
	if s.roomy != nil && s.disk.err() == nil && s.roomy() {
		err := s.apply(b, true, unlock)
		if err == nil {
			err = b.SyncWait()
			_ = b.Close()
		}
		return s.commitErr(err)
	}
	done := make(chan error, 1)
	s.commits.Add(1)
	s.committers.Go(func() {
		defer s.commits.Done()
		err := s.apply(b, true, unlock)
		if err == nil {
			err = b.SyncWait()
			_ = b.Close()
		}
		done <- s.commitErr(err)
	})
	bad := s.disk.unhealthy()
	for {
		select {
		case err := <-done:
			return err
		case <-bad:
		}
		t := time.NewTimer(s.fullWait)
		select {
		case err := <-done:
			t.Stop()
			return err
		case <-t.C:
		}
		if err := s.disk.err(); err != nil {
			return err
		}
		bad = s.disk.unhealthy()
	}
}

// apply applies b and calls unlock. A batch that failed to apply is
// closed here. A panic of pebble's commit path (it panics when its log
// failed) is caught and fails the store, which then refuses every write
// before it reaches pebble: pebble's commit mutex may be left locked.
func (s *Store) apply(b *pebble.Batch, sync bool, unlock func()) (err error) {
	if unlock != nil {
		defer unlock()
	}
	defer func() {
		if p := recover(); p != nil {
			s.disk.fail(fmt.Errorf("pebble commit: %v", p))
			err = s.disk.err()
		}
	}()
	if sync {
		err = s.db.ApplyNoSyncWait(b, pebble.Sync)
	} else {
		err = s.db.Apply(b, pebble.NoSync)
	}
	if err != nil || !sync {
		_ = b.Close()
	}
	return err
}

// commitErr prefers the store's own failure to what pebble said of it.
func (s *Store) commitErr(err error) error {
	if err != nil {
		if derr := s.disk.err(); derr != nil {
			return derr
		}
	}
	return err
}

// lockKeys locks the stripes of keys in ascending order, so concurrent
// multi-key operations cannot deadlock, and returns the unlock.
func (s *Store) lockKeys(keys [][]byte) func() {
	locked := make([]int, 0, len(keys))
	for _, k := range keys {
		locked = append(locked, int(maphash.Bytes(s.seed, k)%uint64(len(s.stripes))))
	}
	slices.Sort(locked)
	locked = slices.Compact(locked)
	for _, i := range locked {
		s.stripes[i].Lock()
	}
	return func() {
		for _, i := range locked {
			s.stripes[i].Unlock()
		}
	}
}

// KeyValue is one stored record returned by Scan.
type KeyValue struct {
	Key, Value []byte
}

// Scan returns up to limit records with keys in [lo, hi), in ascending key
// order, or descending when reverse is set. A nil hi means no upper bound.
func (s *Store) Scan(lo, hi []byte, limit int, reverse bool) ([]KeyValue, error) {
	return s.scan(lo, hi, limit, reverse, bytes.Clone)
}

// scan is Scan returning value(v) for each value v, which is only valid
// during the call.
func (s *Store) scan(lo, hi []byte, limit int, reverse bool, value func([]byte) []byte) ([]KeyValue, error) {
	if err := s.enter(); err != nil {
		return nil, err
	}
	defer s.leave()
	it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: lo, UpperBound: hi})
	if err != nil {
		return nil, fmt.Errorf("index scan: %w", err)
	}
	var out []KeyValue
	valid := it.First
	step := it.Next
	if reverse {
		valid, step = it.Last, it.Prev
	}
	for ok := valid(); ok && (limit <= 0 || len(out) < limit); ok = step() {
		v, err := it.ValueAndErr()
		if err != nil {
			_ = it.Close()
			return nil, fmt.Errorf("index scan value: %w", err)
		}
		out = append(out, KeyValue{Key: bytes.Clone(it.Key()), Value: value(v)})
	}
	if err := it.Close(); err != nil {
		return nil, fmt.Errorf("index scan: %w", err)
	}
	return out, nil
}

// GetMeta returns a node-local metadata value, or nil.
func (s *Store) GetMeta(name string) ([]byte, error) { return s.Get(metaKey(name)) }

// SetMeta durably stores a node-local metadata value.
func (s *Store) SetMeta(name string, v []byte) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	// Not held to the reserve: these few small values (the layout among
	// them) are what lets the node follow the cluster while it is short of
	// space.
	if err := s.disk.err(); err != nil {
		return fmt.Errorf("index set meta %s: %w", name, err)
	}
	b := s.db.NewBatch()
	if err := b.Set(metaKey(name), v, nil); err != nil {
		_ = b.Close()
		return fmt.Errorf("index set meta %s: %w", name, err)
	}
	if err := s.commit(b, true, nil); err != nil {
		return fmt.Errorf("index set meta %s: %w", name, err)
	}
	return nil
}

// pebbleLogger routes pebble's log lines to slog.
type pebbleLogger struct {
	l    *slog.Logger
	disk *diskState
}

func (p pebbleLogger) Infof(format string, args ...any)  { p.l.Debug(fmt.Sprintf(format, args...)) }
func (p pebbleLogger) Errorf(format string, args ...any) { p.l.Error(fmt.Sprintf(format, args...)) }

// Fatalf must not return. The store fails first, so that requests get
// errors: a panic in a commit is caught by Store.commit, one on a
// background goroutine of pebble ends the process, as pebble intends.
func (p pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	p.disk.fail(errors.New(msg))
	panic(msg)
}

// HintOwners returns the owners this node holds hints for.
func (s *Store) HintOwners() ([]string, error) {
	var owners []string
	lo := []byte{nsHint}
	for {
		kvs, err := s.Scan(lo, []byte{nsHint + 1}, 1, false)
		if err != nil || len(kvs) == 0 {
			return owners, err
		}
		owner, _, ok := parseHintKey(kvs[0].Key)
		if !ok {
			return owners, fmt.Errorf("bad hint key %x", kvs[0].Key)
		}
		owners = append(owners, owner)
		lo = prefixEnd(hintKey(owner, nil))
		if lo == nil {
			return owners, nil
		}
	}
}

// HintedPartitions returns a bitmap of the partitions this node holds
// hints for, for any owner: bit p%8 of byte p/8 is set for partition p
// (OpHintedParts). It seeks from one partition to the next instead of
// reading every hint.
func (s *Store) HintedPartitions() ([]byte, error) {
	owners, err := s.HintOwners()
	if err != nil {
		return nil, err
	}
	var bitmap []byte
	keysOnly := func([]byte) []byte { return nil }
	for _, o := range owners {
		pre := hintKey(o, nil)
		end := prefixEnd(pre)
		lo := pre
		for {
			kvs, err := s.scan(lo, end, 1, false, keysOnly)
			if err != nil {
				return nil, err
			}
			if len(kvs) == 0 {
				break
			}
			pk, err := ParseRecordKey(kvs[0].Key[len(pre):])
			if err != nil {
				return nil, fmt.Errorf("hint for %s: %w", o, err)
			}
			p := pk.Partition
			for int(p/8) >= len(bitmap) {
				bitmap = append(bitmap, 0)
			}
			bitmap[p/8] |= 1 << (p % 8)
			if p == 0xffff {
				break
			}
			lo = hintKey(o, []byte{nsRecord, byte((p + 1) >> 8), byte(p + 1)})
		}
	}
	return bitmap, nil
}

// Hints returns up to limit hints held for owner, as items keyed by their
// record keys.
func (s *Store) Hints(owner string, limit int) ([]Item, error) {
	pre := hintKey(owner, nil)
	kvs, err := s.Scan(pre, prefixEnd(pre), limit, false)
	if err != nil {
		return nil, err
	}
	out := make([]Item, 0, len(kvs))
	for _, kv := range kvs {
		key := kv.Key[len(pre):]
		p, err := ParseRecordKey(key)
		if err != nil {
			return nil, err
		}
		out = append(out, Item{Table: p.Table, Key: key, Value: kv.Value})
	}
	return out, nil
}

// DropHints deletes the hints for owner that still hold exactly the values
// in items (a hint merged with something newer since it was read stays, to
// be handed off again).
func (s *Store) DropHints(owner string, items []Item) error {
	if err := s.enter(); err != nil {
		return err
	}
	defer s.leave()
	if err := s.writable(); err != nil {
		return fmt.Errorf("drop hints: %w", err)
	}
	keys := make([][]byte, len(items))
	for i, it := range items {
		keys[i] = hintKey(owner, it.Key)
	}
	unlock := s.lockKeys(keys)
	b := s.db.NewBatch()
	for i, it := range items {
		cur, err := s.get(keys[i])
		if err == nil && bytes.Equal(cur, it.Value) {
			err = b.Delete(keys[i], nil)
		}
		if err != nil {
			_ = b.Close()
			unlock()
			return fmt.Errorf("drop hint: %w", err)
		}
	}
	if err := s.commit(b, true, unlock); err != nil {
		return fmt.Errorf("drop hints: %w", err)
	}
	return nil
}
