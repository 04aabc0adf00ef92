package sse

import (
	"bytes"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func randKey(t testing.TB) []byte {
	k := make([]byte, KeySize)
	_, _ = rand.Read(k)
	return k
}

func TestSealOpenInPlace(t *testing.T) {
	s := NewSealer(NewDataKey())
	for _, n := range []int{0, 1, 15, 16, 17, 4096, 1<<20 - Overhead} {
		plain := bytes.Repeat([]byte{byte(n)}, n)
		buf := make([]byte, n+Overhead)
		copy(buf[NonceSize:], plain)
		piece := s.SealInPlace(buf, n)
		if len(piece) != n+Overhead || &piece[0] != &buf[0] {
			t.Fatalf("n=%d: sealed %d bytes, not in place", n, len(piece))
		}
		if n >= 16 && bytes.Contains(piece, plain[:16]) {
			t.Fatalf("n=%d: plaintext visible in the sealed piece", n)
		}
		got, err := s.OpenInPlace(piece)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("n=%d: open = %v, %v", n, len(got), err)
		}
	}
}

func TestSealedPiecesDiffer(t *testing.T) {
	// The same plaintext under the same key seals to different bytes (a
	// fresh nonce), and under two keys to unrelated ones: equal plaintexts
	// never share a chunk id.
	plain := bytes.Repeat([]byte("same"), 1000)
	a, b := NewSealer(NewDataKey()), NewSealer(NewDataKey())
	if bytes.Equal(a.Seal(plain), a.Seal(plain)) || bytes.Equal(a.Seal(plain), b.Seal(plain)) {
		t.Fatal("equal sealed pieces")
	}
}

func TestOpenRefusesTampering(t *testing.T) {
	s := NewSealer(NewDataKey())
	piece := s.Seal([]byte("hello, world"))
	for i := range piece {
		bad := append([]byte(nil), piece...)
		bad[i] ^= 1
		if _, err := s.Open(bad); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("flipped byte %d: %v", i, err)
		}
	}
	if _, err := NewSealer(NewDataKey()).Open(piece); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("another key opened the piece: %v", err)
	}
	if _, err := s.Open(piece[:Overhead-1]); !errors.Is(err, ErrCorrupt) {
		t.Fatal("short piece opened")
	}
	if _, err := s.Open(piece); err != nil {
		t.Fatal(err)
	}
}

func TestCustomerWrap(t *testing.T) {
	ck := randKey(t)
	k := NewDataKey()
	w, err := WrapCustomer(ck, k)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(w.Wrapped, k[:8]) || bytes.Contains(w.KeyCheck, ck[:8]) || bytes.Contains(w.Wrapped, ck[:8]) {
		t.Fatal("a key shows in the record")
	}
	got, err := UnwrapCustomer(ck, w)
	if err != nil || got != k {
		t.Fatalf("unwrap = %x, %v", got, err)
	}
	if _, err := UnwrapCustomer(randKey(t), w); !errors.Is(err, ErrWrongKey) {
		t.Fatalf("wrong key: %v", err)
	}
	w.Wrapped[20] ^= 1
	if _, err := UnwrapCustomer(ck, w); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("damaged wrap: %v", err)
	}
	// The same customer key wraps two data keys under unrelated salts.
	w2, _ := WrapCustomer(ck, k)
	if bytes.Equal(w.Salt, w2.Salt) || bytes.Equal(w.KeyCheck, w2.KeyCheck) {
		t.Fatal("two records of one customer key are linkable")
	}
	if _, err := WrapCustomer(ck[:16], k); err == nil {
		t.Fatal("short customer key wrapped")
	}
}

func TestETagDependsOnTheKey(t *testing.T) {
	md := []byte("0123456789abcdef")
	a := NewSealer(NewDataKey())
	if a.ETag(md) != a.ETag(md) || len(a.ETag(md)) != 32 {
		t.Fatal("ETag not stable or not 32 hex digits")
	}
	if a.ETag(md) == NewSealer(NewDataKey()).ETag(md) {
		t.Fatal("ETags of two keys agree")
	}
}

func keyText(id string, k []byte) string { return id + ":" + base64.StdEncoding.EncodeToString(k) }

