// Goal: a cluster formed with BootstrapExpect starts every time, whatever
// the order and timing of its nodes, and every node's OnChange sees the
// placement views in the order they were adopted. Method: start the three
// nodes of a new cluster on loopback many times, each after a random
// delay, with an OnChange that takes a while (as a server's does), and
// check each node as StartMembership returns: OnChange has been called,
// with the layout Current reports. Separately, adopt layouts and merge
// trackers on one node from several goroutines at once and check the
// order of the views OnChange received. The random choices come from a
// seed the test logs; -start.seed replays it.

package ring

import (
	"flag"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

var (
	startSeed   = flag.Uint64("start.seed", 0, "seed of the start-up tests' random choices (0: from the clock)")
	startRounds = flag.Int("start.rounds", 0, "clusters TestMembershipBootstrapStartsEveryTime starts (0: the default)")
)

// testSeed returns -start.seed or a seed from the clock, and logs it.
func testSeed(t *testing.T) uint64 {
	seed := *startSeed
	if seed == 0 {
		seed = uint64(time.Now().UnixNano())
	}
	t.Logf("seed %d (replay with -start.seed=%d)", seed, seed)
	return seed
}

// viewKey is what orders views: the current layout version, the read
// version, and the number of active versions.
func viewKey(v *View) [3]uint64 {
	return [3]uint64{v.Current.Version(), v.Read.Version(), uint64(len(v.Active))}
}

// checkViewOrder reports the first view that goes back from the one
// before it. Under one layout, trackers only rise: the read version never
// falls and versions only retire. A new layout has a higher version.
func checkViewOrder(views []*View) error {
	for i := 1; i < len(views); i++ {
		a, b := viewKey(views[i-1]), viewKey(views[i])
		switch {
		case b[0] > a[0]:
		case b[0] < a[0]:
			return fmt.Errorf("view %d: layout version %d after %d", i, b[0], a[0])
		case b[1] < a[1]:
			return fmt.Errorf("view %d: read version %d after %d under layout %d", i, b[1], a[1], a[0])
		case b[2] > a[2]:
			return fmt.Errorf("view %d: %d active versions after %d under layout %d", i, b[2], a[2], a[0])
		}
	}
	return nil
}

// lockedRand is a random source several goroutines share.
type lockedRand struct {
	mu sync.Mutex
	r  *rand.Rand
}

func (l *lockedRand) duration(limit time.Duration) time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return time.Duration(l.r.Int64N(int64(limit)))
}

// TestMembershipBootstrapStartsEveryTime starts a three-node cluster with
// BootstrapExpect 3 round after round, the first node (the one without
// Join) and the two joiners each after a random delay, so joiners start
// before, with and after it. A node whose StartMembership returned before
// its OnChange ran is what crashed a server at start-up.
func TestMembershipBootstrapStartsEveryTime(t *testing.T) {
	if testing.Short() {
		t.Skip("real gossip")
	}
	rounds := 20
	if raceEnabled {
		rounds = 10
	}
	if *startRounds > 0 {
		rounds = *startRounds
	}
	seed := testSeed(t)
	for round := range rounds {
		r := rand.New(rand.NewPCG(seed, uint64(round)))
		t.Run(fmt.Sprintf("round=%d", round), func(t *testing.T) { bootstrapRound(t, r) })
		if t.Failed() {
			return
		}
	}
}

