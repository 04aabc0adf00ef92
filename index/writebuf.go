package index

import (
	"strings"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// writeBufferFS holds writes to the write-ahead log in memory until the log
// is synced, closed, read or grows past walBufferMax, so that the batches
// committed between two syncs reach the file in one write; and it writes
// new tables and blob files in pieces of tableBufferMax.
//
// Why: while a busy node holds a sync back (--wal-sync-delay), pebble
// writes each batch to the file as it arrives, 3.2-3.6 writes per sync on a
// cluster node under 4 KiB PUTs, each a system call that costs about as
// much CPU as a small replica merge's own work.
//
// What it changes: a commit that did not ask for a sync is lost if the
// process dies before the next sync, where before it was lost only if the
// machine died. Every write a client is acknowledged for is synced; the
// index commits without a sync only read repairs, which anti-entropy
// redoes.
type writeBufferFS struct{ vfs.FS }

// walBufferMax bounds the memory a log holds back.
const walBufferMax = 1 << 20

// tableBufferMax is the write size for new tables and blob files. Pebble
// writes them through a 4 KiB buffer, and blocks of inline values rarely
// fill it evenly: flushes made 2 KB writes on average, 550 a second on a
// busy cluster node. Their data counts only once synced, which flushes
// the buffer first.
const tableBufferMax = 256 << 10

// bufferFor returns how much of a new file's writes to hold back, 0 for
// none.
func bufferFor(name string) int {
	switch {
	case strings.HasSuffix(name, ".log"):
		return walBufferMax
	case strings.HasSuffix(name, ".sst"), strings.HasSuffix(name, ".blob"):
		return tableBufferMax
	}
	return 0
}

func (fs writeBufferFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, category)
	n := bufferFor(name)
	if err != nil || n == 0 {
		return f, err
	}
	return &bufferedFile{File: f, max: n}, nil
}

func (fs writeBufferFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.ReuseForWrite(oldname, newname, category)
	n := bufferFor(newname)
	if err != nil || n == 0 {
		return f, err
	}
	return &bufferedFile{File: f, max: n}, nil
}

type bufferedFile struct {
	vfs.File
	max int // writes are held back until this many bytes, or a sync
	mu  sync.Mutex
	buf []byte
	err error // the first failed write; every later call returns it
}

func (f *bufferedFile) Write(p []byte) (int, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.err != nil {
		return 0, f.err
	}
	f.buf = append(f.buf, p...)
	if len(f.buf) >= f.max {
		if err := f.flushLocked(); err != nil {
			return 0, err
		}
	}
	return len(p), nil
}

func (f *bufferedFile) flushLocked() error {
	if f.err != nil {
		return f.err
	}
	if len(f.buf) == 0 {
		return nil
	}
	_, err := f.File.Write(f.buf)
	f.buf = f.buf[:0]
	if err != nil {
		f.err = err
	}
	return err
}

func (f *bufferedFile) flush() error {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.flushLocked()
}

func (f *bufferedFile) Sync() error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.File.Sync()
}

func (f *bufferedFile) SyncData() error {
	if err := f.flush(); err != nil {
		return err
	}
	return f.File.SyncData()
}

func (f *bufferedFile) SyncTo(length int64) (bool, error) {
	if err := f.flush(); err != nil {
		return false, err
	}
	return f.File.SyncTo(length)
}

func (f *bufferedFile) Close() error {
	err := f.flush()
	if cerr := f.File.Close(); err == nil {
		err = cerr
	}
	return err
}

func (f *bufferedFile) Read(p []byte) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.Read(p)
}

func (f *bufferedFile) ReadAt(p []byte, off int64) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.ReadAt(p, off)
}

func (f *bufferedFile) WriteAt(p []byte, off int64) (int, error) {
	if err := f.flush(); err != nil {
		return 0, err
	}
	return f.File.WriteAt(p, off)
}

func (f *bufferedFile) Stat() (vfs.FileInfo, error) {
	if err := f.flush(); err != nil {
		return nil, err
	}
	return f.File.Stat()
}
