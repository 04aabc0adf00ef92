// diskfull_test.go checks the store on a filesystem that runs out of
// space (diskfull.go): a write the full disk holds up is answered with
// ErrDiskFull instead of hanging or panicking, later writes are refused,
// reads go on, writes resume by themselves once space returns, and
// nothing acknowledged is lost; a log that cannot be synced fails the
// store, which then answers errors.
package index

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// faultFS makes writes (or syncs) of the files whose names end in suffix
// fail while its fault is set: a write lands half of its bytes, as a
// write that runs out of space part way does, and returns err.
type faultFS struct {
	vfs.FS
	suffix string
	err    error
	syncs  bool // fail syncs instead of writes
	on     atomic.Bool
	hits   atomic.Int64
}

func (fs *faultFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil || !strings.HasSuffix(name, fs.suffix) {
		return f, err
	}
	return &faultFile{File: f, fs: fs, name: name}, nil
}

func (fs *faultFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	return fs.wrap(name, f, err)
}

func (fs *faultFS) ReuseForWrite(old, name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(old, name, c)
	return fs.wrap(name, f, err)
}

type faultFile struct {
	vfs.File
	fs   *faultFS
	name string
}

func (f *faultFile) Write(p []byte) (int, error) {
	if f.fs.syncs || !f.fs.on.Load() {
		return f.File.Write(p)
	}
	f.fs.hits.Add(1)
	n, err := f.File.Write(p[:len(p)/2])
	if err != nil {
		return n, err
	}
	return n, &os.PathError{Op: "write", Path: f.name, Err: f.fs.err}
}

func (f *faultFile) WriteAt(p []byte, off int64) (int, error) {
	if f.fs.syncs || !f.fs.on.Load() {
		return f.File.WriteAt(p, off)
	}
	f.fs.hits.Add(1)
	n, err := f.File.WriteAt(p[:len(p)/2], off)
	if err != nil {
		return n, err
	}
	return n, &os.PathError{Op: "write", Path: f.name, Err: f.fs.err}
}

func (f *faultFile) sync(real func() error) error {
	if f.fs.syncs && f.fs.on.Load() {
		f.fs.hits.Add(1)
		return &os.PathError{Op: "sync", Path: f.name, Err: f.fs.err}
	}
	return real()
}

func (f *faultFile) Sync() error     { return f.sync(f.File.Sync) }
func (f *faultFile) SyncData() error { return f.sync(f.File.SyncData) }

func faultStore(t *testing.T, fs vfs.FS, o StoreOptions) *Store {
	t.Helper()
	o.FS, o.CacheBytes, o.Logger = fs, 1<<20, quietLogger()
	o.fullWait, o.retryMax = 50*time.Millisecond, 20*time.Millisecond
	s, err := OpenStore("db", o)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// within runs f and fails the test if it has not returned after a long
// while: a hang, not a slow machine.
func within[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(time.Minute):
		t.Fatalf("%s: no answer after a minute", what)
		panic("unreachable")
	}
}

func diskKey(i int) []byte {
	return RecordKey(1, TableObjects, []byte("pk"), []byte(fmt.Sprintf("k%05d", i)))
}

// bigRecord is a record of about n bytes.
func bigRecord(i, n int) []byte {
	o := &Object{Versions: []Version{{ID: fmt.Sprint(i), Timestamp: Timestamp(i + 1), WriteID: WriteID{byte(i)},
		Inline: bytes.Repeat([]byte{byte(i)}, n)}}}
	return EncodeObject(o)
}

