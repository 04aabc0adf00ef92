package blobs

import (
	"bytes"
	"crypto/rand"
	"errors"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/ringstore/ringstore/internal/tmpfs"
)

// TestPutOnAFullDisk: on a filesystem that fills up, a chunk write fails
// with an error that is ENOSPC for errors.Is (the gateway answers 507 for
// it), leaves no temporary file behind, and every chunk written before
// reads back; once a delete frees space, writes succeed again.
func TestPutOnAFullDisk(t *testing.T) {
	dir := tmpfs.Mount(t, 1<<20)
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	chunk := func() []byte {
		b := make([]byte, 64<<10)
		_, _ = rand.Read(b)
		return b
	}
	var stored [][]byte
	var failed []byte
	for range 100 {
		data := chunk()
		if _, _, err := s.Put(data); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("put on a full disk: %v; want ENOSPC", err)
			}
			failed = data
			break
		}
		stored = append(stored, data)
	}
	if failed == nil {
		t.Fatal("100 chunks of 64 KiB fit a 1 MiB filesystem")
	}
	if left, _ := os.ReadDir(filepath.Join(dir, "tmp")); len(left) > 0 {
		t.Fatalf("a failed put left %d temporary files", len(left))
	}
	for i, data := range stored {
		if got, err := s.Get(Sum(data), nil); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("chunk %d on a full disk: %v", i, err)
		}
	}
	for _, data := range stored[:2] {
		if ok, err := s.Delete(Sum(data), func(time.Time) bool { return true }); !ok || err != nil {
			t.Fatalf("delete on a full disk: %v, %v", ok, err)
		}
	}
	if _, _, err := s.Put(failed); err != nil {
		t.Fatalf("put after a delete freed space: %v", err)
	}
	for _, data := range append(stored[2:], failed) {
		if got, err := s.Get(Sum(data), nil); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("chunk after space was freed: %v", err)
		}
	}
}
