package index

import (
	"bytes"
	"errors"
	"fmt"
	"hash/maphash"
	"math/bits"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
)

// keyFilter is an in-memory split-block bloom filter of every key in a
// store, so the read before a merge can learn that a key is new without
// asking pebble. That read is mostly of new keys (a PUT writes a new
// object), and pebble answers it by seeking every memtable's skiplist
// (about 4 µs each on a 64 MiB memtable of 4 KiB records, nearly all of it
// cache misses) and probing each level's filter: on a 3-node cluster under
// 4 KiB PUTs it was 9-10% of the servers' CPU.
//
// A key the filter does not hold is certainly not in the store, as long as
// every key written is added before its batch commits and the filter was
// filled from a scan that began after it started taking those adds. It
// never forgets: deleted keys only add false positives, which fall back
// to pebble's read.
//
// Each key sets one bit in each of the eight 32-bit words of one 256-bit
// block, so a lookup touches one cache line; at 10 bits per key about 1%
// of absent keys look present.
type keyFilter struct {
	blocks []filterBlock
	seed   maphash.Seed
	// capacity is the number of keys the filter was sized for; past it the
	// false-positive rate climbs and the store builds a bigger one.
	capacity int64
	// added counts the adds that set a bit, so a key written again (an
	// overwrite) does not count, and does not touch this shared counter.
	// It falls short of the distinct keys by the false positives.
	added atomic.Int64
	// ready is set once a scan of the whole store went into the filter;
	// before that its answers are not used.
	ready atomic.Bool
}

type filterBlock [8]atomic.Uint32

// filterBitsPerKey sizes filters: 10 bits per key gives about 1% false
// positives with split blocks.
const filterBitsPerKey = 10

// blockSalts spread one hash over the eight words of a block (the
// constants of Parquet's split-block bloom filter).
var blockSalts = [8]uint32{0x47b6137b, 0x44974d91, 0x8824ad5b, 0xa2b7289d, 0x705495c7, 0x2df1424b, 0x9efc4947, 0x5c6bfb31}

func newKeyFilter(capacity int64) *keyFilter {
	n := (capacity*filterBitsPerKey + 255) / 256
	return &keyFilter{blocks: make([]filterBlock, max(n, 1)), seed: maphash.MakeSeed(), capacity: capacity}
}

func (f *keyFilter) locate(key []byte) (*filterBlock, uint32) {
	h := maphash.Bytes(f.seed, key)
	hi, _ := bits.Mul64(h, uint64(len(f.blocks)))
	return &f.blocks[hi], uint32(h)
}

func (f *keyFilter) add(key []byte) {
	b, h := f.locate(key)
	fresh := false
	for i, salt := range blockSalts {
		bit := uint32(1) << ((h * salt) >> 27)
		if b[i].Or(bit)&bit == 0 {
			fresh = true
		}
	}
	if fresh {
		f.added.Add(1)
	}
}

func (f *keyFilter) mayContain(key []byte) bool {
	b, h := f.locate(key)
	for i, salt := range blockSalts {
		if b[i].Load()&(1<<((h*salt)>>27)) == 0 {
			return false
		}
	}
	return true
}

// full reports whether more keys went in than the filter was sized for.
func (f *keyFilter) full() bool { return f.added.Load() > f.capacity }

// filterSet is what writers add to: the filter in use and, while a bigger
// one is being filled, that one too.
type filterSet struct {
	cur, next *keyFilter
}

func (fs *filterSet) add(key []byte) {
	fs.cur.add(key)
	if fs.next != nil {
		fs.next.add(key)
	}
}

const (
	// minFilterKeys is the first filter's size, 80 KiB; a bigger store
	// finds itself past it in its first scan and builds one to measure.
	minFilterKeys = 1 << 16
	// maxFilterKeys bounds the filter at 62.5 MiB; a store with more keys
	// reads before every merge as it did without one.
	maxFilterKeys = 50 << 20
	// filterScanBatch is how many keys a scan reads per visit, so Close
	// never waits on a whole scan.
	filterScanBatch = 50_000
	// filterRetry is how long a failed scan waits before the next try.
	filterRetry = 30 * time.Second
)

