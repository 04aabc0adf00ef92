// replicated_test.go checks what a read takes from other nodes: their
// bytes are served as they come, but bytes that would be written back to
// a store that lacked the chunk are checked against its id first.
package blobs

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

type fixedPlacement struct{ owners []string }

func (p fixedPlacement) ChunkOwners(ID) []string      { return p.owners }
func (p fixedPlacement) ChunkWriteSets(ID) [][]string { return [][]string{p.owners} }
func (p fixedPlacement) ChunkFallbacks(ID) []string   { return nil }

// peers answers blob.get with the bytes each node holds, and refuses
// everything else (the background repairs a read starts).
type peers struct {
	mu    sync.Mutex
	held  map[string][]byte
	asked []string // the nodes asked for the chunk, in order
}

func (p *peers) Call(_ context.Context, to, service string, _ []byte) ([]byte, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if service != serviceGet {
		return nil, errors.New("unexpected service " + service)
	}
	p.asked = append(p.asked, to)
	b, ok := p.held[to]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(b), nil
}

func TestReadRepairTakesOnlyBytesMatchingTheID(t *testing.T) {
	local, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	good := bytes.Repeat([]byte("good"), 4096)
	id := Sum(good)
	bad := bytes.Repeat([]byte("evil"), 4096)
	tr := &peers{held: map[string][]byte{"b": bad, "c": good}}
	r := NewReplicated(ReplicatedConfig{
		Self: "a", Local: local, RPC: tr,
		Placement: func() Placement { return fixedPlacement{[]string{"a", "b", "c"}} },
	}, nil)

	// This node owns the chunk but lacks it: b's copy would be written
	// back here, so it is checked, refused, and c's taken.
	got, err := r.Get(context.Background(), id, nil)
	if err != nil || !bytes.Equal(got, good) {
		t.Fatalf("Get = %v (good bytes %v)", err, bytes.Equal(got, good))
	}
	// The read's repairs run in the background and may still call tr.
	tr.mu.Lock()
	asked := slices.Clone(tr.asked)
	tr.mu.Unlock()
	if len(asked) != 2 || asked[0] != "b" || asked[1] != "c" {
		t.Fatalf("asked %v; want b, then c", asked)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !local.Has(id) {
		if time.Now().After(deadline) {
			t.Fatal("the chunk was not written back to this node")
		}
		time.Sleep(5 * time.Millisecond)
	}
	if b, err := local.GetVerified(id, nil); err != nil || !bytes.Equal(b, good) {
		t.Fatalf("written back: %v", err)
	}
}

func TestReadFromOwnersFailsOver(t *testing.T) {
	local, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("chunk"), 1000)
	id := Sum(data)
	tr := &peers{held: map[string][]byte{"c": data}}
	r := NewReplicated(ReplicatedConfig{
		Self: "a", Local: local, RPC: tr,
		Placement: func() Placement { return fixedPlacement{[]string{"b", "c"}} },
	}, nil)
	got, err := r.Get(context.Background(), id, nil)
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("Get = %v", err)
	}
	if local.Has(id) {
		t.Fatal("a node that does not own the chunk stored it")
	}
}

// TestErrorsWithoutNodeCauses: a read, a write or a fetch that asked no
// other node still says what failed, with no empty cause in its text.
func TestErrorsWithoutNodeCauses(t *testing.T) {
	local, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	data := bytes.Repeat([]byte("alone"), 1000)
	id := Sum(data)
	r := NewReplicated(ReplicatedConfig{
		Self: "a", Local: local, RPC: &peers{},
		Placement: func() Placement { return fixedPlacement{[]string{"a"}} },
	}, nil)
	_, getErr := r.Get(context.Background(), id, nil)
	_, fetchErr := r.fetch(context.Background(), id)
	down := NewReplicated(ReplicatedConfig{
		Self: "a", Local: local, RPC: &peers{}, Alive: func(string) bool { return false },
		Placement: func() Placement { return fixedPlacement{[]string{"b", "c"}} },
	}, nil)
	putErr := down.Put(context.Background(), Seal(data))
	for what, err := range map[string]error{"get": getErr, "fetch": fetchErr, "put": putErr} {
		if err == nil {
			t.Fatalf("%s succeeded", what)
		}
		if strings.Contains(err.Error(), "%!") {
			t.Errorf("%s: %q", what, err)
		}
	}
	if !errors.Is(getErr, ErrNotFound) || !errors.Is(putErr, ErrQuorum) {
		t.Errorf("get %v, put %v", getErr, putErr)
	}
}
