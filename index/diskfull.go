package index

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// ErrDiskFull means the store refused a write, or stopped waiting for one,
// because its disk is full or below the node's reserve of free space. A
// write that returned it may still land once space returns: it was not
// acknowledged, so either outcome is allowed.
var ErrDiskFull = errors.New("index: disk full")

// ErrStoreFailed means a write failed in a way pebble cannot recover from
// within the process (a failed sync of its log or manifest): the store
// serves reads but refuses every write until the node is restarted, which
// replays the log.
var ErrStoreFailed = errors.New("index: store failed, restart the node")

// errBelowReserve is ErrDiskFull for a write refused because the node's
// free space is below its reserve (StoreOptions.DiskFull).
var errBelowReserve = fmt.Errorf("%w: free space below the node's reserve", ErrDiskFull)

// Pebble cannot survive a failed write to its log or manifest: the log
// writer keeps its first error forever, and the next commit panics with
// the commit pipeline's mutex held, so that every later write blocks; a
// failed manifest write calls Fatalf. Neither can be undone in the
// process, and reopening the store needs the lock the open store holds.
// Running out of space is the one such failure that fixes itself, so
// spaceFS keeps it from pebble: a write that finds the disk full waits,
// retrying, until space returns, while diskState tells the store to
// refuse new writes and to stop waiting for those already in flight.
// Other failures of the log or manifest put the store in a failed state
// that answers errors instead of wedging.

// diskState is what the store's filesystem has seen of its disk.
type diskState struct {
	log *slog.Logger
	// retryMin and retryMax bound the wait between attempts of a write
	// that found the disk full.
	retryMin, retryMax time.Duration

	waiting atomic.Int32          // writes waiting for space
	failed  atomic.Pointer[error] // the error that failed the store
	// bad is closed while writes wait for space or once the store failed;
	// replaced by an open channel when space returns.
	bad atomic.Pointer[chan struct{}]

	mu     sync.Mutex // orders the transitions below
	closed bool       // *bad is closed
}

func newDiskState(log *slog.Logger) *diskState {
	d := &diskState{log: log, retryMin: 10 * time.Millisecond, retryMax: time.Second}
	ch := make(chan struct{})
	d.bad.Store(&ch)
	return d
}

// err returns why the store must refuse writes now, or nil.
func (d *diskState) err() error {
	if e := d.failed.Load(); e != nil {
		return *e
	}
	if d.waiting.Load() > 0 {
		return ErrDiskFull
	}
	return nil
}

// unhealthy returns a channel that is closed once the disk is full or the
// store failed (already closed if it is so now).
func (d *diskState) unhealthy() <-chan struct{} { return *d.bad.Load() }

func (d *diskState) closeBadLocked() {
	if !d.closed {
		close(*d.bad.Load())
		d.closed = true
	}
}

func (d *diskState) enterFull(name string, err error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waiting.Add(1) == 1 {
		d.log.Warn("index store: disk full; writes are refused until space is freed", "file", name, "err", err)
	}
	d.closeBadLocked()
}

func (d *diskState) leaveFull() {
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.waiting.Add(-1) > 0 || d.failed.Load() != nil {
		return
	}
	d.log.Info("index store: disk space is back; writes resume")
	ch := make(chan struct{})
	d.bad.Store(&ch)
	d.closed = false
}

// fail puts the store in the failed state; the first cause is kept.
func (d *diskState) fail(cause error) {
	err := fmt.Errorf("%w: %w", ErrStoreFailed, cause)
	d.mu.Lock()
	defer d.mu.Unlock()
	if d.failed.CompareAndSwap(nil, &err) {
		d.log.Error("index store failed: it refuses writes until the node is restarted", "err", cause)
		d.closeBadLocked()
	}
}

func isENOSPC(err error) bool { return errors.Is(err, syscall.ENOSPC) }

// retry runs op until it does not fail for lack of space.
func (d *diskState) retry(name string, op func() error) error {
	err := op()
	if !isENOSPC(err) {
		return err
	}
	d.enterFull(name, err)
	defer d.leaveFull()
	wait := d.retryMin
	for {
		time.Sleep(wait)
		wait = min(2*wait, d.retryMax)
		if err = op(); !isENOSPC(err) {
			return err
		}
	}
}

