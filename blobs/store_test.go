// store_test.go checks the chunk store's contract: what Put acknowledges
// is readable and verified, a damaged chunk is never served (it is moved
// to quarantine), deletes honour the caller's last-moment decision, and
// leftovers of interrupted writes are cleaned at Open.
package blobs

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestPutGetVerify(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("ringstore"), 1000)
	id, existed, err := s.Put(data)
	if err != nil || existed {
		t.Fatalf("Put = %v existed=%v", err, existed)
	}
	if id != Sum(data) {
		t.Fatal("Put returned an id that is not the SHA-256 of the data")
	}
	got, err := s.Get(id, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %v; bytes equal %v", err, bytes.Equal(got, data))
	}
	if _, existed, _ := s.Put(data); !existed {
		t.Fatal("second Put of the same bytes wrote again")
	}
	if _, err := s.Get(Sum([]byte("absent")), nil); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Get of absent chunk = %v; want ErrNotFound", err)
	}
}

func TestCorruptChunkIsQuarantined(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	id, _, _ := s.Put([]byte("precious bytes"))
	p := s.path(id)
	b, _ := os.ReadFile(p)
	b[3] ^= 0x40
	if err := os.WriteFile(p, b, 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get(id, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Get of flipped chunk = %v; want ErrCorrupt", err)
	}
	if s.Has(id) {
		t.Fatal("corrupt chunk still in place")
	}
	q, _ := os.ReadDir(filepath.Join(dir, "quarantine"))
	if len(q) != 1 {
		t.Fatalf("quarantine holds %d files; want 1", len(q))
	}
	// A fresh Put of the right bytes repairs it.
	if _, existed, err := s.Put([]byte("precious bytes")); err != nil || existed {
		t.Fatalf("repairing Put = %v existed=%v", err, existed)
	}
	if _, err := s.Get(id, nil); err != nil {
		t.Fatalf("Get after repair = %v", err)
	}
}

func TestDeleteDecides(t *testing.T) {
	s, _ := Open(t.TempDir())
	id, _, _ := s.Put([]byte("x"))
	ok, err := s.Delete(id, func(time.Time) bool { return false })
	if err != nil || ok || !s.Has(id) {
		t.Fatalf("Delete with decide=false removed the chunk (%v, %v)", ok, err)
	}
	ok, err = s.Delete(id, func(time.Time) bool { return true })
	if err != nil || !ok || s.Has(id) {
		t.Fatalf("Delete with decide=true = %v, %v", ok, err)
	}
	if ok, err := s.Delete(id, func(time.Time) bool { return true }); ok || err != nil {
		t.Fatalf("Delete of absent chunk = %v, %v", ok, err)
	}
}

func TestOpenCleansTmpAndWalk(t *testing.T) {
	dir := t.TempDir()
	s, _ := Open(dir)
	for _, d := range []string{"a", "b", "c"} {
		if _, _, err := s.Put([]byte(d)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "tmp", "half-written"), []byte("junk"), 0o644); err != nil {
		t.Fatal(err)
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) != 0 {
		t.Fatalf("tmp holds %d files after Open; want 0", len(left))
	}
	n := 0
	if err := s.Walk(func(id ID, size int64, _ time.Time) bool { n++; return true }); err != nil {
		t.Fatal(err)
	}
	if n != 3 {
		t.Fatalf("Walk saw %d chunks; want 3", n)
	}
}

func BenchmarkPut1MiB(b *testing.B) {
	s, _ := Open(b.TempDir())
	data := make([]byte, 1<<20)
	b.SetBytes(int64(len(data)))
	for i := 0; b.Loop(); i++ {
		data[0], data[1], data[2] = byte(i), byte(i>>8), byte(i>>16)
		if _, _, err := s.Put(data); err != nil {
			b.Fatal(err)
		}
	}
}

// TestAlignedChunkRoundTrip writes a chunk whose size and buffer are
// page-aligned (the O_DIRECT path on Linux filesystems that support it)
// and reads it back verified.
func TestAlignedChunkRoundTrip(t *testing.T) {
	s, _ := Open(t.TempDir())
	data := make([]byte, 1<<20)
	for i := range data {
		data[i] = byte(i * 7)
	}
	id, _, err := s.Put(data)
	if err != nil {
		t.Fatal(err)
	}
	got, err := s.Get(id, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("aligned chunk read back: %v, equal %v", err, bytes.Equal(got, data))
	}
}
