// put_test.go checks the two rules of a chunk write. The store keeps a
// chunk only under the ID its bytes hash to: bytes changed under a write
// are refused, and a file found holding other bytes is never taken for
// the chunk. And Put returns on a write quorum without leaving anything
// that still reads the caller's buffer, which the gateway refills with
// its next chunk at once.
//
// Method: real stores on the test's temporary directory; other nodes are a
// fake transport that stores what it receives, some of them held back;
// the caller overwrites its buffer the moment Put returns, as the
// gateway's buffer pool does. Run under -race, a read of the buffer after
// Put returned is also a reported race.
package blobs

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"
)

func TestPutChunkRefusesBytesChangedAfterSealing(t *testing.T) {
	s, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("sealed"), 10000)
	c := Seal(data)
	data[100] ^= 1 // the owner reused its buffer too early
	if _, err := s.PutChunk(c); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("PutChunk of changed bytes = %v; want ErrCorrupt", err)
	}
	if s.Has(c.ID()) {
		t.Fatal("changed bytes were stored under the sealed ID")
	}
	if tmp, _ := os.ReadDir(filepath.Join(s.Dir(), "tmp")); len(tmp) != 0 {
		t.Fatalf("the refused write left %d temporary files", len(tmp))
	}
}

func TestCheckRefusesBytesOfAnotherID(t *testing.T) {
	good, evil := []byte("good bytes"), []byte("evil bytes")
	if _, err := Check(Sum(good), evil); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("Check of other bytes = %v; want ErrCorrupt", err)
	}
	c, err := Check(Sum(good), good)
	if err != nil || c.ID() != Sum(good) || !bytes.Equal(c.Data(), good) {
		t.Fatalf("Check of the right bytes = %v", err)
	}
}