// startKeyFilter installs an empty filter and fills it in the background.
// It runs before the store is handed out, so every write is added to the
// filter; the scan then covers everything written before it.
func (s *Store) startKeyFilter() {
	f := newKeyFilter(minFilterKeys)
	s.filters.Store(&filterSet{cur: f})
	s.filterBusy.Store(true)
	go func() {
		for {
			err := s.scanIntoFilter(f)
			if err == nil {
				break
			}
			if errors.Is(err, ErrClosed) {
				return
			}
			// A damaged table: reads go to pebble meanwhile, and scrub
			// repairs the damage, after which a scan gets through.
			s.log.Warn("index store: key filter scan failed; retrying", "err", err, "in", filterRetry)
			time.Sleep(filterRetry)
		}
		f.ready.Store(true)
		s.filterBusy.Store(false)
		if f.full() {
			s.growKeyFilter()
		}
	}()
}

// growKeyFilter builds a filter sized for twice the keys the current one
// took, filled by writers and a new scan, then puts it in use. At most
// one runs at a time, and none within filterRetry of a failed one.
func (s *Store) growKeyFilter() {
	if t := s.filterFailed.Load(); t != 0 && time.Since(time.Unix(0, t)) < filterRetry {
		return
	}
	if !s.filterBusy.CompareAndSwap(false, true) {
		return
	}
	go func() {
		for {
			old := s.filters.Load()
			want := 2 * old.cur.added.Load()
			if want > maxFilterKeys {
				// Too many keys to keep a filter of in memory: reads
				// before merges go to pebble, as without one. The flag
				// stays set, so no later merge tries again.
				old.cur.ready.Store(false)
				s.log.Info("index store: key filter off", "keys", old.cur.added.Load(), "max", maxFilterKeys)
				return
			}
			nf := newKeyFilter(max(want, minFilterKeys))
			// Installed while no merge runs (closeMu held exclusively):
			// every merge from here on adds to nf, and the scan, which
			// starts after, sees every key committed before.
			s.closeMu.Lock()
			if s.closed {
				s.closeMu.Unlock()
				return
			}
			s.filters.Store(&filterSet{cur: old.cur, next: nf})
			s.closeMu.Unlock()
			if err := s.scanIntoFilter(nf); err != nil {
				// The current filter stays in use; it only answers
				// "maybe" more often than it should.
				s.filters.Store(&filterSet{cur: old.cur})
				if !errors.Is(err, ErrClosed) {
					s.log.Warn("index store: key filter scan failed", "err", err)
					s.filterFailed.Store(time.Now().UnixNano())
					s.filterBusy.Store(false)
				}
				return
			}
			nf.ready.Store(true)
			s.filters.Store(&filterSet{cur: nf})
			if !nf.full() {
				s.filterBusy.Store(false)
				return
			}
		}
	}()
}

// scanIntoFilter adds every key of the store to f, a batch at a time,
// releasing the store between batches so Close never waits on a whole
// scan. It returns ErrClosed if the store closed.
func (s *Store) scanIntoFilter(f *keyFilter) error {
	var from []byte
	for {
		if err := s.enter(); err != nil {
			return err
		}
		it, err := s.db.NewIter(&pebble.IterOptions{LowerBound: from})
		if err != nil {
			s.leave()
			return fmt.Errorf("key filter scan: %w", err)
		}
		n := 0
		for ok := it.First(); ok && n < filterScanBatch; ok = it.Next() {
			f.add(it.Key())
			n++
		}
		more := it.Valid()
		if more {
			from = bytes.Clone(it.Key())
		}
		err = it.Error()
		if cerr := it.Close(); err == nil {
			err = cerr
		}
		s.leave()
		if err != nil {
			return fmt.Errorf("key filter scan: %w", err)
		}
		if !more {
			return nil
		}
	}
}

// keyIsNew reports whether key is certainly not in the store, without
// reading it.
func (s *Store) keyIsNew(key []byte) bool {
	f := s.filters.Load().cur
	return f.ready.Load() && !f.mayContain(key)
}

// addKeys adds the keys about to be written to the filters; it must run
// before their batch commits.
func (s *Store) addKeys(keys [][]byte) {
	fs := s.filters.Load()
	for _, k := range keys {
		fs.add(k)
	}
	if fs.cur.full() && fs.cur.ready.Load() {
		s.growKeyFilter()
	}
}
