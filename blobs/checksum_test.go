// checksum_test.go checks the fast checksum chunk files carry: reads trust
// it, scrub does not, a damaged or missing one is rewritten from bytes
// that match their ID, and damaged bytes are never served either way.
package blobs

import (
	"bytes"
	"errors"
	"os"
	"testing"
)

// sumOf reads the checksum attribute of chunk id, skipping the test on a
// filesystem without extended attributes.
func sumOf(t *testing.T, s *Store, id ID) (uint64, bool) {
	t.Helper()
	f, err := os.Open(s.path(id))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	return readSum(f)
}

func setSum(t *testing.T, s *Store, id ID, sum uint64) {
	t.Helper()
	f, err := os.Open(s.path(id))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !writeSum(f, sum) {
		t.Skip("no extended attributes on this filesystem")
	}
}

func TestChunkCarriesFastChecksum(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("chunk"), 50000)
	id, _, err := s.Put(data)
	if err != nil {
		t.Fatal(err)
	}
	if s.noSums.Load() {
		t.Skip("no extended attributes on this filesystem")
	}
	if sum, ok := sumOf(t, s, id); !ok || sum != fastSum(data) {
		t.Fatalf("stored checksum %x (present %v); want %x", sum, ok, fastSum(data))
	}

	// A damaged checksum over good bytes: served, and the checksum fixed.
	setSum(t, s, id, fastSum(data)^1)
	if got, err := s.Get(id, nil); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get with a damaged checksum = %v", err)
	}
	if sum, _ := sumOf(t, s, id); sum != fastSum(data) {
		t.Fatal("a damaged checksum was not rewritten")
	}

	// A chunk from before checksums: verified by its ID, then given one.
	f, err := os.Open(s.path(id))
	if err != nil {
		t.Fatal(err)
	}
	_ = removeSum(f)
	f.Close()
	if _, ok := sumOf(t, s, id); ok {
		t.Fatal("checksum still present after removal")
	}
	if got, err := s.Get(id, nil); err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get without a checksum = %v", err)
	}
	if sum, ok := sumOf(t, s, id); !ok || sum != fastSum(data) {
		t.Fatal("a chunk read without a checksum did not get one")
	}
}

// TestReadsTrustChecksumScrubDoesNot: bytes that match their checksum but
// not their ID (as if a chunk were written under the wrong name) pass a
// read and fail GetVerified, which scrub uses, and are quarantined.
func TestReadsTrustChecksumScrubDoesNot(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good := []byte("the bytes the id names")
	id, _, err := s.Put(good)
	if err != nil {
		t.Fatal(err)
	}
	if s.noSums.Load() {
		t.Skip("no extended attributes on this filesystem")
	}
	other := []byte("other bytes, same length")
	if err := os.WriteFile(s.path(id), other, 0o644); err != nil {
		t.Fatal(err)
	}
	setSum(t, s, id, fastSum(other))
	if got, err := s.Get(id, nil); err != nil || !bytes.Equal(got, other) {
		t.Fatalf("Get = %q, %v; want the bytes the checksum vouches for", got, err)
	}
	if _, err := s.GetVerified(id, nil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("GetVerified = %v; want ErrCorrupt", err)
	}
	if s.Has(id) {
		t.Fatal("the mismatched chunk was not quarantined")
	}
}

// TestFlippedByteFailsBothChecks: damage to the bytes fails the checksum
// and then the ID; the chunk is never served.
func TestFlippedByteFailsBothChecks(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte{0xa5}, 1<<20)
	id, _, err := s.Put(data)
	if err != nil {
		t.Fatal(err)
	}
	for i, off := range []int{0, 4095, 1<<20 - 1} {
		if i > 0 {
			if _, _, err := s.Put(data); err != nil {
				t.Fatal(err)
			}
		}
		b := bytes.Clone(data)
		b[off] ^= 0x01
		// Rewrite in place: the inode, and its checksum, stay.
		f, err := os.OpenFile(s.path(id), os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.WriteAt(b[off:off+1], int64(off)); err != nil {
			t.Fatal(err)
		}
		f.Close()
		if _, err := s.Get(id, nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("byte %d flipped: Get = %v; want ErrCorrupt", off, err)
		}
	}
}