func TestStoreWaitsOutAFullLog(t *testing.T) {
	for _, buffered := range []bool{false, true} {
		t.Run(fmt.Sprintf("buffered=%v", buffered), func(t *testing.T) {
			fs := &faultFS{FS: vfs.NewMem(), suffix: ".log", err: syscall.ENOSPC}
			s := faultStore(t, fs, StoreOptions{bufferWrites: buffered})
			merge := func(i int) error {
				_, err := s.Merge([]Item{{TableObjects, diskKey(i), bigRecord(i, 3000)}}, true)
				return err
			}
			acked := map[int]bool{}
			for i := range 20 {
				if err := merge(i); err != nil {
					t.Fatal(err)
				}
				acked[i] = true
			}

			fs.on.Store(true)
			err := within(t, "a merge on a full disk", func() error { return merge(20) })
			if !errors.Is(err, ErrDiskFull) {
				t.Fatalf("merge on a full disk: %v; want ErrDiskFull", err)
			}
			if fs.hits.Load() == 0 {
				t.Fatal("the log was never written while full")
			}
			if err := within(t, "a merge after the disk filled", func() error { return merge(21) }); !errors.Is(err, ErrDiskFull) {
				t.Fatalf("merge after the disk filled: %v; want ErrDiskFull", err)
			}
			for i := range acked {
				if v, err := s.Get(diskKey(i)); err != nil || !bytes.Equal(v, bigRecord(i, 3000)) {
					t.Fatalf("read %d on a full disk: %v, %d bytes", i, err, len(v))
				}
			}

			fs.on.Store(false)
			deadline := time.Now().Add(time.Minute)
			for err := merge(22); err != nil; err = merge(22) {
				if !errors.Is(err, ErrDiskFull) || time.Now().After(deadline) {
					t.Fatalf("merge after space returned: %v", err)
				}
				time.Sleep(10 * time.Millisecond)
			}
			acked[22] = true
			for i := 23; i < 40; i++ {
				if err := merge(i); err != nil {
					t.Fatal(err)
				}
				acked[i] = true
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			s = faultStore(t, fs, StoreOptions{})
			defer s.Close()
			for i := range acked {
				if v, err := s.Get(diskKey(i)); err != nil || !bytes.Equal(v, bigRecord(i, 3000)) {
					t.Fatalf("acknowledged merge %d after reopen: %v, %d bytes", i, err, len(v))
				}
			}
		})
	}
}

// TestStoreWaitsOutAFullFlush: a memtable flush that finds the disk full
// waits for space instead of failing over and over; writes are refused
// meanwhile and resume after it.
func TestStoreWaitsOutAFullFlush(t *testing.T) {
	fs := &faultFS{FS: vfs.NewMem(), suffix: ".sst", err: syscall.ENOSPC}
	s := faultStore(t, fs, StoreOptions{MemTableSize: 256 << 10})
	fs.on.Store(true)
	acked := 0
	deadline := time.Now().Add(time.Minute)
	for {
		_, err := s.Merge([]Item{{TableObjects, diskKey(acked), bigRecord(acked, 4000)}}, true)
		if errors.Is(err, ErrDiskFull) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		acked++
		if time.Now().After(deadline) {
			t.Fatalf("%d merges with every flush failing, none refused", acked)
		}
	}
	if fs.hits.Load() == 0 {
		t.Fatal("refused before a flush wrote")
	}
	fs.on.Store(false)
	deadline = time.Now().Add(time.Minute)
	for {
		_, err := s.Merge([]Item{{TableObjects, diskKey(acked), bigRecord(acked, 4000)}}, true)
		if err == nil {
			acked++
			break
		}
		if !errors.Is(err, ErrDiskFull) || time.Now().After(deadline) {
			t.Fatalf("merge after space returned: %v", err)
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = faultStore(t, fs, StoreOptions{})
	defer s.Close()
	for i := range acked {
		if v, err := s.Get(diskKey(i)); err != nil || !bytes.Equal(v, bigRecord(i, 4000)) {
			t.Fatalf("acknowledged merge %d after reopen: %v, %d bytes", i, err, len(v))
		}
	}
}

// TestStoreFailsOnALostLogSync: a sync of the log that fails (the kernel
// may have dropped the data) cannot be undone in the process. The store
// answers every write with ErrStoreFailed and keeps serving reads; even
// a commit that reaches pebble's panic on a failed log is answered.
func TestStoreFailsOnALostLogSync(t *testing.T) {
	fs := &faultFS{FS: vfs.NewMem(), suffix: ".log", err: syscall.EIO, syncs: true}
	s := faultStore(t, fs, StoreOptions{})
	if _, err := s.Merge([]Item{{TableObjects, diskKey(0), bigRecord(0, 100)}}, true); err != nil {
		t.Fatal(err)
	}
	fs.on.Store(true)
	err := within(t, "a merge whose sync fails", func() error {
		_, err := s.Merge([]Item{{TableObjects, diskKey(1), bigRecord(1, 100)}}, true)
		return err
	})
	if !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("merge whose sync failed: %v; want ErrStoreFailed", err)
	}
	if _, err := s.Merge([]Item{{TableObjects, diskKey(2), bigRecord(2, 100)}}, true); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("merge after a failed sync: %v; want ErrStoreFailed", err)
	}
	if err := s.SetMeta("x", []byte("y")); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("set meta after a failed sync: %v; want ErrStoreFailed", err)
	}
	// Past the refusal: commits of more than a log block make pebble's
	// log writer return its error, on which pebble panics.
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			b := s.db.NewBatch()
			_ = b.Set(diskKey(10+i), bytes.Repeat([]byte{1}, 64<<10), nil)
			err := within(t, "a commit on a failed log", func() error { return s.commit(b, true, nil) })
			if !errors.Is(err, ErrStoreFailed) {
				t.Errorf("commit on a failed log: %v; want ErrStoreFailed", err)
			}
		}()
	}
	wg.Wait()
	if v, err := s.Get(diskKey(0)); err != nil || !bytes.Equal(v, bigRecord(0, 100)) {
		t.Fatalf("read after the store failed: %v, %d bytes", err, len(v))
	}
	if err := s.Close(); !errors.Is(err, ErrStoreFailed) {
		t.Fatalf("close of a failed store: %v; want ErrStoreFailed", err)
	}
}

