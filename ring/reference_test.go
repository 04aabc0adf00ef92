// Naive reference for "moves only what it must". Goal: when an assignment
// step moves a replica between two old nodes (a shuffle), prove that no
// shuffle-free assignment existed within the weight tolerance, so the
// shuffle was forced by the rules (one replica per node per partition, the
// zone rule) and not by the algorithm. Method: the shuffle-free
// assignments of a join (each partition keeps its owners or swaps one for
// the newcomer) or a leave (survivors keep everything, the leaver's slots
// are refilled) are exactly the feasible flows of a small bipartite
// network with lower bounds; feasibility is decided with a plain
// Edmonds-Karp max-flow and the textbook circulation reduction, sharing no
// code with the production solver.

package ring

import "slices"

type lbArc struct{ u, v, lo, hi int }

// feasibleCirculation reports whether the network has a flow from s to t
// meeting every arc's bounds, with the s-t value in [vlo, vhi].
func feasibleCirculation(n int, arcs []lbArc, s, t, vlo, vhi int) bool {
	arcs = append(slices.Clone(arcs), lbArc{t, s, vlo, vhi})
	ss, tt := n, n+1
	capm := make([]map[int]int, n+2)
	for i := range capm {
		capm[i] = map[int]int{}
	}
	excess := make([]int, n)
	for _, a := range arcs {
		if a.lo > a.hi {
			return false
		}
		capm[a.u][a.v] += a.hi - a.lo
		excess[a.v] += a.lo
		excess[a.u] -= a.lo
	}
	need := 0
	for v, e := range excess {
		if e > 0 {
			capm[ss][v] += e
			need += e
		} else if e < 0 {
			capm[v][tt] += -e
		}
	}
	// residual reverse arcs
	for u := range capm {
		for v := range capm[u] {
			if _, ok := capm[v][u]; !ok {
				capm[v][u] = 0
			}
		}
	}
	flow := 0
	for {
		prev := make([]int, n+2)
		for i := range prev {
			prev[i] = -1
		}
		prev[ss] = ss
		queue := []int{ss}
		for len(queue) > 0 && prev[tt] < 0 {
			u := queue[0]
			queue = queue[1:]
			for v, c := range capm[u] {
				if c > 0 && prev[v] < 0 {
					prev[v] = u
					queue = append(queue, v)
				}
			}
		}
		if prev[tt] < 0 {
			break
		}
		f := 1 << 30
		for v := tt; v != ss; v = prev[v] {
			f = min(f, capm[prev[v]][v])
		}
		for v := tt; v != ss; v = prev[v] {
			capm[prev[v]][v] -= f
			capm[v][prev[v]] += f
		}
		flow += f
	}
	return flow == need
}

// toleranceBounds returns, per member, the least and most replicas the
// tolerance allows in layout l.
func allowedCounts(l Layout) map[NodeID][2]int {
	pr := newProblem(l)
	out := map[NodeID][2]int{}
	for i, s := range fairShares(pr) {
		lo, hi := toleranceBounds(s)
		out[pr.members[i].ID] = [2]int{lo, min(hi, l.Partitions)}
	}
	return out
}

// validOwners reports whether owners meet the zone rule of l (distinctness
// is the caller's business).
func validOwners(l Layout, owners []NodeID) bool {
	zoneOf := map[NodeID]string{}
	all := map[string]bool{}
	for _, m := range l.Members {
		zoneOf[m.ID] = m.Zone
		all[m.Zone] = true
	}
	zs := map[string]bool{}
	for _, id := range owners {
		zs[zoneOf[id]] = true
	}
	return len(zs) >= min(len(owners), len(all))
}

// shuffleFreeJoinExists reports whether next (prev's layout plus newcomer)
// has an assignment within tolerance where every moved replica goes to
// the newcomer.
func shuffleFreeJoinExists(prev *Assignment, next Layout, newcomer NodeID) bool {
	k := min(next.Replicas, len(next.Members))
	q := next.Partitions
	bounds := allowedCounts(next)
	c := counts(prev)
	if k != prev.Replicas() { // the owner count grew: the newcomer joins every partition
		for p := range q {
			if !validOwners(next, append(slices.Clone(prev.Owners(Partition(p))), newcomer)) {
				return false
			}
		}
		for id, b := range bounds {
			n := c[id]
			if id == newcomer {
				n = q
			}
			if n < b[0] || n > b[1] {
				return false
			}
		}
		return true
	}
	ids := slices.Sorted(func(yield func(NodeID) bool) {
		for id := range bounds {
			if id != newcomer && !yield(id) {
				return
			}
		}
	})
	// vertices: 0 source, 1 sink, 2..q+1 partitions, then old nodes
	node := map[NodeID]int{}
	for i, id := range ids {
		node[id] = 2 + q + i
	}
	var arcs []lbArc
	for p := range q {
		own := prev.Owners(Partition(p))
		must := 0
		if !validOwners(next, own) {
			must = 1
		}
		arcs = append(arcs, lbArc{0, 2 + p, must, 1})
		for i, y := range own {
			swapped := slices.Clone(own)
			swapped[i] = newcomer
			if validOwners(next, swapped) {
				arcs = append(arcs, lbArc{2 + p, node[y], 0, 1})
			}
		}
	}
	for _, id := range ids {
		b := bounds[id]
		arcs = append(arcs, lbArc{node[id], 1, max(0, c[id]-b[1]), c[id] - b[0]})
	}
	b := bounds[newcomer]
	return feasibleCirculation(2+q+len(ids), arcs, 0, 1, b[0], b[1])
}

// shuffleFreeLeaveExists reports whether next (prev's layout less leaver)
// has an assignment within tolerance where the survivors keep every
// replica they had.
func shuffleFreeLeaveExists(prev *Assignment, next Layout, leaver NodeID) bool {
	k := min(next.Replicas, len(next.Members))
	q := next.Partitions
	bounds := allowedCounts(next)
	c := counts(prev)
	ids := slices.Sorted(func(yield func(NodeID) bool) {
		for id := range bounds {
			if !yield(id) {
				return
			}
		}
	})
	node := map[NodeID]int{}
	for i, id := range ids {
		node[id] = 2 + q + i
	}
	var arcs []lbArc
	for p := range q {
		own := prev.Owners(Partition(p))
		kept := slices.DeleteFunc(slices.Clone(own), func(id NodeID) bool { return id == leaver })
		if len(kept) == k { // no slot to fill
			if !validOwners(next, kept) {
				return false
			}
			continue
		}
		arcs = append(arcs, lbArc{0, 2 + p, 1, 1})
		for _, id := range ids {
			if !slices.Contains(kept, id) && validOwners(next, append(slices.Clone(kept), id)) {
				arcs = append(arcs, lbArc{2 + p, node[id], 0, 1})
			}
		}
	}
	for _, id := range ids {
		b := bounds[id]
		arcs = append(arcs, lbArc{node[id], 1, max(0, b[0]-c[id]), b[1] - c[id]})
	}
	return feasibleCirculation(2+q+len(ids), arcs, 0, 1, 0, q*k)
}