func bootstrapRound(t *testing.T, r *rand.Rand) {
	ids := []string{"b1", "b22", "b333"}
	addrs := []string{freePort(t), freePort(t), freePort(t)}
	var delays []time.Duration
	for range ids {
		delays = append(delays, time.Duration(r.IntN(9))*50*time.Millisecond)
	}
	t.Logf("start delays %v (the first node is %s)", delays, ids[0])
	pauses := &lockedRand{r: rand.New(rand.NewPCG(r.Uint64(), 0))}
	pause := func() time.Duration { return pauses.duration(50 * time.Millisecond) }

	type started struct {
		n   *testNode
		err error
		// What the node had at the moment StartMembership returned.
		view *View
		cur  *ClusterLayout
	}
	res := make([]started, len(ids))
	var wg sync.WaitGroup
	for i := range ids {
		wg.Go(func() {
			time.Sleep(delays[i])
			var join []string
			if i > 0 {
				join = []string{addrs[0]}
			}
			n, err := startNodeSlow(t, addrs[i], 3, pause, ids[i], "secret", join...)
			res[i] = started{n: n, err: err}
			if err == nil {
				res[i].view, res[i].cur = n.lastView(), n.m.Current()
			}
		})
	}
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Minute):
		// Not a timing check: a start that never returns is a failure to
		// report, not a reason to hang the whole run.
		t.Fatal("the cluster did not start")
	}

	for i, s := range res {
		if s.err != nil {
			t.Fatalf("%s: %v", ids[i], s.err)
		}
		if s.view == nil {
			t.Fatalf("%s: StartMembership returned before OnChange was called", ids[i])
		}
		if s.cur == nil || s.view.Current.Version() != s.cur.Layout.Version {
			t.Fatalf("%s: OnChange had layout version %d when StartMembership returned, Current %v", ids[i], s.view.Current.Version(), s.cur)
		}
		if s.cur.Layout.Version != 1 || len(s.cur.Layout.Members) != 3 || s.cur.Hash() != res[0].cur.Hash() {
			t.Fatalf("%s started with layout version %d of %d members; want the first node's version 1 of 3", ids[i], s.cur.Layout.Version, len(s.cur.Layout.Members))
		}
	}
	for i, s := range res {
		eventually(t, ids[i]+"'s OnChange has its current view", func() bool {
			v, last := s.n.m.View(), s.n.lastView()
			return v != nil && last != nil && viewKey(v) == viewKey(last)
		})
		if err := checkViewOrder(s.n.delivered()); err != nil {
			t.Fatalf("%s: %v", ids[i], err)
		}
	}
}

// TestMembershipDeliversViewsInOrder adopts a chain of layouts and merges
// trackers that move reads forward and retire versions, from several
// goroutines at once, with an OnChange that takes a while: the views it
// receives never go back, and the last is the node's view.
func TestMembershipDeliversViewsInOrder(t *testing.T) {
	if testing.Short() {
		t.Skip("real gossip")
	}
	seed := testSeed(t)
	for round := range 30 {
		r := rand.New(rand.NewPCG(seed, uint64(round)))
		t.Run(fmt.Sprintf("round=%d", round), func(t *testing.T) { orderRound(t, r) })
		if t.Failed() {
			return
		}
	}
}

func orderRound(t *testing.T, r *rand.Rand) {
	pauses := &lockedRand{r: rand.New(rand.NewPCG(r.Uint64(), 0))}
	n, err := startNodeSlow(t, freePort(t), 0, func() time.Duration { return pauses.duration(2 * time.Millisecond) }, "o1", "secret")
	if err != nil {
		t.Fatal(err)
	}
	var ops []func()
	l := n.m.Current()
	ids := []NodeID{"o1"}
	for i := 2; i <= 8; i++ {
		id := NodeID(fmt.Sprintf("o%d", i))
		ids = append(ids, id)
		l = l.With(Member{ID: id, Zone: fmt.Sprintf("z%d", i%3), Weight: 1, Addr: "rpc-" + string(id)}, 0)
		next, v := l, l.Layout.Version
		ops = append(ops, func() {
			if err := n.m.adopt(next, false); err != nil {
				t.Error(err)
			}
		})
		synced := NewTrackers()
		for _, id := range ids {
			synced.Sync[id] = v
		}
		ops = append(ops, func() { n.m.mergeTrackers(synced, false) })
		retired := NewTrackers()
		retired.Retired = v
		ops = append(ops, func() { n.m.mergeTrackers(retired, false) })
	}
	r.Shuffle(len(ops), func(i, j int) { ops[i], ops[j] = ops[j], ops[i] })
	var wg sync.WaitGroup
	const workers = 4
	for w := range workers {
		wg.Go(func() {
			for i := w; i < len(ops); i += workers {
				ops[i]()
			}
		})
	}
	wg.Wait()
	views := n.delivered()
	if err := checkViewOrder(views); err != nil {
		t.Fatal(err)
	}
	if v, last := n.m.View(), views[len(views)-1]; viewKey(v) != viewKey(last) {
		t.Fatalf("the node's view is %v; OnChange was last called with %v", viewKey(v), viewKey(last))
	}
}
