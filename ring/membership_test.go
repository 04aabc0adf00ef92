// membership_test.go runs real memberlist instances on loopback: nodes
// that share the secret form one cluster and agree on one layout with
// every node in it; a node that dies stays in the layout but is seen as not
// alive; an admin removal spreads and is not undone by the removed node; a
// node with another secret cannot join.
package ring

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"
)

func freePort(t *testing.T) string {
	t.Helper()
	// memberlist needs the same port free for TCP and UDP.
	for i := 0; i < 50; i++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err != nil {
			continue
		}
		u.Close()
		return addr
	}
	t.Fatal("no free port")
	return ""
}

type testNode struct {
	m     *Membership
	addr  string
	mu    sync.Mutex
	saved *ClusterLayout
	// views are the views OnChange was called with, in that order.
	views []*View
}

// lastView is the view OnChange was last called with.
func (n *testNode) lastView() *View {
	n.mu.Lock()
	defer n.mu.Unlock()
	if len(n.views) == 0 {
		return nil
	}
	return n.views[len(n.views)-1]
}

// delivered returns a copy of the views OnChange was called with.
func (n *testNode) delivered() []*View {
	n.mu.Lock()
	defer n.mu.Unlock()
	return slices.Clone(n.views)
}

func startNode(t *testing.T, id string, secret string, join ...string) (*testNode, error) {
	t.Helper()
	return startNodeAt(t, freePort(t), 0, id, secret, join...)
}

// startNodeAt starts a node on gossip address addr; expect is its
// BootstrapExpect.
func startNodeAt(t *testing.T, addr string, expect int, id string, secret string, join ...string) (*testNode, error) {
	return startNodeSlow(t, addr, expect, nil, id, secret, join...)
}

// startNodeSlow is startNodeAt with an OnChange that first sleeps for
// pause() (nil: not at all), as a server's does while it builds its
// placements: the time a caller that does not wait for OnChange races
// with.
func startNodeSlow(t *testing.T, addr string, expect int, pause func() time.Duration, id string, secret string, join ...string) (*testNode, error) {
	n := &testNode{addr: addr}
	m, err := StartMembership(MembershipConfig{
		Self: NodeID(id), Member: Member{ID: NodeID(id), Zone: "z" + id, Weight: uint32(len(id)), Addr: "rpc-" + id},
		GossipAddr: n.addr, Join: join, Secret: []byte(secret), Partitions: 16, Replicas: 3, BootstrapExpect: expect,
		SettleDelay: 200 * time.Millisecond,
		Save:        func(l *ClusterLayout) error { n.mu.Lock(); n.saved = l; n.mu.Unlock(); return nil },
		OnChange: func(v *View) {
			if pause != nil {
				time.Sleep(pause())
			}
			n.mu.Lock()
			n.views = append(n.views, v)
			n.mu.Unlock()
		},
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil)), Fast: true,
	})
	if err != nil {
		return nil, err
	}
	n.m = m
	t.Cleanup(func() {
		// Stops the tick loop too: tests that start many nodes would
		// otherwise keep every earlier one ticking.
		m.mu.Lock()
		select {
		case <-m.stop:
		default:
			close(m.stop)
		}
		m.mu.Unlock()
		_ = m.ml.Shutdown()
	})
	return n, nil
}

// startNodes starts count nodes named prefix1, prefix2…, all joining the
// first.
func startNodes(t *testing.T, prefix string, count int) []*testNode {
	t.Helper()
	first, err := startNode(t, prefix+"1", "secret")
	if err != nil {
		t.Fatal(err)
	}
	nodes := []*testNode{first}
	for i := 2; i <= count; i++ {
		n, err := startNode(t, fmt.Sprintf("%s%d", prefix, i), "secret", first.addr)
		if err != nil {
			t.Fatal(err)
		}
		nodes = append(nodes, n)
	}
	return nodes
}

func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for: %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestMembershipFormsOneCluster(t *testing.T) {
	if testing.Short() {
		t.Skip("real gossip")
	}
	nodes := startNodes(t, "n", 4)
	eventually(t, "every node sees a 4-member layout with the same hash", func() bool {
		h := nodes[0].m.Current().Hash()
		for _, n := range nodes {
			if c := n.m.Current(); c == nil || len(c.Layout.Members) != 4 || c.Hash() != h {
				return false
			}
		}
		return true
	})
	for _, n := range nodes {
		n.mu.Lock()
		saved := n.saved
		n.mu.Unlock()
		if saved == nil || saved.Hash() != n.m.Current().Hash() {
			t.Fatal("a node adopted a layout it did not persist")
		}
	}
	// A crash: n4 stops without leaving. It stays in the layout, but the
	// others see it as not alive.
	_ = nodes[3].m.ml.Shutdown()
	eventually(t, "n4 seen as not alive", func() bool { return !nodes[0].m.Alive("n4") && !nodes[1].m.Alive("n4") })
	if _, ok := nodes[0].m.Current().Layout.Member("n4"); !ok {
		t.Fatal("a crashed node left the layout")
	}
	// An admin removes n4 for good.
	if err := nodes[1].m.Remove("n4"); err != nil {
		t.Fatal(err)
	}
	eventually(t, "every node sees n4 removed", func() bool {
		for _, n := range nodes[:3] {
			if c := n.m.Current(); len(c.Layout.Members) != 3 || !c.IsRemoved("n4") {
				return false
			}
		}
		return true
	})
	// Its owners are computed from the new layout, on every node alike.
	for p := 0; p < 16; p++ {
		for _, o := range nodes[0].m.Ring().Owners(Partition(p)) {
			if o == "n4" {
				t.Fatalf("partition %d still owned by the removed node", p)
			}
		}
	}
}

