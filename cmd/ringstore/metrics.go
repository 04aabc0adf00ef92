package main

import (
	"fmt"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
	dto "github.com/prometheus/client_model/go"

	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/diskspace"
	"github.com/ringstore/ringstore/internal/rpc"
)

// requestMetrics times the S3 requests a node serves.
type requestMetrics struct {
	duration *prometheus.HistogramVec
}

func newRequestMetrics() *requestMetrics {
	return &requestMetrics{duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: "ringstore",
		Name:      "s3_request_duration_seconds",
		Help:      "Time to serve an S3 request, by HTTP method and outcome (ok or error).",
		// 100 us to 10 s: small requests take about a millisecond, large
		// bodies and quorum waits behind a dead node take seconds.
		Buckets: prometheus.ExponentialBucketsRange(100e-6, 10, 26),
	}, []string{"method", "outcome"})}
}

// observe is the gateway's Observe hook.
func (m *requestMetrics) observe(method string, failed bool, d time.Duration) {
	outcome := "ok"
	if failed {
		outcome = "error"
	}
	m.duration.WithLabelValues(method, outcome).Observe(d.Seconds())
}

// nanosHistogram re-exports a histogram observed in nanoseconds (pebble's)
// in seconds, the Prometheus base unit.
type nanosHistogram struct {
	desc *prometheus.Desc
	h    prometheus.Histogram
}

func (c nanosHistogram) Describe(ch chan<- *prometheus.Desc) { ch <- c.desc }

func (c nanosHistogram) Collect(ch chan<- prometheus.Metric) {
	var m dto.Metric
	if err := c.h.Write(&m); err != nil || m.Histogram == nil {
		ch <- prometheus.NewInvalidMetric(c.desc, fmt.Errorf("read histogram: %v", err))
		return
	}
	buckets := make(map[float64]uint64, len(m.Histogram.Bucket))
	for _, b := range m.Histogram.Bucket {
		buckets[b.GetUpperBound()/1e9] = b.GetCumulativeCount()
	}
	ch <- prometheus.MustNewConstHistogram(c.desc, m.Histogram.GetSampleCount(), m.Histogram.GetSampleSum()/1e9, buckets)
}

var (
	rpcCallsDesc    = prometheus.NewDesc("ringstore_rpc_client_calls_total", "Node-to-node calls this node made and got a reply to, by service.", []string{"service"}, nil)
	rpcSentDesc     = prometheus.NewDesc("ringstore_rpc_client_sent_bytes_total", "Request bytes of this node's node-to-node calls, by service.", []string{"service"}, nil)
	rpcReceivedDesc = prometheus.NewDesc("ringstore_rpc_client_received_bytes_total", "Reply bytes of this node's node-to-node calls, by service.", []string{"service"}, nil)
	rpcRefusedDesc  = prometheus.NewDesc("ringstore_rpc_handshakes_refused_total", "Connections to the RPC port refused in their TLS handshake: not TLS, no certificate from the cluster secret, or too slow.", nil, nil)
)

// rpcCollector reports the calls of every transport together, per
// service, and the handshakes they refused.
type rpcCollector []*rpc.Stats

func (c rpcCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- rpcCallsDesc
	ch <- rpcSentDesc
	ch <- rpcReceivedDesc
	ch <- rpcRefusedDesc
}

func (c rpcCollector) Collect(ch chan<- prometheus.Metric) {
	sum := map[string]rpc.ServiceStats{}
	var refused int64
	for _, st := range c {
		refused += st.Refused()
		for svc, v := range st.Snapshot() {
			t := sum[svc]
			t.Calls += v.Calls
			t.SentBytes += v.SentBytes
			t.ReceivedBytes += v.ReceivedBytes
			sum[svc] = t
		}
	}
	for svc, v := range sum {
		ch <- prometheus.MustNewConstMetric(rpcCallsDesc, prometheus.CounterValue, float64(v.Calls), svc)
		ch <- prometheus.MustNewConstMetric(rpcSentDesc, prometheus.CounterValue, float64(v.SentBytes), svc)
		ch <- prometheus.MustNewConstMetric(rpcReceivedDesc, prometheus.CounterValue, float64(v.ReceivedBytes), svc)
	}
	ch <- prometheus.MustNewConstMetric(rpcRefusedDesc, prometheus.CounterValue, float64(refused))
}