// TestPutChunkReplacesAWrongFile: a file already under the chunk's name
// counts as the chunk only if it holds its bytes. Each case plants a file
// of the right size with the wrong bytes, as the write of a buffer reused
// too early left them.
func TestPutChunkReplacesAWrongFile(t *testing.T) {
	good := bytes.Repeat([]byte("right bytes "), 5000)
	wrong := bytes.Repeat([]byte("wrong bytes "), 5000)
	cases := []struct {
		name  string
		plant func(t *testing.T, s *Store, p string)
	}{
		{"with the checksum of its own bytes", func(t *testing.T, s *Store, p string) {
			// What the old write path left: the checksum was computed
			// from the bytes written, so a read verified them.
			plantFile(t, p, wrong, true)
		}},
		{"with the chunk's checksum", func(t *testing.T, s *Store, p string) {
			plantFile(t, p, wrong, false)
			f, err := os.OpenFile(p, os.O_RDWR, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			if !writeSum(f, fastSum(good)) {
				t.Skip("no extended attributes on this filesystem")
			}
		}},
		{"without a checksum", func(t *testing.T, s *Store, p string) {
			plantFile(t, p, wrong, false)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			s, err := Open(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			c := Seal(good)
			tc.plant(t, s, s.path(c.ID()))
			existed, err := s.PutChunk(c)
			if err != nil || existed {
				t.Fatalf("PutChunk over a wrong file = existed %v, %v; want a new write", existed, err)
			}
			got, err := s.GetVerified(c.ID(), nil)
			if err != nil || !bytes.Equal(got, good) {
				t.Fatalf("after the rewrite: %v (right bytes %v)", err, bytes.Equal(got, good))
			}
			if q, _ := os.ReadDir(filepath.Join(s.Dir(), "quarantine")); len(q) != 1 {
				t.Fatalf("quarantine holds %d files; want the wrong one", len(q))
			}
		})
	}

	t.Run("a good file without a checksum counts", func(t *testing.T) {
		s, err := Open(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		c := Seal(good)
		plantFile(t, s.path(c.ID()), good, false)
		if existed, err := s.PutChunk(c); err != nil || !existed {
			t.Fatalf("PutChunk over a good file = existed %v, %v; want existed", existed, err)
		}
	})
}

func plantFile(t *testing.T, p string, data []byte, withSum bool) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	if withSum {
		f, err := os.OpenFile(p, os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		writeSum(f, fastSum(data))
	}
}

// storingPeers stores what blob.put brings, checked against its ID as a
// real node does. Calls to a held node wait until it is released.
type storingPeers struct {
	mu      sync.Mutex
	stored  map[string]map[ID][]byte
	bad     []string
	held    map[string]chan struct{}
	pending sync.WaitGroup
}

func newStoringPeers() *storingPeers {
	return &storingPeers{stored: map[string]map[ID][]byte{}, held: map[string]chan struct{}{}}
}

func (p *storingPeers) hold(node string) { p.held[node] = make(chan struct{}) }

func (p *storingPeers) release(node string) { close(p.held[node]) }

func (p *storingPeers) Call(ctx context.Context, to, service string, body []byte) ([]byte, error) {
	if service != servicePut {
		return nil, errors.New("unexpected service " + service)
	}
	p.pending.Add(1)
	defer p.pending.Done()
	if gate, ok := p.held[to]; ok {
		<-gate
	}
	owner := string(body[1 : 1+int(body[0])])
	var id ID
	copy(id[:], body[1+len(owner):])
	data := body[1+len(owner)+len(id):]
	p.mu.Lock()
	defer p.mu.Unlock()
	if Sum(data) != id {
		p.bad = append(p.bad, to)
		return nil, ErrCorrupt
	}
	if p.stored[to] == nil {
		p.stored[to] = map[ID][]byte{}
	}
	p.stored[to][id] = bytes.Clone(data)
	return nil, nil
}

// TestPutLeavesNoReaderOfTheBuffer: owner c is held back, so Put returns
// on a and b while c's write is still to run; the caller then overwrites
// its buffer. The bytes c stores must be the chunk's.
func TestPutLeavesNoReaderOfTheBuffer(t *testing.T) {
	local, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr := newStoringPeers()
	tr.hold("c")
	r := NewReplicated(ReplicatedConfig{
		Self: "a", Local: local, RPC: tr, W: 2,
		Placement: func() Placement { return fixedPlacement{[]string{"a", "b", "c"}} },
	}, nil)
	buf := bytes.Repeat([]byte("first upload "), 80000)
	c := Seal(buf)
	if err := r.Put(context.Background(), c); err != nil {
		t.Fatal(err)
	}
	// The next upload's bytes, in the same buffer.
	for i := range buf {
		buf[i] = 0xee
	}
	tr.release("c")
	deadline := time.Now().Add(10 * time.Second)
	for {
		tr.mu.Lock()
		got, ok := tr.stored["c"][c.ID()]
		bad := len(tr.bad)
		tr.mu.Unlock()
		if bad > 0 {
			t.Fatal("c was sent bytes that do not hash to the chunk's ID")
		}
		if ok {
			if Sum(got) != c.ID() {
				t.Fatal("c stored bytes that do not hash to the chunk's ID")
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("c's write never ran")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if got, err := local.GetVerified(c.ID(), nil); err != nil || Sum(got) != c.ID() {
		t.Fatalf("the local copy: %v", err)
	}
}

// TestPutWaitsForTheLocalWrite: the other owners acknowledge at once, so a
// write quorum is there while this node's own write of a large chunk (a
// write and an fsync) still reads the buffer. Put must not return before
// it is done.
func TestPutWaitsForTheLocalWrite(t *testing.T) {
	local, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr := newStoringPeers()
	r := NewReplicated(ReplicatedConfig{
		Self: "a", Local: local, RPC: tr, W: 2,
		Placement: func() Placement { return fixedPlacement{[]string{"a", "b", "c"}} },
	}, nil)
	buf := make([]byte, 8<<20)
	for round := range 10 {
		for i := range buf {
			buf[i] = byte(i*7 + round)
		}
		c := Seal(buf)
		if err := r.Put(context.Background(), c); err != nil {
			t.Fatal(err)
		}
		for i := range buf {
			buf[i] = 0
		}
		got, err := local.GetVerified(c.ID(), nil)
		if err != nil || Sum(got) != c.ID() {
			t.Fatalf("round %d: the local copy after Put returned: %v", round, err)
		}
	}
	tr.pending.Wait()
	if len(tr.bad) > 0 {
		t.Fatalf("nodes %v were sent bytes that do not hash to the ID", tr.bad)
	}
}

// TestStoreFromBeforeCheckedWrites: a store that holds chunks but no
// marker was written by an earlier version, whose writes were not checked
// against their IDs; it asks to be scrubbed once. A new store, and one
// marked after its scrub, do not.
func TestStoreFromBeforeCheckedWrites(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil || s.Unverified() {
		t.Fatalf("a new store: %v, unverified %v", err, s.Unverified())
	}
	if _, _, err := s.Put([]byte("a chunk")); err != nil {
		t.Fatal(err)
	}
	if err := os.Remove(filepath.Join(dir, verifiedMarker)); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil || !s.Unverified() {
		t.Fatalf("a store with chunks and no marker: %v, unverified %v", err, s.Unverified())
	}
	if err := s.MarkVerified(); err != nil {
		t.Fatal(err)
	}
	if s, err = Open(dir); err != nil || s.Unverified() {
		t.Fatalf("after MarkVerified: %v, unverified %v", err, s.Unverified())
	}
}
