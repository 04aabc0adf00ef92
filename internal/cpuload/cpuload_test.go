package cpuload

import (
	"runtime"
	"runtime/metrics"
	"sync"
	"testing"
	"time"
)

// hist builds a histogram with buckets [0,50us) [50us,200us) [200us,1ms)
// [1ms,+Inf) and the given counts.
func hist(counts ...uint64) *metrics.Float64Histogram {
	return &metrics.Float64Histogram{Counts: counts, Buckets: []float64{0, 50e-6, 200e-6, 1e-3, 1e300}}
}

func TestSlowShare(t *testing.T) {
	share, n, prev := slowShare(nil, hist(100, 100, 10, 10))
	if n != 0 || share != 0 {
		t.Fatalf("first sample: share %v of %d, want nothing (no window yet)", share, n)
	}
	// The next window adds 700 fast and 300 slow events.
	share, n, prev = slowShare(prev, hist(600, 300, 210, 110))
	if n != 1000 || share != 0.3 {
		t.Fatalf("share %v of %d, want 0.3 of 1000", share, n)
	}
	share, n, _ = slowShare(prev, hist(600, 300, 210, 110))
	if n != 0 || share != 0 {
		t.Fatalf("idle window: share %v of %d, want 0 of 0", share, n)
	}
}

func TestNextHasHysteresis(t *testing.T) {
	steps := []struct {
		share float64
		n     uint64
		want  bool
	}{
		{0.02, 5000, false},
		{0.06, 5000, false}, // between the thresholds: stays idle
		{0.20, 5000, true},
		{0.06, 5000, true}, // between the thresholds: stays busy
		{0.20, 10, false},  // too few events to judge
		{0.20, 5000, true},
		{0.01, 5000, false},
	}
	busy := false
	for i, s := range steps {
		busy = next(busy, s.share, s.n)
		if busy != s.want {
			t.Fatalf("step %d (share %v of %d): busy %v, want %v", i, s.share, s.n, busy, s.want)
		}
	}
}

// TestRuntimeProvidesMetric guards the one dependency: without this
// metric the sampler stops and the process never counts as busy.
func TestRuntimeProvidesMetric(t *testing.T) {
	s := []metrics.Sample{{Name: schedMetric}}
	metrics.Read(s)
	if s[0].Value.Kind() != metrics.KindFloat64Histogram {
		t.Fatalf("%s: kind %v, want a histogram", schedMetric, s[0].Value.Kind())
	}
}

// TestBusyUnderContention runs many more CPU-bound goroutines than there
// are processors, each yielding every 25 us, so each waits behind the
// others; the process must turn busy, and idle again once they stop.
// The runtime times one scheduling event in eight, and a process that
// other processes starve of CPU yields less often: short slices keep a
// window's events above minEvents even then (with 50 us slices and 10 s,
// it stayed idle once while the race detector ran two other test
// packages and two spinning processes on the 2-core machine).
func TestBusyUnderContention(t *testing.T) {
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 16 * runtime.GOMAXPROCS(0) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				for t0 := time.Now(); time.Since(t0) < 25*time.Microsecond; {
				}
				runtime.Gosched()
			}
		}()
	}
	waitFor := func(want bool) {
		t.Helper()
		deadline := time.Now().Add(30 * time.Second)
		for Busy() != want {
			if time.Now().After(deadline) {
				t.Fatalf("Busy() stayed %v for 30 s", !want)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitFor(true)
	close(stop)
	wg.Wait()
	waitFor(false)
}
