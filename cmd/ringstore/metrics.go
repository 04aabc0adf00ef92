package main

import (
	"net/http"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/ringstore/ringstore/index"
)

// metricsHandler exposes the node's counters for Prometheus. The counters
// live in the packages that count; this only reads them.
func metricsHandler(ix *index.Index, repairs *repairCounters, scrub *scrubStats) http.Handler {
	reg := prometheus.NewRegistry()
	reg.MustRegister(collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
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
	gauge("antientropy_last_round_seconds", "Duration of the last anti-entropy round.", func() float64 { return float64(ae.LastRoundNanos.Load()) / 1e9 })
	counter("read_repair_records_total", "Records sent to stale replicas by read repair.", func() float64 { return float64(repairs.records.Load()) })
	counter("chunk_repairs_total", "Chunk copies rewritten on owners found without a good copy.", func() float64 { return float64(repairs.chunks.Load()) })
	counter("scrub_chunks_total", "Chunks read and verified by scrub.", func() float64 { return float64(scrub.chunks.Chunks.Load()) })
	counter("scrub_chunks_corrupt_total", "Chunks scrub found corrupt.", func() float64 { return float64(scrub.chunks.Corrupt.Load()) })
	counter("scrub_chunks_repaired_total", "Corrupt chunks scrub rewrote from another owner.", func() float64 { return float64(scrub.chunks.Repaired.Load()) })
	counter("scrub_records_total", "Index records read and verified by scrub.", func() float64 { return float64(scrub.records.Records.Load()) })
	counter("scrub_partitions_damaged_total", "Partitions scrub found damaged.", func() float64 { return float64(scrub.records.Corrupt.Load()) })
	counter("scrub_partitions_repaired_total", "Damaged partitions scrub refilled from a co-owner.", func() float64 { return float64(scrub.records.Repaired.Load()) })
	return promhttp.HandlerFor(reg, promhttp.HandlerOpts{})
}