func TestMembershipWrongSecretCannotJoin(t *testing.T) {
	if testing.Short() {
		t.Skip("real gossip")
	}
	first, err := startNode(t, "a1", "right")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := startNode(t, "a2", "wrong", first.addr); err == nil {
		t.Fatal("a node with the wrong secret joined")
	}
	time.Sleep(300 * time.Millisecond)
	if len(first.m.Current().Layout.Members) != 1 {
		t.Fatalf("layout has %d members; want 1", len(first.m.Current().Layout.Members))
	}
}

// TestMembershipBootstrapExpect: nodes started together with
// BootstrapExpect 3 form one layout of version 1 with all three, their
// zones and weights, and nothing to move; the joiners start before their
// seed and retry it.
func TestMembershipBootstrapExpect(t *testing.T) {
	if testing.Short() {
		t.Skip("real gossip")
	}
	ids := []string{"b1", "b22", "b333"}
	addrs := []string{freePort(t), freePort(t), freePort(t)}
	nodes := make([]*testNode, 3)
	errs := make([]error, 3)
	var wg sync.WaitGroup
	start := func(i int) {
		defer wg.Done()
		var join []string
		if i > 0 {
			join = []string{addrs[0]}
		}
		nodes[i], errs[i] = startNodeAt(t, addrs[i], 3, ids[i], "secret", join...)
	}
	wg.Add(3)
	go start(1)
	go start(2)
	time.Sleep(500 * time.Millisecond)
	go start(0)
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("%s: %v", ids[i], err)
		}
	}
	want := nodes[0].m.Current()
	if want.Layout.Version != 1 || len(want.Layout.Members) != 3 || len(want.History) != 0 {
		t.Fatalf("first layout: version %d, %d members, %d earlier versions; want 1, 3, 0", want.Layout.Version, len(want.Layout.Members), len(want.History))
	}
	for i, id := range ids {
		mem, ok := want.Layout.Member(NodeID(id))
		if !ok || mem.Zone != "z"+id || mem.Weight != uint32(len(id)) || mem.Addr != "rpc-"+id {
			t.Fatalf("member %s in the first layout: %+v, %v", id, mem, ok)
		}
		eventually(t, id+" has the first layout and nothing to move", func() bool {
			c, v := nodes[i].m.Current(), nodes[i].m.View()
			return c != nil && c.Hash() == want.Hash() && v != nil && !v.Moving
		})
	}
	// No node re-added itself with a new version.
	time.Sleep(300 * time.Millisecond)
	for i := range nodes {
		if c := nodes[i].m.Current(); c.Layout.Version != 1 {
			t.Fatalf("%s moved to layout version %d", ids[i], c.Layout.Version)
		}
	}
}

// TestMembershipSkipDeadNode: a node dies and is removed. The data move to
// the layout without it waits for its acknowledgement, which never comes;
// once it is skipped, the move finishes on every other node. A node still
// in the layout, or alive, cannot be skipped.
func TestMembershipSkipDeadNode(t *testing.T) {
	if testing.Short() {
		t.Skip("real gossip")
	}
	nodes := startNodes(t, "s", 4)
	first := nodes[0]
	live := nodes[:3]
	// Stand in for the servers' data movers: push (here: nothing) when a
	// version asks for it.
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		for {
			select {
			case <-stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
			for _, n := range nodes {
				if v, ok := n.m.NeedsSync(); ok {
					n.m.MarkSynced(v)
				}
			}
		}
	}()
	settled := func(ns []*testNode, members int) func() bool {
		return func() bool {
			for _, n := range ns {
				c, v := n.m.Current(), n.m.View()
				if c == nil || len(c.Layout.Members) != members || v == nil || v.Moving {
					return false
				}
			}
			return true
		}
	}
	eventually(t, "four nodes settled", settled(nodes, 4))

	if err := first.m.Skip("s2"); err == nil {
		t.Fatal("skipped a node that is still in the layout")
	}
	_ = nodes[3].m.ml.Shutdown()
	eventually(t, "s4 seen as not alive", func() bool { return !first.m.Alive("s4") })
	if err := first.m.Remove("s4"); err != nil {
		t.Fatal(err)
	}
	time.Sleep(time.Second)
	if settled(live, 3)() {
		t.Fatal("the move finished without the dead node's acknowledgement")
	}
	if err := nodes[1].m.Skip("s4"); err != nil {
		t.Fatalf("skip the removed dead node: %v", err)
	}
	eventually(t, "the three live nodes settled without s4", settled(live, 3))
	for _, n := range live {
		if tr := n.m.Trackers(); tr.Ack["s4"] != Skipped {
			t.Fatalf("trackers of %s: s4 at %d, want skipped", n.m.cfg.Self, tr.Ack["s4"])
		}
	}
}
