package ring

import "math"

// flowGraph is a min-cost flow network. Arcs come in pairs: arc e and its
// residual twin e^1, so the twin of any arc is found without a lookup.
// Adjacency is a linked list per vertex (head/next), newest arc first.
//
// Costs are small in number of distinct values, so each arc pair stores a
// cost class (one byte) instead of an int64; at Q=65536 and 50 nodes the
// graph has millions of arcs and this keeps it to a few tens of MB.
type flowGraph struct {
	head []int32
	next []int32
	to   []int32
	capa []int32
	cls  []uint8 // per pair: cost class of the forward arc
	cost [8]int64

	// scratch, sized to the vertex count
	pot   []int64 // potentials: reduced cost = cost + pot[u] - pot[v] >= 0
	dist  []int64
	done  []bool
	level []int32
	iter  []int32
	queue []int32
	heap  distHeap
}

func newFlowGraph(vertices, arcPairs int) *flowGraph {
	g := &flowGraph{
		head:  make([]int32, vertices),
		next:  make([]int32, 0, 2*arcPairs),
		to:    make([]int32, 0, 2*arcPairs),
		capa:  make([]int32, 0, 2*arcPairs),
		cls:   make([]uint8, 0, arcPairs),
		pot:   make([]int64, vertices),
		dist:  make([]int64, vertices),
		done:  make([]bool, vertices),
		level: make([]int32, vertices),
		iter:  make([]int32, vertices),
	}
	for i := range g.head {
		g.head[i] = -1
	}
	return g
}

// addArc adds u->v with capacity c and cost class cls, and returns its
// index; the flow on it is later read as the twin's capacity.
func (g *flowGraph) addArc(u, v int32, c int32, cls uint8) int32 {
	e := int32(len(g.to))
	g.to = append(g.to, v, u)
	g.capa = append(g.capa, c, 0)
	g.next = append(g.next, g.head[u], g.head[v])
	g.head[u] = e
	g.head[v] = e + 1
	g.cls = append(g.cls, cls)
	return e
}

func (g *flowGraph) arcCost(e int32) int64 {
	c := g.cost[g.cls[e>>1]]
	if e&1 != 0 {
		return -c
	}
	return c
}

func (g *flowGraph) reduced(e, u int32) int64 {
	return g.arcCost(e) + g.pot[u] - g.pot[g.to[e]]
}

// minCostFlow sends up to want units from s to t at least total cost and
// returns how many it sent. It is the primal-dual method: Dijkstra on
// reduced costs finds the current shortest s-t distance and updates the
// potentials, then Dinic's blocking flows saturate every path made only of
// zero-reduced-cost arcs (all of them shortest), and the two alternate.
// Successive shortest paths keep the flow min-cost at every value; batching
// all equally short paths makes the number of Dijkstra runs the number of
// distinct path costs (a handful) instead of the number of units.
func (g *flowGraph) minCostFlow(s, t int32, want int) int {
	flow := 0
	for flow < want && g.shortest(s, t) {
		for flow < want && g.levels(s, t) {
			copy(g.iter, g.head)
			flow += int(g.augment(s, t, int32(min(want-flow, math.MaxInt32))))
		}
	}
	return flow
}

// shortest runs Dijkstra from s on reduced costs, stopping at t, and shifts
// the potentials so every arc on a shortest path gets reduced cost 0 while
// none goes negative (the update of AtCoder Library's min_cost_flow: only
// vertices settled before t move, each by dist-dist[t] <= 0).
func (g *flowGraph) shortest(s, t int32) bool {
	for i := range g.dist {
		g.dist[i] = math.MaxInt64
		g.done[i] = false
	}
	g.dist[s] = 0
	g.heap.push(0, s)
	for len(g.heap) > 0 {
		d, v := g.heap.pop()
		if g.done[v] {
			continue
		}
		g.done[v] = true
		if v == t {
			break
		}
		for e := g.head[v]; e >= 0; e = g.next[e] {
			if g.capa[e] == 0 {
				continue
			}
			w := g.to[e]
			if g.done[w] {
				continue
			}
			if nd := d + g.reduced(e, v); nd < g.dist[w] {
				g.dist[w] = nd
				g.heap.push(nd, w)
			}
		}
	}
	g.heap = g.heap[:0]
	if !g.done[t] {
		return false
	}
	dt := g.dist[t]
	for v, ok := range g.done {
		if ok {
			g.pot[v] += g.dist[v] - dt
		}
	}
	return true
}

// levels is Dinic's BFS restricted to admissible arcs (residual capacity
// and zero reduced cost); it reports whether t is reachable.
func (g *flowGraph) levels(s, t int32) bool {
	for i := range g.level {
		g.level[i] = -1
	}
	g.level[s] = 0
	g.queue = append(g.queue[:0], s)
	for i := 0; i < len(g.queue); i++ {
		v := g.queue[i]
		for e := g.head[v]; e >= 0; e = g.next[e] {
			w := g.to[e]
			if g.capa[e] > 0 && g.level[w] < 0 && g.reduced(e, v) == 0 {
				g.level[w] = g.level[v] + 1
				g.queue = append(g.queue, w)
			}
		}
	}
	return g.level[t] >= 0
}

// augment pushes up to f units from v to t along admissible level-graph
// arcs; iter makes each dead arc be skipped once per blocking flow.
func (g *flowGraph) augment(v, t int32, f int32) int32 {
	if v == t {
		return f
	}
	var pushed int32
	for ; g.iter[v] >= 0; g.iter[v] = g.next[g.iter[v]] {
		e := g.iter[v]
		w := g.to[e]
		if g.capa[e] == 0 || g.level[w] != g.level[v]+1 || g.reduced(e, v) != 0 {
			continue
		}
		if d := g.augment(w, t, min(f-pushed, g.capa[e])); d > 0 {
			g.capa[e] -= d
			g.capa[e^1] += d
			pushed += d
			if pushed == f {
				return pushed // the arc may have room left: keep iter on it
			}
		}
	}
	return pushed
}

// distHeap is a binary min-heap of (distance, vertex), with lazy deletion
// by the caller.
type distHeap []distItem

type distItem struct {
	d int64
	v int32
}

func (h *distHeap) push(d int64, v int32) {
	*h = append(*h, distItem{d, v})
	a := *h
	i := len(a) - 1
	for i > 0 {
		p := (i - 1) / 2
		if a[p].d <= a[i].d {
			break
		}
		a[p], a[i] = a[i], a[p]
		i = p
	}
}

func (h *distHeap) pop() (int64, int32) {
	a := *h
	top := a[0]
	last := len(a) - 1
	a[0] = a[last]
	a = a[:last]
	i := 0
	for {
		l := 2*i + 1
		if l >= len(a) {
			break
		}
		m := l
		if r := l + 1; r < len(a) && a[r].d < a[l].d {
			m = r
		}
		if a[i].d <= a[m].d {
			break
		}
		a[i], a[m] = a[m], a[i]
		i = m
	}
	*h = a
	return top.d, top.v
}
