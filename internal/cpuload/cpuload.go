// Package cpuload tells whether this process is short of CPU, judged by
// how long its goroutines wait to run once they are ready
// (runtime/metrics /sched/latencies:seconds).
//
// Waiting time is the signal rather than CPU use: a process can use every
// core and still run each goroutine as soon as it is ready, and it can be
// starved while using little, because other processes on the machine hold
// the cores. Only waiting says that work queues for a processor.
package cpuload

import (
	"runtime/metrics"
	"sync"
	"sync/atomic"
	"time"
)

const (
	schedMetric = "/sched/latencies:seconds"
	// A goroutine waiting longer than slowWait for a processor counts as
	// having queued behind other work.
	slowWait = 200e-6
	// The process turns busy when more than onShare of the goroutines
	// made ready in a window waited longer than slowWait, and idle again
	// below offShare; the gap keeps it from flapping at the edge. Measured
	// on 2 cores, in 100-250 ms windows: 0-4.7% with 1 or 4 clients (one
	// window in 154 above 8% at 4), 9-49% at 32, on one node and on each
	// node of a 3-node cluster.
	onShare, offShare = 0.08, 0.04
	// minEvents: a window with fewer scheduling events says nothing.
	minEvents = 200
	window    = 100 * time.Millisecond
)

var (
	busy      atomic.Bool
	startOnce sync.Once
)

// Busy reports whether, over the last window, this process's goroutines
// queued for a processor. The first call starts the sampler.
func Busy() bool {
	startOnce.Do(func() { go sample(window) })
	return busy.Load()
}

func sample(every time.Duration) {
	s := []metrics.Sample{{Name: schedMetric}}
	var prev []uint64
	t := time.NewTicker(every)
	defer t.Stop()
	for range t.C {
		metrics.Read(s)
		if s[0].Value.Kind() != metrics.KindFloat64Histogram {
			return // not provided by this runtime: never busy
		}
		h := s[0].Value.Float64Histogram()
		var share float64
		var n uint64
		share, n, prev = slowShare(prev, h)
		busy.Store(next(busy.Load(), share, n))
	}
}

// slowShare returns the share of the scheduling events since prev (the
// histogram's previous counts) that waited longer than slowWait, their
// number, and the counts to pass next time.
func slowShare(prev []uint64, h *metrics.Float64Histogram) (float64, uint64, []uint64) {
	if len(prev) != len(h.Counts) {
		return 0, 0, append([]uint64(nil), h.Counts...)
	}
	var n, slow uint64
	for i, c := range h.Counts {
		d := c - prev[i]
		prev[i] = c
		n += d
		if h.Buckets[i] >= slowWait {
			slow += d
		}
	}
	if n == 0 {
		return 0, 0, prev
	}
	return float64(slow) / float64(n), n, prev
}

// next is the busy state after a window with the given share of slow
// scheduling events out of n.
func next(busy bool, share float64, n uint64) bool {
	switch {
	case n < minEvents:
		return false
	case busy:
		return share >= offShare
	default:
		return share > onShare
	}
}
