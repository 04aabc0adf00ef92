package bench

import (
	"math"
	"math/bits"
	"slices"
	"time"
)

// Latencies are kept exactly (as nanosecond samples) while that fits a
// memory budget, because exact percentiles are what the figures should be
// when runs are short; alongside, every sample also lands in a log-linear
// histogram with under 0.4% relative error, which takes over once any
// worker has dropped samples. The histogram is used rather than a reservoir
// because a reservoir's p99.9 on a few thousand kept samples is noisy while
// the histogram's is within its bucket width whatever the count.

const (
	subBucketBits = 7 // 128 sub-buckets per power of two
	subBuckets    = 1 << subBucketBits
	// maxLatency bounds the histogram; longer samples count as this.
	maxLatency = int64(time.Hour)
	// sampleBudget is the number of exact samples kept per operation type
	// across all workers (16 MiB of int64s).
	sampleBudget = 1 << 21
)

var histBuckets = bucketIndex(maxLatency) + 1

// bucketIndex maps a non-negative value to its histogram bucket: values
// below 128 are their own bucket; above, each power of two [2^k, 2^(k+1))
// is cut into 128 equal sub-buckets.
func bucketIndex(v int64) int {
	if v < subBuckets {
		return int(max(v, 0))
	}
	shift := bits.Len64(uint64(v)) - subBucketBits - 1
	return (shift+1)*subBuckets + int(v>>shift) - subBuckets
}

// bucketValue is the midpoint of bucket i, the value a histogram
// percentile reports.
func bucketValue(i int) int64 {
	if i < subBuckets {
		return int64(i)
	}
	shift := i/subBuckets - 1
	lower := int64(i%subBuckets+subBuckets) << shift
	return lower + (int64(1)<<shift)/2
}

// histogram is a log-linear latency histogram.
type histogram struct {
	counts []uint64 // allocated on first use
	n      uint64
}

func (h *histogram) add(v int64) {
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	h.counts[bucketIndex(min(v, maxLatency))]++
	h.n++
}

func (h *histogram) merge(o *histogram) {
	if o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, histBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	h.n += o.n
}

// percentile returns the nearest-rank p-th percentile (0 < p <= 100).
func (h *histogram) percentile(p float64) int64 {
	if h.n == 0 {
		return 0
	}
	rank := nearestRank(p, int(h.n))
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= uint64(rank) {
			return bucketValue(i)
		}
	}
	return bucketValue(len(h.counts) - 1)
}

// nearestRank is the 1-based rank of the p-th percentile of n values:
// ceil(p/100 * n), clamped to [1, n].
func nearestRank(p float64, n int) int {
	r := int(math.Ceil(p / 100 * float64(n)))
	return min(max(r, 1), n)
}

// percentileSorted is the nearest-rank percentile of sorted values.
func percentileSorted(sorted []int64, p float64) int64 {
	if len(sorted) == 0 {
		return 0
	}
	return sorted[nearestRank(p, len(sorted))-1]
}

// recorder collects one worker's latencies for one operation type. Workers
// own their recorders, so recording takes no lock.
type recorder struct {
	limit   int // most samples kept
	samples []int64
	dropped bool
	hist    histogram
	sum     int64
	max     int64
}

func (r *recorder) add(d time.Duration) {
	v := int64(d)
	if len(r.samples) < r.limit {
		r.samples = append(r.samples, v)
	} else {
		r.dropped = true
	}
	r.hist.add(v)
	r.sum += v
	r.max = max(r.max, v)
}

// LatencySummary is the latency distribution of one operation type, in
// milliseconds.
type LatencySummary struct {
	Mean  float64 `json:"mean_ms"`
	P50   float64 `json:"p50_ms"`
	P90   float64 `json:"p90_ms"`
	P99   float64 `json:"p99_ms"`
	P999  float64 `json:"p99_9_ms"`
	Max   float64 `json:"max_ms"`
	Exact bool    `json:"exact"` // false: percentiles come from the histogram
}

// summarize merges the workers' recorders for one operation type.
func summarize(rs []*recorder) LatencySummary {
	var n, total int
	var sum, mx int64
	dropped := false
	for _, r := range rs {
		n += int(r.hist.n)
		total += len(r.samples)
		sum += r.sum
		mx = max(mx, r.max)
		dropped = dropped || r.dropped
	}
	if n == 0 {
		return LatencySummary{Exact: true}
	}
	ms := func(ns int64) float64 { return float64(ns) / 1e6 }
	out := LatencySummary{Mean: float64(sum) / float64(n) / 1e6, Max: ms(mx), Exact: !dropped}
	var pct func(p float64) int64
	if dropped {
		var h histogram
		for _, r := range rs {
			h.merge(&r.hist)
		}
		pct = h.percentile
	} else {
		all := make([]int64, 0, total)
		for _, r := range rs {
			all = append(all, r.samples...)
		}
		slices.Sort(all)
		pct = func(p float64) int64 { return percentileSorted(all, p) }
	}
	out.P50, out.P90, out.P99, out.P999 = ms(pct(50)), ms(pct(90)), ms(pct(99)), ms(pct(99.9))
	return out
}
