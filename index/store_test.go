// store_test.go checks the local pebble store: merges are durable and
// never lose an update under concurrency, scans honour bounds, order and
// limits, and the store survives a reopen. It runs on pebble's in-memory
// filesystem.
package index

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
)

func memStore(t *testing.T, fs vfs.FS) *Store {
	t.Helper()
	s, err := OpenStore("db", StoreOptions{FS: fs, CacheBytes: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func versionRecord(id string, ts Timestamp) []byte {
	return EncodeObject(&Object{Versions: []Version{{ID: id, Timestamp: ts, WriteID: WriteID{byte(ts)}}}})
}

func TestStoreConcurrentMergesLoseNothing(t *testing.T) {
	s := memStore(t, vfs.NewMem())
	defer s.Close()
	key := RecordKey(1, TableObjects, []byte("pk"), []byte("k"))
	var wg sync.WaitGroup
	for i := 0; i < 64; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := s.Merge([]Item{{Table: TableObjects, Key: key, Value: versionRecord(fmt.Sprint(i), Timestamp(i+1))}}, false); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	v, err := s.Get(key)
	if err != nil {
		t.Fatal(err)
	}
	o, err := DecodeObject(v)
	if err != nil {
		t.Fatal(err)
	}
	if len(o.Versions) != 64 {
		t.Fatalf("got %d versions; want 64 (a concurrent merge was lost)", len(o.Versions))
	}
}

func TestStoreMergeReportsChange(t *testing.T) {
	s := memStore(t, vfs.NewMem())
	defer s.Close()
	key := RecordKey(1, TableObjects, []byte("pk"), []byte("k"))
	rec := versionRecord("a", 5)
	m, err := s.Merge([]Item{{TableObjects, key, rec}}, true)
	if err != nil || !m[0].Changed {
		t.Fatalf("first merge: %v changed=%v; want changed", err, m[0].Changed)
	}
	m, err = s.Merge([]Item{{TableObjects, key, rec}}, true)
	if err != nil || m[0].Changed {
		t.Fatalf("repeat merge: %v changed=%v; want unchanged", err, m[0].Changed)
	}
	if _, err := s.Merge([]Item{{TableObjects, key, []byte{0xff, 0xff}}}, true); err == nil {
		t.Fatal("merge of a corrupt record succeeded")
	}
	got, _ := s.Get(key)
	if !bytes.Equal(got, m[0].Value) {
		t.Fatal("a failed merge changed the stored record")
	}
}

// TestMergeFindsRecordsInEveryLevel checks the read before a merge (the
// key filter, then pebble) against records that sit in the bottom level,
// with bodies separated into blob files: each must be found and merged
// with, never taken for a new key.
func TestMergeFindsRecordsInEveryLevel(t *testing.T) {
	s := memStore(t, vfs.NewMem())
	defer s.Close()
	body := bytes.Repeat([]byte("b"), 4<<10)
	rec := func(id string, ts Timestamp) []byte {
		return EncodeObject(&Object{Versions: []Version{{ID: id, Timestamp: ts, WriteID: WriteID{byte(ts)}, Inline: body}}})
	}
	key := func(i int) []byte {
		return RecordKey(uint16(i%7), TableObjects, []byte("pk"), fmt.Appendf(nil, "k%04d", i))
	}
	const n = 500
	var items []Item
	for i := range n {
		items = append(items, Item{TableObjects, key(i), rec("new", 9)})
	}
	if _, err := s.Merge(items, false); err != nil {
		t.Fatal(err)
	}
	if err := s.db.Compact(context.Background(), []byte{0}, []byte{0xff}, false); err != nil {
		t.Fatal(err)
	}
	if got := s.db.Metrics().Levels[6].TablesCount; got == 0 {
		t.Fatal("no table reached the last level")
	}
	for i := range n {
		want, err := MergeEncoded(TableObjects, rec("new", 9), rec("old", 2))
		if err != nil {
			t.Fatal(err)
		}
		m, err := s.Merge([]Item{{TableObjects, key(i), rec("old", 2)}}, false)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(m[0].Value, want) {
			t.Fatalf("key %d: merge did not see the stored record", i)
		}
		if m, _ := s.Merge([]Item{{TableObjects, key(i), rec("new", 9)}}, false); m[0].Changed {
			t.Fatalf("key %d: a record already stored in the last level was written again", i)
		}
	}
}

func TestStoreScan(t *testing.T) {
	s := memStore(t, vfs.NewMem())
	defer s.Close()
	var items []Item
	for i := 0; i < 10; i++ {
		items = append(items, Item{TableObjects, RecordKey(3, TableObjects, []byte("p"), []byte{byte('a' + i)}), versionRecord("v", 1)})
	}
	items = append(items, Item{TableObjects, RecordKey(3, TableObjects, []byte("q"), []byte("a")), versionRecord("v", 1)})
	if _, err := s.Merge(items, true); err != nil {
		t.Fatal(err)
	}
	pre := recordPrefix(3, TableObjects, []byte("p"))
	all, err := s.Scan(pre, prefixEnd(pre), 0, false)
	if err != nil || len(all) != 10 {
		t.Fatalf("scan: %v, %d records; want 10", err, len(all))
	}
	rev, _ := s.Scan(pre, prefixEnd(pre), 3, true)
	if len(rev) != 3 || !bytes.HasSuffix(rev[0].Key, []byte("j")) || !bytes.HasSuffix(rev[2].Key, []byte("h")) {
		t.Fatalf("reverse scan with limit: got %d records", len(rev))
	}
	p, err := ParseRecordKey(all[4].Key)
	if err != nil || p.Partition != 3 || p.Table != TableObjects || string(p.PK) != "p" || string(p.SK) != "e" {
		t.Fatalf("ParseRecordKey = %+v, %v", p, err)
	}
}

func TestStoreSurvivesReopen(t *testing.T) {
	fs := vfs.NewMem()
	s := memStore(t, fs)
	key := RecordKey(1, TableBuckets, nil, []byte("b"))
	rec := EncodeBucket(&Bucket{Name: "b", ID: BucketID{1}, Created: 9})
	if _, err := s.Merge([]Item{{TableBuckets, key, rec}}, true); err != nil {
		t.Fatal(err)
	}
	if err := s.SetMeta("node-id", []byte("n1")); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = memStore(t, fs)
	defer s.Close()
	got, _ := s.Get(key)
	if !bytes.Equal(got, rec) {
		t.Fatalf("record after reopen = %x; want %x", got, rec)
	}
	if id, _ := s.GetMeta("node-id"); string(id) != "n1" {
		t.Fatalf("meta after reopen = %q", id)
	}
}

// TestSyncedMergeSurvivesCrash uses pebble's crashable in-memory FS:
// synced merges must survive losing everything unsynced, written straight
// to the filesystem and through the write buffer a server's store uses
// (writebuf.go).
func TestSyncedMergeSurvivesCrash(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		mem := vfs.NewCrashableMem()
		var fs vfs.FS = mem
		if buffered {
			fs = writeBufferFS{mem}
		}
		s := memStore(t, fs)
		var keys [][]byte
		for i := 0; i < 50; i++ {
			key := RecordKey(1, TableObjects, []byte("pk"), []byte{byte(i)})
			keys = append(keys, key)
			if _, err := s.Merge([]Item{{TableObjects, key, versionRecord("a", Timestamp(i+1))}}, true); err != nil {
				t.Fatal(err)
			}
		}
		crashed := mem.CrashClone(vfs.CrashCloneCfg{UnsyncedDataPercent: 0})
		_ = s.Close()
		s2, err := OpenStore("db", StoreOptions{FS: crashed, CacheBytes: 1 << 20})
		if err != nil {
			t.Fatal(err)
		}
		for i, key := range keys {
			if v, _ := s2.Get(key); v == nil {
				t.Fatalf("buffered=%v: synced merge %d lost in a crash", buffered, i)
			}
		}
		s2.Close()
	}
}

// A pebble write stall is logged when it ends, with its reason and how long
// writes waited.
// TestMemTableSizeRange checks the per-process memtable size stays within
// 48-80 MiB for the default budget whatever the draw, so flushes of
// co-owners drift apart without any node's memory moving far from
// pebble's usual 64 MiB.
func TestMemTableSizeRange(t *testing.T) {
	seen := map[uint64]bool{}
	for _, r := range []uint64{0, 1, 32 << 20, 32<<20 + 1, 1 << 63, ^uint64(0), 12345678901} {
		got := memTableSize(r, DefaultMemory/8)
		if got < 48<<20 || got > 80<<20 {
			t.Fatalf("memTableSize(%d) = %d, outside 48-80 MiB", r, got)
		}
		seen[got] = true
	}
	if len(seen) < 5 {
		t.Fatalf("only %d distinct sizes from 7 draws", len(seen))
	}
}

// flushGateFS holds the creation of every table and blob file (what a
// flush writes) while its gate is closed.
type flushGateFS struct {
	vfs.FS
	gate chan struct{}
}

func (fs flushGateFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	if strings.HasSuffix(name, ".sst") || strings.HasSuffix(name, ".blob") {
		<-fs.gate
	}
	return fs.FS.Create(name, c)
}

// TestWritesOutlastAStalledFlush: writes go on while up to four memtables
// wait for a flush that cannot finish, and all of them land once it can.
func TestWritesOutlastAStalledFlush(t *testing.T) {
	gate := make(chan struct{})
	fs := flushGateFS{vfs.NewMem(), gate}
	s, err := OpenStore("", StoreOptions{FS: fs, Logger: quietLogger(), MemTableSize: 1 << 20})
	if err != nil {
		t.Fatal(err)
	}
	value := versionRecord("v", 1)
	value = append(value[:len(value):len(value)], bytes.Repeat([]byte{7}, 32<<10)...)
	var written atomic.Int64
	done := make(chan error, 1)
	const total = 400 // 12.5 MiB: more than four 1 MiB memtables hold
	go func() {
		for i := range total {
			key := RecordKey(3, TableObjects, []byte("p"), []byte(fmt.Sprint(i)))
			if err := s.db.Set(key, value, pebble.NoSync); err != nil {
				done <- err
				return
			}
			written.Add(1)
		}
		done <- nil
	}()
	finished := false
	defer func() {
		// Let the writer finish before the store closes under it.
		select {
		case <-gate:
		default:
			close(gate)
		}
		if !finished {
			<-done
		}
		s.Close()
	}()
	// Wait until the writes stop moving: the stall.
	last := int64(-1)
	for n := written.Load(); n != last; n = written.Load() {
		last = n
		time.Sleep(300 * time.Millisecond)
	}
	if last == total {
		t.Fatal("every write went through with flushes held: the gate does not hold them")
	}
	// Four full 1 MiB memtables wait (pebble's default of two stopped
	// writes at 2.75 MiB here).
	if m := s.db.Metrics().MemTable; m.Size < 4<<20 {
		t.Fatalf("writes stopped after %d writes with %d bytes in %d memtables; want them to go on until four full ones wait", last, m.Size, m.Count)
	}
	close(gate)
	select {
	case err := <-done:
		finished = true
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(10 * time.Second):
		t.Fatalf("writes did not resume once flushes could finish (%d of %d)", written.Load(), total)
	}
}

func TestStoreLogsWriteStalls(t *testing.T) {
	var buf bytes.Buffer
	ev := storeEvents(slog.New(slog.NewTextHandler(&buf, nil)))
	ev.WriteStallBegin(pebble.WriteStallBeginInfo{Reason: "memtable count limit reached"})
	time.Sleep(5 * time.Millisecond)
	ev.WriteStallEnd()
	line := buf.String()
	if !strings.Contains(line, "level=WARN") || !strings.Contains(line, `reason="memtable count limit reached"`) {
		t.Fatalf("stall log = %q", line)
	}
	i := strings.Index(line, "duration=")
	d, err := time.ParseDuration(strings.Fields(line[i+len("duration="):])[0])
	if err != nil || d < 5*time.Millisecond {
		t.Fatalf("stall duration in %q: %v, %v", line, d, err)
	}
}

// TestWALSyncDelayHoldsSyncsBack: the delay a server sets is consulted
// after each WAL sync and holds the next synced commit back by it.
func TestWALSyncDelayHoldsSyncsBack(t *testing.T) {
	const delay = 30 * time.Millisecond
	var asked atomic.Int32
	s, err := OpenStore(t.TempDir(), StoreOptions{Logger: quietLogger(), WALSyncDelay: func() time.Duration {
		asked.Add(1)
		return delay
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	put := func(i int) time.Duration {
		start := time.Now()
		key := RecordKey(3, TableObjects, []byte("p"), []byte(fmt.Sprint(i)))
		if _, err := s.Merge([]Item{{TableObjects, key, versionRecord("v", Timestamp(i+1))}}, true); err != nil {
			t.Fatal(err)
		}
		return time.Since(start)
	}
	put(0)
	// Pebble wakes the committers waiting for a sync before it asks for
	// the next delay, so the question may come just after put returns.
	deadline := time.Now().Add(time.Second)
	for asked.Load() == 0 {
		if time.Now().After(deadline) {
			t.Fatal("WALSyncDelay not consulted after a sync")
		}
		time.Sleep(time.Millisecond)
	}
	if took := put(1); took < delay*2/3 {
		t.Fatalf("a synced commit right after a sync took %v, want it held back about %v", took, delay)
	}
}

// gatedSyncFS holds every sync of a write-ahead log while its gate is
// closed, so a test can look at a store between a commit and its sync.
type gatedSyncFS struct {
	vfs.FS
	mu   sync.Mutex
	gate chan struct{} // nil: open
}

func (fs *gatedSyncFS) close() {
	fs.mu.Lock()
	fs.gate = make(chan struct{})
	fs.mu.Unlock()
}

func (fs *gatedSyncFS) open() {
	fs.mu.Lock()
	if fs.gate != nil {
		close(fs.gate)
		fs.gate = nil
	}
	fs.mu.Unlock()
}

func (fs *gatedSyncFS) wait() {
	fs.mu.Lock()
	g := fs.gate
	fs.mu.Unlock()
	if g != nil {
		<-g
	}
}

func (fs *gatedSyncFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, ".log") {
		return f, err
	}
	return gatedFile{f, fs}, nil
}

func (fs *gatedSyncFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs *gatedSyncFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

type gatedFile struct {
	vfs.File
	fs *gatedSyncFS
}

func (f gatedFile) Sync() error     { f.fs.wait(); return f.File.Sync() }
func (f gatedFile) SyncData() error { f.fs.wait(); return f.File.SyncData() }

// TestMergeSyncOutsideKeyLocks: a synced merge holds its key's lock while
// it reads and applies, not while the log syncs, so the next merge of the
// key goes ahead meanwhile; and a merge that changes nothing is still not
// acknowledged before what it found is synced.
func TestMergeSyncOutsideKeyLocks(t *testing.T) {
	fs := &gatedSyncFS{FS: vfs.NewMem()}
	s := memStore(t, fs)
	defer s.Close()
	defer fs.open() // a failure must not leave Close waiting on a sync
	key := RecordKey(1, TableObjects, []byte("pk"), []byte("k"))
	merge := func(rec []byte) chan error {
		done := make(chan error, 1)
		go func() {
			_, err := s.Merge([]Item{{TableObjects, key, rec}}, true)
			done <- err
		}()
		return done
	}
	versions := func() int {
		v, err := s.Get(key)
		if err != nil || v == nil {
			return 0
		}
		o, err := DecodeObject(v)
		if err != nil {
			t.Fatal(err)
		}
		return len(o.Versions)
	}
	waitFor := func(n int) {
		deadline := time.Now().Add(10 * time.Second)
		for versions() != n {
			if time.Now().After(deadline) {
				t.Fatalf("the record has %d versions; want %d while the first merge waits for its sync", versions(), n)
			}
			time.Sleep(time.Millisecond)
		}
	}

	fs.close()
	first := merge(versionRecord("a", 1))
	waitFor(1)
	second := merge(versionRecord("b", 2)) // same key, same stripe
	waitFor(2)
	again := merge(versionRecord("b", 2)) // changes nothing
	time.Sleep(50 * time.Millisecond)
	for name, ch := range map[string]chan error{"first": first, "second": second, "unchanged": again} {
		select {
		case err := <-ch:
			t.Fatalf("the %s merge returned (%v) before the log was synced", name, err)
		default:
		}
	}
	fs.open()
	for _, ch := range []chan error{first, second, again} {
		if err := <-ch; err != nil {
			t.Fatal(err)
		}
	}
}

// TestStoreMemoryBudget: the block cache takes half of the budget and each
// memtable an eighth, give or take a quarter; a budget below the least is
// refused.
func TestStoreMemoryBudget(t *testing.T) {
	for _, tc := range []struct {
		budget, cache, memLo, memHi int64
	}{
		{0, 256 << 20, 48 << 20, 80 << 20},
		{64 << 20, 32 << 20, 6 << 20, 10 << 20},
		{2 << 30, 1 << 30, 192 << 20, 320 << 20},
	} {
		s, err := OpenStore("db", StoreOptions{FS: vfs.NewMem(), MemoryBytes: tc.budget})
		if err != nil {
			t.Fatal(err)
		}
		if s.cacheBytes != tc.cache || int64(s.memTableBytes) < tc.memLo || int64(s.memTableBytes) > tc.memHi {
			t.Errorf("budget %d: cache %d, memtable %d; want %d and %d-%d", tc.budget, s.cacheBytes, s.memTableBytes, tc.cache, tc.memLo, tc.memHi)
		}
		s.Close()
	}
	if _, err := OpenStore("db", StoreOptions{FS: vfs.NewMem(), MemoryBytes: 1 << 20}); err == nil {
		t.Fatal("a 1 MiB budget was taken")
	}
}