// backOff waits as retry would once, counting as full meanwhile: for a
// failure pebble answers by trying again at once.
func (d *diskState) backOff(name string, err error) {
	d.enterFull(name, err)
	time.Sleep(d.retryMax)
	d.leaveFull()
}

// spaceFS is the store's filesystem with the handling of full disks
// described above.
type spaceFS struct {
	vfs.FS
	d *diskState
}

// vital reports whether pebble cannot survive a failed write of the
// file: anything but a table or blob file, whose failed flush or
// compaction pebble cleans up and tries again.
func vital(name string) bool {
	return !strings.HasSuffix(name, ".sst") && !strings.HasSuffix(name, ".blob")
}

func (fs spaceFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if err != nil {
		return f, err
	}
	return &spaceFile{File: f, name: name, vital: vital(name), d: fs.d}, nil
}

func (fs spaceFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	var f vfs.File
	err := fs.d.retry(name, func() (err error) {
		f, err = fs.FS.Create(name, category)
		return err
	})
	return fs.wrap(name, f, err)
}

func (fs spaceFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	var f vfs.File
	err := fs.d.retry(newname, func() (err error) {
		f, err = fs.FS.ReuseForWrite(oldname, newname, category)
		return err
	})
	return fs.wrap(newname, f, err)
}

func (fs spaceFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	var f vfs.File
	err := fs.d.retry(name, func() (err error) {
		f, err = fs.FS.OpenReadWrite(name, category, opts...)
		return err
	})
	return fs.wrap(name, f, err)
}

func (fs spaceFS) OpenDir(name string) (vfs.File, error) {
	f, err := fs.FS.OpenDir(name)
	return fs.wrap(name, f, err)
}

func (fs spaceFS) Link(oldname, newname string) error {
	return fs.d.retry(newname, func() error { return fs.FS.Link(oldname, newname) })
}

func (fs spaceFS) Rename(oldname, newname string) error {
	return fs.d.retry(newname, func() error { return fs.FS.Rename(oldname, newname) })
}

func (fs spaceFS) MkdirAll(dir string, perm os.FileMode) error {
	return fs.d.retry(dir, func() error { return fs.FS.MkdirAll(dir, perm) })
}

// spaceFile retries writes that find the disk full. A write that stopped
// part way is resumed after the bytes that landed: a file written in
// sequence has its offset just past them, and WriteAt continues at the
// matching offset.
type spaceFile struct {
	vfs.File
	name  string
	vital bool
	d     *diskState
}

func (f *spaceFile) Write(p []byte) (int, error) {
	done := 0
	err := f.d.retry(f.name, func() error {
		n, err := f.File.Write(p[done:])
		done += n
		return err
	})
	return done, f.failed(err)
}

func (f *spaceFile) WriteAt(p []byte, off int64) (int, error) {
	done := 0
	err := f.d.retry(f.name, func() error {
		n, err := f.File.WriteAt(p[done:], off+int64(done))
		done += n
		return err
	})
	return done, f.failed(err)
}

// A failed sync is never retried: the kernel may have dropped the pages
// it could not write and report the next sync clean.
func (f *spaceFile) Sync() error { return f.syncFailed(f.File.Sync()) }

func (f *spaceFile) SyncData() error { return f.syncFailed(f.File.SyncData()) }

func (f *spaceFile) SyncTo(length int64) (bool, error) {
	full, err := f.File.SyncTo(length)
	return full, f.syncFailed(err)
}

// failed records a write error pebble cannot survive.
func (f *spaceFile) failed(err error) error {
	if err != nil && f.vital {
		f.d.fail(f.named("write", err))
	}
	return err
}

// named returns err naming the file, if it does not already.
func (f *spaceFile) named(op string, err error) error {
	if strings.Contains(err.Error(), f.name) {
		return err
	}
	return fmt.Errorf("%s %s: %w", op, f.name, err)
}

func (f *spaceFile) syncFailed(err error) error {
	if err == nil {
		return nil
	}
	if !f.vital {
		if isENOSPC(err) {
			f.d.backOff(f.name, err)
		}
		return err
	}
	f.d.fail(f.named("sync", err))
	return err
}