// metricsHandler exposes the node's counters for Prometheus. The counters
// live in the packages that count; this only reads them.
func metricsHandler(ix *index.Index, requests *requestMetrics, repairs *repairCounters, scrub *scrubStats, chunkAE *blobs.RepairStats, syncDelay func() time.Duration, space *diskspace.Guard, rpcStats ...*rpc.Stats) http.Handler {
	reg := prometheus.NewRegistry()
	if len(rpcStats) > 0 {
		reg.MustRegister(rpcCollector(rpcStats))
	}
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	reg.MustRegister(requests.duration)
	reg.MustRegister(nanosHistogram{
		desc: prometheus.NewDesc("ringstore_index_wal_fsync_seconds", "Time of each fsync of the index write-ahead log; every acknowledged write waits for one.", nil, nil),
		h:    ix.Store().WALFsyncLatency(),
	})
	ae := ix.AEStats()
	counter := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{Namespace: "ringstore", Name: name, Help: help}, f))
	}
	gauge := func(name, help string, f func() float64) {
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ringstore", Name: name, Help: help}, f))
	}
	counter("antientropy_rounds_total", "Anti-entropy rounds run.", func() float64 { return float64(ae.Rounds.Load()) })
	counter("antientropy_partitions_compared_total", "Partition trees compared with a co-owner.", func() float64 { return float64(ae.PartitionsCompared.Load()) })
	counter("antientropy_partitions_differing_total", "Partition trees found different from a co-owner's.", func() float64 { return float64(ae.PartitionsDiffering.Load()) })
	counter("antientropy_records_pulled_total", "Records fetched from co-owners by anti-entropy.", func() float64 { return float64(ae.RecordsPulled.Load()) })
	counter("antientropy_records_pushed_total", "Records sent to co-owners by anti-entropy.", func() float64 { return float64(ae.RecordsPushed.Load()) })
	gauge("index_wal_sync_delay_seconds", "How long each index WAL sync now waits for more writes to share it: --wal-sync-delay while the node is short of CPU, else 0.", func() float64 { return syncDelay().Seconds() })
	gauge("antientropy_last_round_seconds", "Duration of the last anti-entropy round.", func() float64 { return float64(ae.LastRoundNanos.Load()) / 1e9 })
	counter("read_repair_records_total", "Records sent to stale replicas by read repair.", func() float64 { return float64(repairs.records.Load()) })
	counter("read_digest_misses_total", "Record reads read again in full because the replicas' digests disagreed or one failed.", func() float64 { return float64(repairs.digestMisses.Load()) })
	counter("chunk_repairs_total", "Chunk copies rewritten on owners found without a good copy.", func() float64 { return float64(repairs.chunks.Load()) })
	counter("chunk_antientropy_passes_total", "Passes of chunk anti-entropy over the chunks this node should hold.", func() float64 { return float64(chunkAE.Passes.Load()) })
	counter("chunk_antientropy_checked_total", "Chunks chunk anti-entropy looked for on this node's disk.", func() float64 { return float64(chunkAE.Checked.Load()) })
	counter("chunk_antientropy_missing_total", "Chunks chunk anti-entropy found missing on this node.", func() float64 { return float64(chunkAE.Missing.Load()) })
	counter("chunk_antientropy_fetched_total", "Missing chunks copied here from another node.", func() float64 { return float64(chunkAE.Fetched.Load()) })
	counter("chunk_antientropy_fetched_bytes_total", "Bytes of the missing chunks copied here from another node.", func() float64 { return float64(chunkAE.FetchedBytes.Load()) })
	counter("chunk_antientropy_unavailable_total", "Missing chunks no other node could give.", func() float64 { return float64(chunkAE.Unavailable.Load()) })
	gauge("chunk_antientropy_last_pass_missing", "Chunks the last finished chunk anti-entropy pass found missing on this node.", func() float64 { return float64(chunkAE.LastMissing.Load()) })
	counter("scrub_chunks_total", "Chunks read and verified by scrub.", func() float64 { return float64(scrub.chunks.Chunks.Load()) })
	counter("scrub_chunks_corrupt_total", "Chunks scrub found corrupt.", func() float64 { return float64(scrub.chunks.Corrupt.Load()) })
	counter("scrub_chunks_repaired_total", "Corrupt chunks scrub rewrote from another owner.", func() float64 { return float64(scrub.chunks.Repaired.Load()) })
	counter("scrub_records_total", "Index records read and verified by scrub.", func() float64 { return float64(scrub.records.Records.Load()) })
	counter("scrub_partitions_damaged_total", "Partitions scrub found damaged.", func() float64 { return float64(scrub.records.Corrupt.Load()) })
	counter("scrub_partitions_repaired_total", "Damaged partitions scrub refilled from a co-owner.", func() float64 { return float64(scrub.records.Repaired.Load()) })
	registerDiskMetrics(reg, space, ix.Store())
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}

// registerDiskMetrics reports the free space of the data directories, the
// floor, and whether the node refuses new data or index writes.
func registerDiskMetrics(reg *prometheus.Registry, space *diskspace.Guard, store *index.Store) {
	dirSpace := func(name string) diskspace.DirSpace {
		for _, d := range space.Space() {
			if d.Name == name {
				return d
			}
		}
		return diskspace.DirSpace{}
	}
	for _, d := range space.Space() {
		labels := prometheus.Labels{"dir": d.Name}
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ringstore", Name: "disk_free_bytes", ConstLabels: labels,
			Help: "Free space of the filesystem of a data directory (index or blobs) that the node may use."},
			func() float64 { return float64(dirSpace(d.Name).Free) }))
		reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ringstore", Name: "disk_min_free_bytes", ConstLabels: labels,
			Help: "The --min-free floor for a data directory's filesystem: below it the node refuses new data."},
			func() float64 { return float64(dirSpace(d.Name).Floor) }))
	}
	bool01 := func(b bool) float64 {
		if b {
			return 1
		}
		return 0
	}
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ringstore", Name: "disk_below_floor",
		Help: "1 while the free disk space is below --min-free and the node refuses new data, else 0."},
		func() float64 { return bool01(space.BelowFloor()) }))
	reg.MustRegister(prometheus.NewGaugeFunc(prometheus.GaugeOpts{Namespace: "ringstore", Name: "index_writes_refused",
		Help: "1 while the index store refuses every write, deletes included (disk full, below the reserve of half --min-free, or failed), else 0."},
		func() float64 { return bool01(store.Refusing() != nil) }))
}