// TestSpaceFileResumesPartialWrites: a write cut short by a full disk
// resumes after the bytes that landed, so the file holds each byte once.
func TestSpaceFileResumesPartialWrites(t *testing.T) {
	mem := vfs.NewMem()
	fault := &faultFS{FS: mem, suffix: ".log", err: syscall.ENOSPC}
	d := newDiskState(quietLogger())
	d.retryMin, d.retryMax = time.Millisecond, time.Millisecond
	fs := spaceFS{fault, d}
	f, err := fs.Create("000001.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	want := bytes.Repeat([]byte("0123456789"), 1000)
	fault.on.Store(true)
	done := make(chan error, 1)
	go func() {
		// From a copy: under the race detector pebble's in-memory files
		// scribble over what was written from, to catch callers that
		// reuse it.
		p := bytes.Clone(want)
		_, err := f.Write(p[:5000])
		if err == nil {
			_, err = f.WriteAt(p[5000:], 5000)
		}
		done <- err
	}()
	// Each attempt lands half of what is left: the write goes on in
	// pieces, and the WriteAt too, until the fault is lifted.
	for fault.hits.Load() < 20 {
		time.Sleep(time.Millisecond)
	}
	if !errors.Is(d.err(), ErrDiskFull) {
		t.Fatalf("disk state while a write waits: %v", d.err())
	}
	fault.on.Store(false)
	if err := within(t, "a write after space returned", func() error { return <-done }); err != nil {
		t.Fatal(err)
	}
	if d.err() != nil {
		t.Fatalf("disk state after the write: %v", d.err())
	}
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := mem.Open("000001.log")
	if err != nil {
		t.Fatal(err)
	}
	got := make([]byte, 2*len(want))
	n, _ := r.ReadAt(got, 0)
	if !bytes.Equal(got[:n], want) {
		i := 0
		for i < n && got[i] == want[i] {
			i++
		}
		t.Fatalf("file holds %d bytes, not the %d written once each; first difference at %d", n, len(want), i)
	}
}

// TestReserveRefusesRecordsNotMetadata: below the node's reserve
// (StoreOptions.DiskFull) record writes are refused and node metadata,
// which lets the node follow layout changes, is still written.
func TestReserveRefusesRecordsNotMetadata(t *testing.T) {
	var below atomic.Bool
	s := faultStore(t, vfs.NewMem(), StoreOptions{DiskFull: below.Load})
	defer s.Close()
	below.Store(true)
	if _, err := s.Merge([]Item{{TableObjects, diskKey(0), bigRecord(0, 10)}}, true); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("merge below the reserve: %v; want ErrDiskFull", err)
	}
	if err := s.Refusing(); !errors.Is(err, ErrDiskFull) {
		t.Fatalf("Refusing below the reserve: %v", err)
	}
	if err := s.SetMeta("layout", []byte("v2")); err != nil {
		t.Fatalf("metadata below the reserve: %v", err)
	}
	below.Store(false)
	if _, err := s.Merge([]Item{{TableObjects, diskKey(0), bigRecord(0, 10)}}, true); err != nil {
		t.Fatalf("merge above the reserve: %v", err)
	}
}

// TestRoomyStoreCommitsInline: a store told its disk is roomy commits on
// the caller's goroutine, and its writes are as durable; told otherwise
// (or not told) it hands synced commits to a worker.
func TestRoomyStoreCommitsInline(t *testing.T) {
	var roomy atomic.Bool
	roomy.Store(true)
	fs := &faultFS{FS: vfs.NewMem(), suffix: ".log", err: syscall.ENOSPC}
	s := faultStore(t, fs, StoreOptions{Roomy: roomy.Load})
	for i := range 10 {
		if _, err := s.Merge([]Item{{TableObjects, diskKey(i), bigRecord(i, 100)}}, true); err != nil {
			t.Fatal(err)
		}
	}
	// The workers pool starts a goroutine for its first task only when
	// the store hands a commit over.
	if n := s.committers.Started(); n != 0 {
		t.Fatalf("a roomy store started %d commit workers", n)
	}
	roomy.Store(false)
	if _, err := s.Merge([]Item{{TableObjects, diskKey(10), bigRecord(10, 100)}}, true); err != nil {
		t.Fatal(err)
	}
	if n := s.committers.Started(); n != 1 {
		t.Fatalf("a store near its floor started %d commit workers; want 1", n)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s = faultStore(t, fs, StoreOptions{})
	defer s.Close()
	for i := range 11 {
		if v, err := s.Get(diskKey(i)); err != nil || !bytes.Equal(v, bigRecord(i, 100)) {
			t.Fatalf("merge %d after reopen: %v", i, err)
		}
	}
}
