// Goal: show the package's life cycle as runnable documentation. Method:
// testable examples whose printed output go test compares.

package ring_test

import (
	"fmt"

	"github.com/ringstore/ringstore/ring"
)

func Example() {
	// A fresh cluster, then two more nodes and N=3.
	l := ring.SingleNode("a", "10.0.0.1:7000", 256)
	a := ring.Assign(nil, l)
	l.Replicas = 3
	l = l.WithMember(ring.Member{ID: "b", Zone: "z2", Weight: 1, Addr: "10.0.0.2:7000"})
	l = l.WithMember(ring.Member{ID: "c", Zone: "z3", Weight: 1, Addr: "10.0.0.3:7000"})
	next := ring.Assign(a, l) // incremental: a's owners stay where they are
	r, err := ring.NewRing(l, next)
	if err != nil {
		panic(err)
	}
	owners := r.OwnersOf([]byte("bucket/object"))
	fmt.Println(len(owners), "owners, first owner a:", owners[0] == "a")
	fmt.Println("moves:", len(a.Diff(next)))
	// Output:
	// 3 owners, first owner a: true
	// moves: 512
}

func ExampleAssign_weights() {
	l := ring.Layout{Partitions: 256, Replicas: 3, Version: 1}
	for i, w := range []uint32{1, 1, 2, 4} {
		l.Members = append(l.Members, ring.Member{ID: ring.NodeID(fmt.Sprint("n", i)), Weight: w})
	}
	a := ring.Assign(nil, l)
	for _, id := range a.Nodes() {
		// A node holds at most one replica per partition: the weight-4
		// node is capped at 256 and the excess goes to the others.
		fmt.Println(id, len(a.PartitionsOf(id)))
	}
	// Output:
	// n0 128
	// n1 128
	// n2 256
	// n3 256
}
