// repair_test.go checks chunk anti-entropy on one node: the chunks it
// should hold and lacks are fetched from another owner, checked against
// their ids; bad copies are refused; a chunk no node has is asked for
// again only when due; a chunk already here costs no request.
package blobs

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"
)

func TestRepairMissingFetchesWhatTheNodeLacks(t *testing.T) {
	local, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	have := bytes.Repeat([]byte("already here "), 100)
	lost := bytes.Repeat([]byte("lost with the disk "), 1000)
	rotten := bytes.Repeat([]byte("b holds a bad copy, c a good one "), 100)
	gone := []byte("no node has this one")
	if _, _, err := local.Put(have); err != nil {
		t.Fatal(err)
	}
	tr := &peers{}
	r := NewReplicated(ReplicatedConfig{
		Self: "a", Local: local, RPC: multiPeers{tr, map[string]map[ID][]byte{
			"b": {Sum(lost): lost, Sum(rotten): []byte("rotten bytes")},
			"c": {Sum(rotten): rotten},
		}},
		Placement: func() Placement { return fixedPlacement{[]string{"a", "b", "c"}} },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, nil)
	ids := []ID{Sum(have), Sum(lost), Sum(rotten), Sum(gone)}
	owned := func(fn func(ID) bool) error {
		for _, id := range ids {
			if !fn(id) {
				break
			}
		}
		return nil
	}
	var st RepairStats
	pass, err := r.RepairMissing(context.Background(), owned, 0, time.Hour, &st)
	if err != nil {
		t.Fatal(err)
	}
	if pass != (RepairPass{Checked: 4, Missing: 3, Fetched: 2}) {
		t.Fatalf("first pass %+v; want 4 checked, 3 missing, 2 fetched", pass)
	}
	for _, b := range [][]byte{have, lost, rotten} {
		if got, err := local.GetVerified(Sum(b), nil); err != nil || !bytes.Equal(got, b) {
			t.Fatalf("chunk %s after the pass: %v", Sum(b), err)
		}
	}
	if st.Unavailable.Load() != 1 || st.FetchedBytes.Load() != int64(len(lost)+len(rotten)) {
		t.Fatalf("stats: %d unavailable, %d bytes fetched", st.Unavailable.Load(), st.FetchedBytes.Load())
	}
	// The chunk no node has is not asked for again before it is due.
	calls := tr.calls()
	pass, err = r.RepairMissing(context.Background(), owned, 0, time.Hour, &st)
	if err != nil || pass != (RepairPass{Checked: 4, Missing: 1}) {
		t.Fatalf("second pass %+v, %v; want 4 checked, 1 missing, none fetched", pass, err)
	}
	if tr.calls() != calls {
		t.Fatalf("the second pass made %d requests; want none", tr.calls()-calls)
	}
	if st.Passes.Load() != 2 || st.LastMissing.Load() != 1 {
		t.Fatalf("stats: %d passes, last missing %d", st.Passes.Load(), st.LastMissing.Load())
	}
}

// multiPeers answers blob.get from a per-node map of chunks, counting the
// requests in p.
type multiPeers struct {
	p    *peers
	held map[string]map[ID][]byte
}

func (m multiPeers) Call(_ context.Context, to, service string, body []byte) ([]byte, error) {
	m.p.mu.Lock()
	defer m.p.mu.Unlock()
	m.p.asked = append(m.p.asked, to)
	if service != serviceGet {
		return nil, ErrNotFound
	}
	b, ok := m.held[to][ID(body)]
	if !ok {
		return nil, ErrNotFound
	}
	return bytes.Clone(b), nil
}

func (p *peers) calls() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.asked)
}

// TestNoChunkBelowTheFloor: a node whose disk is below its floor takes no
// chunk, whoever sends it: another node, its own upload (which goes to the
// other owners instead), or anti-entropy.
func TestNoChunkBelowTheFloor(t *testing.T) {
	local, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	tr := newStoringPeers()
	data := bytes.Repeat([]byte("no room "), 1000)
	held := map[string]map[ID][]byte{"b": {Sum(data): data}}
	r := NewReplicated(ReplicatedConfig{
		Self: "a", Local: local, RPC: tr, W: 2,
		Placement: func() Placement { return fixedPlacement{[]string{"a", "b", "c"}} },
		Admit:     func(int64) bool { return false },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil)),
	}, nil)
	c := Seal(data)
	if _, err := r.servePut(context.Background(), "b", putBody("", c)); !errors.Is(err, ErrBelowFloor) {
		t.Fatalf("a chunk from another node = %v; want ErrBelowFloor", err)
	}
	if err := r.Put(context.Background(), c); err != nil {
		t.Fatalf("an upload through the full node: %v; want it on the two other owners", err)
	}
	tr.pending.Wait()
	if local.Has(c.ID()) || len(tr.stored["b"]) != 1 || len(tr.stored["c"]) != 1 {
		t.Fatalf("stored here %v, on b %d, on c %d", local.Has(c.ID()), len(tr.stored["b"]), len(tr.stored["c"]))
	}
	r.cfg.RPC = multiPeers{&peers{}, held}
	var st RepairStats
	if pass, err := r.RepairMissing(context.Background(), func(fn func(ID) bool) error { fn(c.ID()); return nil }, 0, time.Hour, &st); err != nil || pass.Fetched != 0 || local.Has(c.ID()) {
		t.Fatalf("anti-entropy below the floor: %+v, %v, stored %v", pass, err, local.Has(c.ID()))
	}
}
