package bench

import (
	"math/rand/v2"
	"strconv"
	"sync"
	"sync/atomic"
)

// Slot states of an objectSet in MIXED mode.
const (
	slotPresent int32 = iota // stored, free to lease
	slotBusy                 // leased by one worker for one operation
	slotAbsent               // deleted, waiting in the absent stack
)

// objectSet is the pool of pre-filled objects. In MIXED mode each slot is
// leased by at most one worker at a time, so a GET never races the DELETE
// of its own key (which would be a spurious 404, not a server error), and
// deleted slots queue up to be re-created by PUTs: warp's semantics, where
// the pool stays populated because PUTs (15%) outpace DELETEs (10%).
type objectSet struct {
	keys  []string
	state []atomic.Int32

	mu     sync.Mutex
	absent []int32
}

// keyName is the i-th key under prefix. The fixed width keeps lexical
// order equal to numeric order, which the LIST walk checks.
func keyName(prefix string, i int64) string {
	var b [32]byte
	d := strconv.AppendInt(b[:0], i, 10)
	out := make([]byte, 0, len(prefix)+4+10)
	out = append(out, prefix...)
	out = append(out, "obj-"...)
	for range 10 - len(d) {
		out = append(out, '0')
	}
	return string(append(out, d...))
}

func newObjectSet(prefix string, n int) *objectSet {
	s := &objectSet{keys: make([]string, n), state: make([]atomic.Int32, n)}
	for i := range s.keys {
		s.keys[i] = keyName(prefix, int64(i))
	}
	return s
}

// leasePresent leases a random present slot, or returns -1 if none is free.
func (s *objectSet) leasePresent(rng *rand.Rand) int {
	n := len(s.keys)
	if n == 0 {
		return -1
	}
	// Concurrency is far below the pool size, so random probes almost
	// always succeed at once; the scan only covers pathological pools.
	for range 8 {
		i := rng.IntN(n)
		if s.state[i].CompareAndSwap(slotPresent, slotBusy) {
			return i
		}
	}
	start := rng.IntN(n)
	for k := range n {
		i := (start + k) % n
		if s.state[i].CompareAndSwap(slotPresent, slotBusy) {
			return i
		}
	}
	return -1
}

// leaseAbsent leases a deleted slot for re-creation, or returns -1.
func (s *objectSet) leaseAbsent() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	if len(s.absent) == 0 {
		return -1
	}
	i := s.absent[len(s.absent)-1]
	s.absent = s.absent[:len(s.absent)-1]
	s.state[i].Store(slotBusy)
	return int(i)
}

// release returns a leased slot, present or absent.
func (s *objectSet) release(i int, present bool) {
	if present {
		s.state[i].Store(slotPresent)
		return
	}
	s.mu.Lock()
	s.state[i].Store(slotAbsent)
	s.absent = append(s.absent, int32(i))
	s.mu.Unlock()
}

// mixedWeights is warp's MIXED distribution, in percent.
var mixedWeights = [numOps]int{OpGet: 45, OpStat: 30, OpPut: 15, OpDelete: 10}

// mixedOps is the order MIXED reports its operation types in.
var mixedOps = [...]Op{OpGet, OpStat, OpPut, OpDelete}

// pickMixed draws one MIXED operation type.
func pickMixed(rng *rand.Rand) Op {
	r := rng.IntN(100)
	for _, op := range mixedOps {
		if r < mixedWeights[op] {
			return op
		}
		r -= mixedWeights[op]
	}
	return OpGet // unreachable while the weights sum to 100
}