func TestKeyringRotation(t *testing.T) {
	k1, k2 := randKey(t), randKey(t)
	old, err := ParseKeyring("# first key\n" + keyText("k1", k1) + "\n")
	if err != nil {
		t.Fatal(err)
	}
	id, wrapped := old.Wrap(NewDataKey())
	if id != "k1" {
		t.Fatalf("wrapped with %q", id)
	}
	rotated, err := ParseKeyring(keyText("k1", k1) + ", " + keyText("k2", k2))
	if err != nil {
		t.Fatal(err)
	}
	if rotated.Newest() != "k2" || strings.Join(rotated.IDs(), ",") != "k1,k2" {
		t.Fatalf("newest %q, ids %v", rotated.Newest(), rotated.IDs())
	}
	if _, err := rotated.Unwrap(id, wrapped); err != nil {
		t.Fatalf("the old key no longer unwraps: %v", err)
	}
	if id2, _ := rotated.Wrap(NewDataKey()); id2 != "k2" {
		t.Fatalf("new data key wrapped with %q", id2)
	}
	// A key id names its key: the wrapping is bound to it.
	swapped, _ := ParseKeyring(keyText("k2", k1))
	if _, err := swapped.Unwrap("k2", wrapped); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("unwrapped under another id: %v", err)
	}
	if _, err := ParseKeyring(keyText("k2", k2)); err != nil {
		t.Fatal(err)
	}
	only2, _ := ParseKeyring(keyText("k2", k2))
	if _, err := only2.Unwrap("k1", wrapped); !errors.Is(err, ErrUnknownKeyID) {
		t.Fatalf("dropped key: %v", err)
	}
}

func TestParseKeyringRefuses(t *testing.T) {
	k := base64.StdEncoding.EncodeToString(randKey(t))
	for _, text := range []string{
		"", "# nothing", "k1", ":" + k, "k1:" + k[:10], "k1:!!!", "a/b:" + k,
		strings.Repeat("x", 33) + ":" + k, "k1:" + k + "\nk1:" + k,
		"k1:" + base64.StdEncoding.EncodeToString(make([]byte, 16)),
	} {
		if _, err := ParseKeyring(text); err == nil {
			t.Errorf("%q accepted", text)
		}
	}
}

func TestLoadKeyring(t *testing.T) {
	text := keyText("k1", randKey(t)) + "\n"
	dir := t.TempDir()
	p := filepath.Join(dir, "keys")
	if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadKeyring(p, ""); err == nil || !strings.Contains(err.Error(), "chmod 600") {
		t.Fatalf("a world-readable key file: %v", err)
	}
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	if kr, err := LoadKeyring(p, ""); err != nil || kr.Newest() != "k1" {
		t.Fatalf("file: %v", err)
	}
	if kr, err := LoadKeyring("", text); err != nil || kr.Newest() != "k1" {
		t.Fatalf("environment: %v", err)
	}
	if _, err := LoadKeyring(p, text); err == nil {
		t.Fatal("both sources accepted")
	}
	if kr, err := LoadKeyring("", ""); kr != nil || err != nil {
		t.Fatalf("no source: %v, %v", kr, err)
	}
}

func FuzzParseKeyring(f *testing.F) {
	k := base64.StdEncoding.EncodeToString(make([]byte, KeySize))
	f.Add("k1:" + k)
	f.Add("# c\nk1:" + k + ",k2:" + k + " k3:" + k + "\r\n")
	f.Add("k1:" + k + "\nk1:" + k)
	f.Add(":::,,,###")
	f.Fuzz(func(t *testing.T, text string) {
		kr, err := ParseKeyring(text)
		if err != nil {
			return
		}
		ids := kr.IDs()
		if len(ids) == 0 || ids[len(ids)-1] != kr.Newest() {
			t.Fatalf("ids %v, newest %q", ids, kr.Newest())
		}
		for _, id := range ids {
			if checkKeyID(id) != nil || len(kr.keys[id]) != KeySize {
				t.Fatalf("accepted key %q of %d bytes", id, len(kr.keys[id]))
			}
		}
		dk := NewDataKey()
		id, w := kr.Wrap(dk)
		if got, err := kr.Unwrap(id, w); err != nil || got != dk {
			t.Fatalf("round trip: %v", err)
		}
	})
}

func BenchmarkSealInPlace(b *testing.B) {
	s := NewSealer(NewDataKey())
	const n = 1<<20 - Overhead
	buf := make([]byte, 1<<20)
	b.SetBytes(n)
	for b.Loop() {
		s.SealInPlace(buf, n)
	}
}

func BenchmarkOpenInPlace(b *testing.B) {
	s := NewSealer(NewDataKey())
	const n = 1<<20 - Overhead
	piece := s.Seal(make([]byte, n))
	work := make([]byte, len(piece))
	b.SetBytes(n)
	for b.Loop() {
		copy(work, piece) // opening in place overwrites the piece
		if _, err := s.OpenInPlace(work); err != nil {
			b.Fatal(err)
		}
	}
}
