// writebuf_test.go checks the index store's file write buffers: a sync
// writes what was held back in one write and makes it durable, memory
// held back is bounded, and every other use of the file sees all that
// was written.
package index

import (
	"bytes"
	"io"
	"sync/atomic"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// countingFS counts the writes that reach files.
type countingFS struct {
	vfs.FS
	writes *atomic.Int64
}

func (fs countingFS) Create(name string, c vfs.DiskWriteCategory) (vfs.File, error) {
	f, err := fs.FS.Create(name, c)
	if err != nil {
		return nil, err
	}
	return countingFile{f, fs.writes}, nil
}

type countingFile struct {
	vfs.File
	writes *atomic.Int64
}

func (f countingFile) Write(p []byte) (int, error) {
	f.writes.Add(1)
	return f.File.Write(p)
}

func TestWALBufferWritesOncePerSync(t *testing.T) {
	var writes atomic.Int64
	fs := writeBufferFS{countingFS{vfs.NewMem(), &writes}}
	f, err := fs.Create("000001.log", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	var want []byte
	for i := 0; i < 10; i++ {
		rec := bytes.Repeat([]byte{byte(i)}, 4000)
		want = append(want, rec...)
		if _, err := f.Write(rec); err != nil {
			t.Fatal(err)
		}
	}
	if n := writes.Load(); n != 0 {
		t.Fatalf("%d writes reached the file before a sync; want 0", n)
	}
	if err := f.SyncData(); err != nil {
		t.Fatal(err)
	}
	if n := writes.Load(); n != 1 {
		t.Fatalf("a sync made %d writes; want 1", n)
	}
	if st, err := f.Stat(); err != nil || st.Size() != int64(len(want)) {
		t.Fatalf("size after sync %v, %v; want %d", st, err, len(want))
	}

	// Without a sync, what is held back stays under walBufferMax.
	big := bytes.Repeat([]byte{0xee}, 64<<10)
	for i := 0; i < 3*walBufferMax/len(big); i++ {
		want = append(want, big...)
		if _, err := f.Write(big); err != nil {
			t.Fatal(err)
		}
		if held := len(f.(*bufferedFile).buf); held >= walBufferMax {
			t.Fatalf("%d bytes held back; want under %d", held, walBufferMax)
		}
	}
	// Reads, Stat and Close see everything written.
	got := make([]byte, len(want))
	if _, err := f.ReadAt(got, 0); err != nil && err != io.EOF {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatal("ReadAt does not see all that was written")
	}
	if _, err := f.Write([]byte("tail")); err != nil {
		t.Fatal(err)
	}
	want = append(want, "tail"...)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	r, err := fs.Open("000001.log")
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	all, err := io.ReadAll(r)
	if err != nil || !bytes.Equal(all, want) {
		t.Fatalf("after Close the file holds %d bytes (%v); want %d", len(all), err, len(want))
	}

	// Tables go out in pieces of tableBufferMax, and whole at a sync.
	g, err := fs.Create("000002.sst", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	before := writes.Load()
	block := bytes.Repeat([]byte{1}, 2000)
	blocks := 2 * (tableBufferMax/len(block) + 1) // just over two pieces' worth
	for i := 0; i < blocks; i++ {
		if _, err := g.Write(block); err != nil {
			t.Fatal(err)
		}
	}
	if n := writes.Load() - before; n != 2 {
		t.Fatalf("%d table writes for %d blocks; want 2", n, blocks)
	}
	if err := g.Sync(); err != nil {
		t.Fatal(err)
	}
	if st, err := g.Stat(); err != nil || st.Size() != int64(blocks*len(block)) {
		t.Fatalf("table size after sync: %v, %v", st, err)
	}
	g.Close()

	// Other files are not buffered.
	m, err := fs.Create("MANIFEST-000003", vfs.WriteCategoryUnspecified)
	if err != nil {
		t.Fatal(err)
	}
	before = writes.Load()
	if _, err := m.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if writes.Load() != before+1 {
		t.Fatal("a manifest write was held back")
	}
	m.Close()
}
