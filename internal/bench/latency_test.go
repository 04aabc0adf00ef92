// Goal: the reported percentiles are right: exact ones equal the
// nearest-rank percentile of a sorted copy of the samples, and histogram
// ones (used once samples were dropped) are within the histogram's
// resolution of it.
// Method: compare summarize() with a sorted-slice reference over random
// latency sets of several shapes and sizes, with and without the sample
// cap forcing the histogram path.
package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"strconv"
	"testing"
	"time"
)

// refPercentile is the textbook nearest-rank percentile.
func refPercentile(sorted []int64, p float64) int64 {
	r := int(math.Ceil(p / 100 * float64(len(sorted))))
	if r < 1 {
		r = 1
	}
	return sorted[r-1]
}

func latencySets(rng *rand.Rand) map[string][]int64 {
	sets := map[string][]int64{"one": {1_500_000}, "two": {3, 9_000_000}}
	for _, n := range []int{10, 999, 1000, 12_345} {
		logn := make([]int64, n)
		unif := make([]int64, n)
		for i := range logn {
			logn[i] = int64(math.Exp(rng.NormFloat64()*1.2 + 14)) // ~1 ms median, long tail
			unif[i] = rng.Int64N(int64(50 * time.Millisecond))
		}
		sets["lognormal-"+strconv.Itoa(n)] = logn
		sets["uniform-"+strconv.Itoa(n)] = unif
	}
	return sets
}

func split(vals []int64, workers, limit int) []*recorder {
	rs := make([]*recorder, workers)
	for i := range rs {
		rs[i] = &recorder{limit: limit}
	}
	for i, v := range vals {
		rs[i%workers].add(time.Duration(v))
	}
	return rs
}

func TestPercentilesExact(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 1))
	for name, vals := range latencySets(rng) {
		sorted := slices.Sorted(slices.Values(vals))
		s := summarize(split(vals, 7, len(vals)))
		if !s.Exact {
			t.Fatalf("%s: not exact although nothing was dropped", name)
		}
		for _, c := range []struct {
			p   float64
			got float64
		}{{50, s.P50}, {90, s.P90}, {99, s.P99}, {99.9, s.P999}} {
			if want := float64(refPercentile(sorted, c.p)) / 1e6; c.got != want {
				t.Errorf("%s p%v = %v ms, want %v ms", name, c.p, c.got, want)
			}
		}
		if want := float64(sorted[len(sorted)-1]) / 1e6; s.Max != want {
			t.Errorf("%s max = %v, want %v", name, s.Max, want)
		}
	}
}

func TestPercentilesHistogram(t *testing.T) {
	rng := rand.New(rand.NewPCG(2, 2))
	for name, vals := range latencySets(rng) {
		if len(vals) < 100 {
			continue
		}
		sorted := slices.Sorted(slices.Values(vals))
		s := summarize(split(vals, 4, 5)) // tiny cap: samples are dropped
		if s.Exact {
			t.Fatalf("%s: exact although samples were dropped", name)
		}
		for _, c := range []struct {
			p   float64
			got float64
		}{{50, s.P50}, {90, s.P90}, {99, s.P99}, {99.9, s.P999}} {
			want := float64(refPercentile(sorted, c.p)) / 1e6
			if rel := math.Abs(c.got-want) / want; rel > 1.0/256+1e-9 {
				t.Errorf("%s p%v = %v ms, reference %v ms (relative error %.4f)", name, c.p, c.got, want, rel)
			}
		}
	}
}

func TestHistogramBuckets(t *testing.T) {
	// Buckets are ordered, every bucket's midpoint maps back to it, and
	// values are never more than half a bucket from their midpoint.
	prev := -1
	for v := int64(0); v < maxLatency; v = v + 1 + v/97 {
		i := bucketIndex(v)
		if i < prev {
			t.Fatalf("bucketIndex not monotonic at %d", v)
		}
		prev = i
		mid := bucketValue(i)
		if bucketIndex(mid) != i {
			t.Fatalf("midpoint %d of bucket %d maps to %d", mid, i, bucketIndex(mid))
		}
		if v > 0 && math.Abs(float64(mid-v))/float64(v) > 1.0/256+1e-9 {
			t.Fatalf("value %d reported as %d", v, mid)
		}
	}
	if bucketIndex(maxLatency) >= histBuckets {
		t.Fatal("maxLatency outside the histogram")
	}
}
