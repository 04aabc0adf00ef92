package main

import (
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"os"
	"os/signal"
	"path/filepath"
	"runtime/debug"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringstore/ringstore/auth"
	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/gateway"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/bench"
	"github.com/ringstore/ringstore/internal/cpuload"
	"github.com/ringstore/ringstore/internal/gc"
	"github.com/ringstore/ringstore/internal/rpc"
	"github.com/ringstore/ringstore/internal/sse"
	"github.com/ringstore/ringstore/ring"
)

type serverOptions struct {
	data, s3Addr, domain, region, logLevel string
	gcInterval, gcGrace, uploadExpiry      time.Duration

	// Cluster mode (when gossipAddr is set).
	rpcAddr, gossipAddr, join, zone, secret string
	replicas, writeQuorum, readQuorum       int
	partitions                              int
	weight                                  uint32
	handoffInterval, keyCacheTTL            time.Duration
	aeInterval, settleDelay, aeConfirm      time.Duration
	aeRate                                  float64
	metricsAddr                             string
	scrubInterval                           time.Duration
	nodeID                                  string
	chunkSize                               string
	scrubBytesRate, scrubRecordsRate        float64
	chunkRepairInterval                     time.Duration
	chunkRepairRate                         float64
	walSyncDelay                            time.Duration
	rpcWriteTimeout                         time.Duration
	s3ProgressTimeout                       time.Duration
	bootstrapExpect                         int
	indexMemory                             string
	minFree                                 string
	tlsCert, tlsKey                         string
	sseMasterKeyFile                        string
	sseCAllowHTTP                           bool
}

// walSyncDelay holds each sync of the index WAL back by d while the
// process is short of CPU, so that more writes share it. Each acknowledged
// write waits for a sync, and a sync costs CPU of its own (on the 2-core
// test machine about 25 us of the process's system time, plus the
// filesystem journal's): with the cores saturated, fewer syncs leave
// more CPU to the writes. When the CPU is not short, waiting would only
// add latency: one client writing alone went from 2,170 to 630 PUT/s with
// a fixed 500 us (Go rounds such timers up to a millisecond when the
// process is idle). Measured, 4 KiB PUTs at 32 clients, runs interleaved
// with the delay off: a 3-node cluster on one machine 3,755 to 4,375
// PUT/s, p99.9 65-76 to 39-55 ms; a single node 9,022 to 10,765 PUT/s.
// At 1 and 4 clients the delay stays off and the figures did not move.
func walSyncDelay(d time.Duration) func() time.Duration {
	if d <= 0 {
		return func() time.Duration { return 0 }
	}
	return func() time.Duration {
		if cpuload.Busy() {
			return d
		}
		return 0
	}
}

// repairCounters counts repairs for metrics.
type repairCounters struct {
	records, chunks, digestMisses atomic.Int64
}

func serverCmd() *cobra.Command {
	var o serverOptions
	cmd := &cobra.Command{
		Use:   "server",
		Short: "Run a ringstore node",
		Long: `Run a ringstore node. Started with no flags it is a complete single-node
S3 store: data under ./data, S3 on 127.0.0.1:9000. With --gossip-addr and
--rpc-addr it is a cluster node: the first node needs no --join, every
other names the gossip address of any node already in the cluster. Every
flag can also be set by an environment variable (shown in brackets).`,
		RunE: func(cmd *cobra.Command, _ []string) error { return runServer(cmd.Context(), o) },
	}
	f := cmd.Flags()
	f.StringVar(&o.data, "data", envOr("RINGSTORE_DATA", "./data"), "data directory [RINGSTORE_DATA]")
	f.StringVar(&o.s3Addr, "s3-addr", envOr("RINGSTORE_S3_ADDR", "127.0.0.1:9000"), "S3 API listen address [RINGSTORE_S3_ADDR]")
	f.StringVar(&o.tlsCert, "tls-cert", envOr("RINGSTORE_TLS_CERT", ""), "PEM certificate (chain) file: the S3 port serves HTTPS; reloaded on SIGHUP and when the file changes [RINGSTORE_TLS_CERT]")
	f.StringVar(&o.tlsKey, "tls-key", envOr("RINGSTORE_TLS_KEY", ""), "PEM private key file of --tls-cert [RINGSTORE_TLS_KEY]")
	f.StringVar(&o.domain, "domain", envOr("RINGSTORE_DOMAIN", ""), "domain for virtual-hosted-style requests (bucket.DOMAIN) [RINGSTORE_DOMAIN]")
	f.StringVar(&o.region, "region", envOr("RINGSTORE_REGION", "us-east-1"), "region name [RINGSTORE_REGION]")
	f.StringVar(&o.logLevel, "log-level", envOr("RINGSTORE_LOG_LEVEL", "info"), "debug, info, warn or error [RINGSTORE_LOG_LEVEL]")
	f.DurationVar(&o.gcInterval, "gc-interval", envDuration("RINGSTORE_GC_INTERVAL", time.Hour), "how often unreferenced chunks are collected [RINGSTORE_GC_INTERVAL]")
	f.DurationVar(&o.gcGrace, "gc-grace", envDuration("RINGSTORE_GC_GRACE", 24*time.Hour), "how long an unreferenced chunk or an unfinished write is kept [RINGSTORE_GC_GRACE]")
	f.DurationVar(&o.uploadExpiry, "upload-expiry", envDuration("RINGSTORE_UPLOAD_EXPIRY", 7*24*time.Hour), "multipart uploads older than this are aborted and reclaimed [RINGSTORE_UPLOAD_EXPIRY]")
	f.StringVar(&o.indexMemory, "index-memory", envOr("RINGSTORE_INDEX_MEMORY", "512MiB"), "memory for the index store: half block cache, half memtables (each an eighth; up to four at once while flushes fall behind); 16MiB to 16GiB [RINGSTORE_INDEX_MEMORY]")
	f.StringVar(&o.minFree, "min-free", envOr("RINGSTORE_MIN_FREE", defaultMinFree), "free disk space below which the node refuses new data (deletes go on; below half of it, every index write stops): a size, a percentage of the filesystem, or both comma-separated for the smaller; 0 for none [RINGSTORE_MIN_FREE]")
	f.StringVar(&o.chunkSize, "chunk-size", envOr("RINGSTORE_CHUNK_SIZE", "1MiB"), "size of the chunks object bodies are cut into, 64KiB to 16MiB [RINGSTORE_CHUNK_SIZE]")
	f.StringVar(&o.nodeID, "node-id", envOr("RINGSTORE_NODE_ID", ""), "this node's id, used only when the data directory has none (to replace a lost disk under the same identity); default random [RINGSTORE_NODE_ID]")
	f.StringVar(&o.rpcAddr, "rpc-addr", envOr("RINGSTORE_RPC_ADDR", ""), "node-to-node API address, reachable by the other nodes [RINGSTORE_RPC_ADDR]")
	f.StringVar(&o.gossipAddr, "gossip-addr", envOr("RINGSTORE_GOSSIP_ADDR", ""), "gossip (memberlist) TCP and UDP address; enables cluster mode [RINGSTORE_GOSSIP_ADDR]")
	f.IntVar(&o.bootstrapExpect, "bootstrap-expect", envInt("RINGSTORE_BOOTSTRAP_EXPECT", 0), "for a new cluster: form its first layout with this many nodes at once; the node without --join waits for them, the others retry it [RINGSTORE_BOOTSTRAP_EXPECT]")
	f.StringVar(&o.join, "join", envOr("RINGSTORE_JOIN", ""), "gossip addresses of nodes already in the cluster, comma-separated [RINGSTORE_JOIN]")
	f.StringVar(&o.zone, "zone", envOr("RINGSTORE_ZONE", ""), "failure domain of this node; replicas spread over zones [RINGSTORE_ZONE]")
	f.Uint32Var(&o.weight, "weight", uint32(envInt("RINGSTORE_WEIGHT", 1)), "relative capacity of this node [RINGSTORE_WEIGHT]")
	f.Var(secretDefault(&o.secret, envOr("RINGSTORE_CLUSTER_SECRET", "")), "cluster-secret", "shared secret keying gossip and the TLS certificates of node-to-node requests; 32 random bytes or more, e.g. from: openssl rand -base64 32 [RINGSTORE_CLUSTER_SECRET]")
	f.IntVar(&o.replicas, "replicas", envInt("RINGSTORE_REPLICAS", 3), "replicas of every record and chunk (N), fixed when the cluster is created [RINGSTORE_REPLICAS]")
	f.IntVar(&o.writeQuorum, "write-quorum", envInt("RINGSTORE_WRITE_QUORUM", 0), "acknowledgements a write needs (W); 0 means a majority of N [RINGSTORE_WRITE_QUORUM]")
	f.IntVar(&o.readQuorum, "read-quorum", envInt("RINGSTORE_READ_QUORUM", 0), "replies a read needs (R); 0 means a majority of N [RINGSTORE_READ_QUORUM]")
	f.IntVar(&o.partitions, "partitions", envInt("RINGSTORE_PARTITIONS", ring.DefaultPartitions), "partitions of the key space, fixed when the cluster is created [RINGSTORE_PARTITIONS]")
	f.DurationVar(&o.keyCacheTTL, "key-cache-ttl", envDuration("RINGSTORE_KEY_CACHE_TTL", 30*time.Second), "how long an access key looked up in the index is trusted; a revoked key stops working within it [RINGSTORE_KEY_CACHE_TTL]")
	f.DurationVar(&o.aeInterval, "ae-interval", envDuration("RINGSTORE_AE_INTERVAL", 5*time.Second), "how often partition trees are compared with co-owners (anti-entropy) [RINGSTORE_AE_INTERVAL]")
	f.DurationVar(&o.aeConfirm, "ae-confirm", envDuration("RINGSTORE_AE_CONFIRM", time.Second), "how long a difference between replicas must persist before anti-entropy repairs it [RINGSTORE_AE_CONFIRM]")
	f.Float64Var(&o.aeRate, "ae-rate", envFloat("RINGSTORE_AE_RATE", 2000), "records per second anti-entropy may transfer [RINGSTORE_AE_RATE]")
	f.StringVar(&o.metricsAddr, "metrics-addr", envOr("RINGSTORE_METRICS_ADDR", ""), "address serving Prometheus metrics on /metrics and Go's profiler, unauthenticated: the operator's own network only [RINGSTORE_METRICS_ADDR]")
	f.DurationVar(&o.scrubInterval, "scrub-interval", envDuration("RINGSTORE_SCRUB_INTERVAL", 24*time.Hour), "time between the starts of scrub passes over every chunk and record [RINGSTORE_SCRUB_INTERVAL]")
	f.Float64Var(&o.scrubBytesRate, "scrub-bytes-rate", envFloat("RINGSTORE_SCRUB_BYTES_RATE", 32<<20), "chunk bytes per second scrub may read [RINGSTORE_SCRUB_BYTES_RATE]")
	f.Float64Var(&o.scrubRecordsRate, "scrub-records-rate", envFloat("RINGSTORE_SCRUB_RECORDS_RATE", 20000), "index records per second scrub may read [RINGSTORE_SCRUB_RECORDS_RATE]")
	f.DurationVar(&o.chunkRepairInterval, "chunk-repair-interval", envDuration("RINGSTORE_CHUNK_REPAIR_INTERVAL", 10*time.Minute), "time between passes of chunk anti-entropy, which fetches the chunks this node should hold and lacks from the other owners; a pass that found some missing is followed by another within seconds [RINGSTORE_CHUNK_REPAIR_INTERVAL]")
	f.Float64Var(&o.chunkRepairRate, "chunk-repair-rate", envFloat("RINGSTORE_CHUNK_REPAIR_RATE", 64<<20), "chunk bytes per second chunk anti-entropy may fetch [RINGSTORE_CHUNK_REPAIR_RATE]")
	f.DurationVar(&o.settleDelay, "settle-delay", envDuration("RINGSTORE_SETTLE_DELAY", 10*time.Second), "how long a node lets requests under an old layout finish before acknowledging a new one [RINGSTORE_SETTLE_DELAY]")
	f.DurationVar(&o.walSyncDelay, "wal-sync-delay", envDuration("RINGSTORE_WAL_SYNC_DELAY", 500*time.Microsecond), "while the node is short of CPU, how long each index WAL sync waits so that more writes share it, 0 to 10ms; 0 syncs at once [RINGSTORE_WAL_SYNC_DELAY]")
	f.DurationVar(&o.rpcWriteTimeout, "rpc-write-timeout", envDuration("RINGSTORE_RPC_WRITE_TIMEOUT", 10*time.Second), "how long a connection to another node may take no writes before it is closed and its requests fail; a link must move 256 KiB in half of it [RINGSTORE_RPC_WRITE_TIMEOUT]")
	f.DurationVar(&o.s3ProgressTimeout, "s3-progress-timeout", envDuration("RINGSTORE_S3_PROGRESS_TIMEOUT", gateway.DefaultProgressTimeout), "how long an S3 request body or response may stand still before the request ends (RequestTimeout) and its connection is closed, noticed within twice that; a client moving some bytes every timeout is never cut off, 1s to 10m [RINGSTORE_S3_PROGRESS_TIMEOUT]")
	f.StringVar(&o.sseMasterKeyFile, "sse-master-key-file", envOr("RINGSTORE_SSE_MASTER_KEY_FILE", ""), "file of SSE-S3 master keys, one ID:BASE64KEY a line, the newest last, the same on every node (or the keys themselves in RINGSTORE_SSE_MASTER_KEY); with keys, SSE-S3 is every bucket's default encryption, as in S3 [RINGSTORE_SSE_MASTER_KEY_FILE]")
	f.BoolVar(&o.sseCAllowHTTP, "sse-c-allow-http", envOr("RINGSTORE_SSE_C_ALLOW_HTTP", "") == "true", "take SSE-C keys over plain HTTP from any client, for a store behind a proxy that ends TLS; by default only over TLS or loopback [RINGSTORE_SSE_C_ALLOW_HTTP]")
	f.DurationVar(&o.handoffInterval, "handoff-interval", envDuration("RINGSTORE_HANDOFF_INTERVAL", 5*time.Second), "how often hints are handed off to owners that are back [RINGSTORE_HANDOFF_INTERVAL]")
	return cmd
}

func envDuration(name string, def time.Duration) time.Duration {
	if v, ok := os.LookupEnv(name); ok {
		if d, err := time.ParseDuration(v); err == nil {
			return d
		}
	}
	return def
}

func envFloat(name string, def float64) float64 {
	if v, ok := os.LookupEnv(name); ok {
		if f, err := strconv.ParseFloat(v, 64); err == nil {
			return f
		}
	}
	return def
}

func envInt(name string, def int) int {
	if v, ok := os.LookupEnv(name); ok {
		if n, err := strconv.Atoi(v); err == nil {
			return n
		}
	}
	return def
}

func newLogger(level string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("--log-level %q: %w", level, err)
	}
	return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: l})), nil
}

// placements holds the placement derived from the membership view;
// swapped whole when the layout or a data move changes.
type placements struct {
	view   *ring.View
	index  index.Placement
	chunks blobs.Placement
}

func newPlacements(v *ring.View) *placements {
	return &placements{view: v, index: index.ViewPlacement(v), chunks: blobs.ViewPlacement(v)}
}

// member finds a node in any active layout version (a removed node stays
// reachable while it hands its data off).
func (p *placements) member(id ring.NodeID) (ring.Member, bool) {
	for i := len(p.view.Active) - 1; i >= 0; i-- {
		if m, ok := p.view.Active[i].Member(id); ok {
			return m, true
		}
	}
	return ring.Member{}, false
}

func runServer(ctx context.Context, o serverOptions) error {
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	chunkBytes, err := bench.ParseSize(o.chunkSize)
	if err != nil || chunkBytes < 64<<10 || chunkBytes > 16<<20 {
		return fmt.Errorf("--chunk-size %q: want a size from 64KiB to 16MiB", o.chunkSize)
	}
	indexMemory, err := bench.ParseSize(o.indexMemory)
	if err != nil || indexMemory < index.MinMemory || indexMemory > index.MaxMemory {
		return fmt.Errorf("--index-memory %q: want a size from 16MiB to 16GiB", o.indexMemory)
	}
	minFree, err := parseMinFree(o.minFree)
	if err != nil {
		return err
	}
	// Every acknowledged write may wait this long once more, so it stays
	// small against a request's latency.
	if o.walSyncDelay < 0 || o.walSyncDelay > 10*time.Millisecond {
		return fmt.Errorf("--wal-sync-delay %v: want 0 to 10ms", o.walSyncDelay)
	}
	// Below a second, a busy but healthy peer (a long pebble flush, a GC
	// pause) would lose its connections and every request on them.
	if o.rpcWriteTimeout < time.Second {
		return fmt.Errorf("--rpc-write-timeout %v: want at least 1s", o.rpcWriteTimeout)
	}
	if o.chunkRepairInterval < 0 {
		return fmt.Errorf("--chunk-repair-interval %v: want a duration, or 0 to turn chunk anti-entropy off", o.chunkRepairInterval)
	}
	if o.chunkRepairRate <= 0 {
		return fmt.Errorf("--chunk-repair-rate %v: want bytes per second above 0", o.chunkRepairRate)
	}
	// Below a second, a client on a busy link or behind a GC pause would
	// have its transfers cut; far above it, stalled clients pile up with
	// their connections and buffers.
	if o.s3ProgressTimeout < time.Second || o.s3ProgressTimeout > 10*time.Minute {
		return fmt.Errorf("--s3-progress-timeout %v: want 1s to 10m", o.s3ProgressTimeout)
	}
	useTLS, err := tlsFlags(o.tlsCert, o.tlsKey)
	if err != nil {
		return err
	}
	var certs *certReloader
	hup := make(chan os.Signal, 1)
	if useTLS {
		if certs, err = newCertReloader(o.tlsCert, o.tlsKey, log); err != nil {
			return err
		}
		// From here on, so that a SIGHUP sent while the node starts
		// reloads the certificate instead of ending the process.
		signal.Notify(hup, syscall.SIGHUP)
		defer signal.Stop(hup)
	}
	masterKeys, err := sse.LoadKeyring(o.sseMasterKeyFile, os.Getenv("RINGSTORE_SSE_MASTER_KEY"))
	if err != nil {
		return fmt.Errorf("SSE-S3 master keys: %w", err)
	}
	if os.Getenv("GOGC") == "" {
		// The live heap is small and most allocation is short-lived request
		// garbage: collecting less often buys 20-30% more small requests per
		// second (measured with ringstore bench), and buffers are pooled, so
		// a 5 GiB upload still peaks at 50 MB resident.
		debug.SetGCPercent(400)
	}
	slog.SetDefault(log)
	cluster := o.gossipAddr != ""
	if cluster && o.rpcAddr == "" {
		return errors.New("--gossip-addr needs --rpc-addr (the address other nodes reach this one's RPC on)")
	}
	if o.bootstrapExpect < 0 || (o.bootstrapExpect > 1 && !cluster) {
		return fmt.Errorf("--bootstrap-expect %d: want a node count for a new cluster (with --gossip-addr)", o.bootstrapExpect)
	}
	secret := []byte(o.secret)
	if cluster {
		if err := rpc.CheckSecret(secret); err != nil {
			return err
		}
	}
	if err := os.MkdirAll(o.data, 0o755); err != nil {
		return fmt.Errorf("data directory: %w", err)
	}
	space, err := newDiskGuard(o.data, minFree, log)
	if err != nil {
		return err
	}
	syncDelay := walSyncDelay(o.walSyncDelay)
	store, err := index.OpenStore(filepath.Join(o.data, "index"), index.StoreOptions{Logger: log, WALSyncDelay: syncDelay, MemoryBytes: indexMemory, DiskFull: space.BelowReserve, Roomy: space.Roomy})
	if err != nil {
		return err
	}
	defer func() {
		if err := store.Close(); err != nil {
			log.Error("close index", "err", err)
		}
	}()
	chunkStore, err := blobs.Open(filepath.Join(o.data, "blobs"))
	if err != nil {
		return err
	}
	nodeID, err := loadNodeID(store, o.nodeID)
	if err != nil {
		return err
	}
	creds, credsFrom, err := loadCredentials(o.data)
	if err != nil {
		return err
	}
	stored, err := loadLayout(store)
	if err != nil {
		return err
	}
	self := ring.Member{ID: nodeID, Zone: o.zone, Weight: max(o.weight, 1), Addr: o.rpcAddr}

	var current atomic.Pointer[placements]
	alive := func(string) bool { return true }
	var membership *ring.Membership
	mux := rpc.NewMux()
	// Nodes and admin tools talk over the framed stream protocol, in TLS
	// authenticated by certificates derived from the secret; the RPC port
	// serves nothing else.
	var stream *rpc.Stream
	if cluster {
		resolve := func(node string) (string, bool) {
			p := current.Load()
			if p == nil {
				return "", false
			}
			m, ok := p.member(ring.NodeID(node))
			return m.Addr, ok && m.Addr != ""
		}
		stream = &rpc.Stream{Self: string(nodeID), Secret: secret, Resolve: resolve, Mux: mux, Logger: log, WriteTimeout: o.rpcWriteTimeout}
		defer stream.Close()
		var joins []string
		for _, j := range strings.Split(o.join, ",") {
			if j = strings.TrimSpace(j); j != "" {
				joins = append(joins, j)
			}
		}
		storedTrackers, err := loadTrackers(store)
		if err != nil {
			return err
		}
		var peers []string
		if b, err := store.GetMeta("peers"); err != nil {
			return err
		} else if len(b) > 0 {
			peers = strings.Split(string(b), ",")
		}
		membership, err = ring.StartMembership(ring.MembershipConfig{
			Self: nodeID, Member: self, GossipAddr: o.gossipAddr, Join: joins, Secret: secret,
			Stored: stored, StoredTrackers: storedTrackers, Partitions: o.partitions, Replicas: o.replicas, S3Addr: o.s3Addr,
			BootstrapExpect: o.bootstrapExpect,
			Save:            func(l *ring.ClusterLayout) error { return saveLayout(store, l) },
			SaveTrackers:    func(t *ring.Trackers) error { return saveTrackers(store, t) },
			Peers:           peers,
			SavePeers:       func(p []string) error { return store.SetMeta("peers", []byte(strings.Join(p, ","))) },
			OnChange:        func(v *ring.View) { current.Store(newPlacements(v)) },
			SettleDelay:     o.settleDelay,
			Logger:          log,
		})
		if err != nil {
			return err
		}
		defer func() {
			if err := membership.Leave(); err != nil {
				log.Warn("leave gossip", "err", err)
			}
		}()
		alive = membership.Alive
	} else {
		if stored == nil {
			if stored, err = ring.NewClusterLayout(self, o.partitions, o.replicas); err != nil {
				return err
			}
			if err := saveLayout(store, stored); err != nil {
				return err
			}
		}
		rg, err := stored.Ring()
		if err != nil {
			return err
		}
		current.Store(newPlacements(&ring.View{Active: []*ring.Ring{rg}, Read: rg, Current: rg}))
	}
	if current.Load() == nil {
		// StartMembership returns only after OnChange had a view: a missing
		// one is a bug to report, not a nil to dereference.
		return errors.New("membership started without a placement")
	}
	layout := current.Load().view.Current.Layout()

	clock := index.NewClock(nil)
	repairs := &repairCounters{}
	var indexTransport index.Transport
	if stream != nil {
		indexTransport = index.RPCTransport{RPC: stream}
	}
	ix := index.New(index.Config{
		Self:         string(nodeID),
		Placement:    func() index.Placement { return current.Load().index },
		Store:        store,
		Transport:    indexTransport,
		Alive:        alive,
		Clock:        clock,
		N:            layout.Replicas,
		W:            o.writeQuorum,
		R:            o.readQuorum,
		Logger:       log,
		OnRepair:     func(_ index.Table, n int) { repairs.records.Add(int64(n)) },
		OnDigestMiss: func(index.Table) { repairs.digestMisses.Add(1) },
		AEConfirm:    o.aeConfirm,
	})
	mux.Handle(index.RPCService, index.RPCHandler(store, clock))
	var chunkRPC rpc.Transport
	if stream != nil {
		chunkRPC = stream
	}
	chunks := blobs.NewReplicated(blobs.ReplicatedConfig{
		Self: string(nodeID), Local: chunkStore, RPC: chunkRPC,
		Placement: func() blobs.Placement { return current.Load().chunks },
		Alive:     alive, W: o.writeQuorum, Logger: log,
		OnRepair: func(string) { repairs.chunks.Add(1) },
		Admit:    space.Admit,
	}, mux)
	verifier := &auth.Verifier{
		Region: o.region,
		Lookup: gateway.KeyLookup(ix, creds.AccessKeyID, creds.SecretAccessKey, o.keyCacheTTL),
	}
	requests := newRequestMetrics()
	var bucketChanged func(context.Context, string)
	var fenceEverywhere func(context.Context, string, index.Timestamp, bool) error
	if cluster {
		fenceEverywhere = func(ctx context.Context, name string, fence index.Timestamp, set bool) error {
			return fenceBucketEverywhere(ctx, stream, current.Load(), string(nodeID), name, fence, set)
		}
		bucketChanged = func(ctx context.Context, name string) {
			forgetBucketEverywhere(ctx, stream, membership, string(nodeID), name, log)
		}
	}
	gw := gateway.New(gateway.Config{
		Region: o.region, Domain: o.domain, Index: ix, Chunks: chunks, Auth: verifier, Logger: log,
		ChunkBytes: int(chunkBytes), Observe: requests.observe, BucketChanged: bucketChanged, GCGrace: o.gcGrace,
		AdmitWrite:      space.Admit,
		ProgressTimeout: o.s3ProgressTimeout,
		FenceEverywhere: fenceEverywhere,
		MasterKeys:      masterKeys,
		SSECOverHTTP:    o.sseCAllowHTTP,
	})
	if masterKeys != nil {
		log.Info("SSE-S3 master keys loaded; new objects are SSE-S3 unless they ask otherwise", "ids", strings.Join(masterKeys.IDs(), ","), "newest", masterKeys.Newest())
	}
	if cluster {
		mux.Handle(fenceBucketService, func(_ context.Context, _ string, body []byte) ([]byte, error) {
			name, fence, set, err := decodeFence(body)
			if err != nil {
				return nil, err
			}
			gw.FenceBucket(name, fence, set)
			return nil, nil
		})
		mux.Handle(forgetBucketService, func(_ context.Context, _ string, name []byte) ([]byte, error) {
			gw.ForgetBucket(string(name))
			return nil, nil
		})
	}

	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	var servers []*http.Server
	serveErr := make(chan error, 2)
	serve := func(addr string, h http.Handler, wrap ...func(net.Listener) net.Listener) (string, error) {
		ln, err := net.Listen("tcp", addr)
		if err != nil {
			return "", fmt.Errorf("listen on %s: %w", addr, err)
		}
		for _, w := range wrap {
			ln = w(ln)
		}
		srv := &http.Server{
			Handler:           h,
			ReadHeaderTimeout: 30 * time.Second,
			IdleTimeout:       2 * time.Minute,
			MaxHeaderBytes:    64 << 10,
			ErrorLog:          httpErrorLog(log),
		}
		servers = append(servers, srv)
		go func() { serveErr <- srv.Serve(ln) }()
		return ln.Addr().String(), nil
	}
	scrub := &scrubStats{}
	chunkAE := &blobs.RepairStats{}
	var rpcStats []*rpc.Stats
	if cluster {
		rpcStats = []*rpc.Stats{&stream.Stats}
	}
	metrics := metricsHandler(ix, requests, repairs, scrub, chunkAE, syncDelay, space, rpcStats...)
	var rpcLn net.Listener
	if cluster {
		registerAdmin(mux, membership, ix, scrub, chunkAE)
		if rpcLn, err = net.Listen("tcp", o.rpcAddr); err != nil {
			return fmt.Errorf("listen on %s: %w", o.rpcAddr, err)
		}
		defer rpcLn.Close()
		go func() { serveErr <- stream.Serve(rpcLn) }()
	}
	if o.metricsAddr != "" {
		// The metrics address also serves Go's profiler: it is the
		// operator's own port (and unauthenticated), never the RPC one.
		mm := http.NewServeMux()
		mm.Handle("/metrics", metrics)
		mm.HandleFunc("/debug/pprof/", pprof.Index)
		mm.HandleFunc("/debug/pprof/profile", pprof.Profile)
		mm.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
		mm.HandleFunc("/debug/pprof/trace", pprof.Trace)
		if _, err := serve(o.metricsAddr, mm); err != nil {
			return err
		}
	}
	s3Wrap := []func(net.Listener) net.Listener{gw.Listener}
	scheme := "http"
	if certs != nil {
		s3Wrap, scheme = append(s3Wrap, certs.listener), "https"
	}
	s3Addr, err := serve(o.s3Addr, gw, s3Wrap...)
	if err != nil {
		return err
	}
	endpoint := scheme + "://" + s3Addr
	printBanner(os.Stdout, endpoint, o.region, creds, credsFrom, o.data)

	var wg sync.WaitGroup
	if certs != nil {
		wg.Add(1)
		go func() {
			defer wg.Done()
			certs.run(ctx, hup)
		}()
	}
	collector := gc.New(gc.Config{Index: ix, Blobs: chunkStore, Grace: o.gcGrace, UploadExpiry: o.uploadExpiry, Logger: log})
	wg.Add(1)
	go func() {
		defer wg.Done()
		collector.Run(ctx, o.gcInterval)
	}()
	wg.Add(1)
	go func() {
		defer wg.Done()
		runScrub(ctx, o, ix, chunks, scrub, log)
	}()
	if cluster {
		wg.Add(1)
		go func() {
			defer wg.Done()
			runHandoff(ctx, o.handoffInterval, ix, chunks, log)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			ix.AntiEntropy(ctx, o.aeInterval, o.aeRate)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			runChunkRepair(ctx, o, ix, chunks, chunkAE, log)
		}()
		wg.Add(1)
		go func() {
			defer wg.Done()
			runMover(ctx, membership, func() *placements { return current.Load() }, ix, chunks, log)
		}()
	}
	log.Info("ringstore ready", "endpoint", endpoint, "node", nodeID, "data", o.data, "cluster", cluster,
		"replicas", layout.Replicas)
	select {
	case err := <-serveErr:
		return fmt.Errorf("serve: %w", err)
	case <-ctx.Done():
	}
	log.Info("shutting down: draining in-flight requests")
	shutdownCtx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	for i := len(servers) - 1; i >= 0; i-- {
		if err := servers[i].Shutdown(shutdownCtx); err != nil {
			log.Warn("shutdown incomplete", "err", err)
		}
	}
	wg.Wait()
	log.Info("stopped")
	return nil
}

// runMover moves data after layout changes: when every node acknowledged
// a new layout it pushes what it holds to the new owners, then reports
// itself synced; once the old versions are retired it drops what it no
// longer owns.
func runMover(ctx context.Context, m *ring.Membership, cur func() *placements, ix *index.Index, chunks *blobs.Replicated, log *slog.Logger) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var dropped uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		p := cur()
		if v, ok := m.NeedsSync(); ok {
			start := time.Now()
			err := errors.Join(ix.SyncMoved(ctx, p.index), chunks.SyncMoved(ctx))
			if err != nil {
				if ctx.Err() == nil {
					log.Info("data move not finished", "version", v, "err", err)
				}
				continue
			}
			m.MarkSynced(v)
			log.Info("data moved to the new owners", "version", v, "duration", time.Since(start))
		}
		if p.view.Moving || dropped >= p.view.Current.Version() {
			continue
		}
		parts, err := ix.DropUnowned(p.index)
		if err != nil {
			log.Warn("drop unowned partitions", "err", err)
			continue
		}
		n, err := chunks.DropUnowned(ctx)
		if err != nil {
			log.Warn("drop unowned chunks", "err", err)
			continue
		}
		dropped = p.view.Current.Version()
		if parts > 0 || n > 0 {
			log.Info("dropped data this node no longer owns", "partitions", parts, "chunks", n)
		}
	}
}

// scrubStats are the counters of both scrubs.
type scrubStats struct {
	chunks  blobs.ScrubStats
	records index.ScrubStats
}

// runScrub starts a scrub pass over chunks and records every interval.
// A chunk store that may hold chunks written before writes were checked
// against their IDs (by an earlier version, which could store a reused
// buffer's bytes under another chunk's name, with a fast checksum that
// reads then trusted) is scrubbed once at start.
func runScrub(ctx context.Context, o serverOptions, ix *index.Index, chunks *blobs.Replicated, st *scrubStats, log *slog.Logger) {
	if local := chunks.Local(); local.Unverified() {
		log.Info("chunk store written by an earlier version: verifying every chunk against its id once")
		err := chunks.Scrub(ctx, o.scrubBytesRate, &st.chunks)
		if err == nil {
			err = local.MarkVerified()
		}
		if err != nil {
			if ctx.Err() == nil {
				log.Warn("first chunk scrub", "err", err)
			}
		} else {
			log.Info("every chunk verified", "chunks", st.chunks.Chunks.Load(), "corrupt", st.chunks.Corrupt.Load(), "repaired", st.chunks.Repaired.Load())
		}
	}
	if o.scrubInterval <= 0 {
		return
	}
	t := time.NewTicker(o.scrubInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := ix.Scrub(ctx, o.scrubRecordsRate, &st.records); err != nil && ctx.Err() == nil {
			log.Warn("record scrub", "err", err)
		}
		if err := chunks.Scrub(ctx, o.scrubBytesRate, &st.chunks); err != nil && ctx.Err() == nil {
			log.Warn("chunk scrub", "err", err)
		}
		log.Info("scrub pass done", "records", st.records.Records.Load(), "damaged_partitions", st.records.Corrupt.Load(),
			"chunks", st.chunks.Chunks.Load(), "corrupt_chunks", st.chunks.Corrupt.Load(), "repaired_chunks", st.chunks.Repaired.Load())
	}
}

// runChunkRepair runs chunk anti-entropy: passes over the chunks this node
// should hold, fetching those it lacks from the other owners. A pass that
// fetched chunks, or that follows records pulled in by record
// anti-entropy, is followed by another within seconds: a node refilling a
// lost disk gets its references back over many anti-entropy rounds, and
// each round names more chunks to fetch. Otherwise passes are
// --chunk-repair-interval apart, since each reads every reference the
// node holds.
func runChunkRepair(ctx context.Context, o serverOptions, ix *index.Index, chunks *blobs.Replicated, st *blobs.RepairStats, log *slog.Logger) {
	if o.chunkRepairInterval <= 0 {
		return
	}
	// A reference younger than this may belong to a write whose chunk is
	// still on its way: not worth a fetch yet.
	const settle = 10 * time.Second
	// A chunk no node could give is asked for again after this.
	retry := max(10*o.chunkRepairInterval, time.Hour)
	owned := func(fn func(blobs.ID) bool) error {
		before := index.MakeTimestamp(time.Now().Add(-settle), 0)
		return ix.OwnedChunks(ctx, before, func(id index.BlobID) bool { return fn(blobs.ID(id)) })
	}
	const soon = 5 * time.Second
	next := min(o.chunkRepairInterval, soon)
	pulled := int64(-1)
	for {
		select {
		case <-ctx.Done():
			return
		case <-time.After(next):
		}
		before := ix.AEStats().RecordsPulled.Load()
		pass, err := chunks.RepairMissing(ctx, owned, o.chunkRepairRate, retry, st)
		if err != nil && ctx.Err() == nil {
			log.Warn("chunk anti-entropy", "err", err)
		}
		next = o.chunkRepairInterval
		if pass.Fetched > 0 || err != nil || before != pulled || ix.AEStats().RecordsPulled.Load() != before {
			next = min(next, soon)
		}
		pulled = before
	}
}

// runHandoff delivers hinted records and chunks to owners that are back.
func runHandoff(ctx context.Context, every time.Duration, ix *index.Index, chunks *blobs.Replicated, log *slog.Logger) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if n, err := ix.Handoff(ctx); err != nil && ctx.Err() == nil {
			log.Warn("record handoff", "err", err)
		} else if n > 0 {
			log.Info("records handed off", "count", n)
		}
		if n, err := chunks.Handoff(ctx); err != nil && ctx.Err() == nil {
			log.Warn("chunk handoff", "err", err)
		} else if n > 0 {
			log.Info("chunks handed off", "count", n)
		}
	}
}

func loadNodeID(store *index.Store, want string) (ring.NodeID, error) {
	idb, err := store.GetMeta("node-id")
	if err != nil {
		return "", err
	}
	if idb != nil && want != "" && string(idb) != want {
		return "", fmt.Errorf("--node-id %s, but the data directory belongs to node %s", want, idb)
	}
	if idb == nil {
		var b [8]byte
		_, _ = rand.Read(b[:])
		idb = []byte(hex.EncodeToString(b[:]))
		if want != "" {
			idb = []byte(want)
		}
		if err := store.SetMeta("node-id", idb); err != nil {
			return "", err
		}
	}
	return ring.NodeID(idb), nil
}

func loadLayout(store *index.Store) (*ring.ClusterLayout, error) {
	b, err := store.GetMeta("cluster-layout")
	if err != nil || b == nil {
		return nil, err
	}
	var l ring.ClusterLayout
	if err := l.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("stored layout: %w", err)
	}
	return &l, nil
}

func loadTrackers(store *index.Store) (*ring.Trackers, error) {
	b, err := store.GetMeta("trackers")
	if err != nil || b == nil {
		return nil, err
	}
	t := ring.NewTrackers()
	if err := t.UnmarshalBinary(b); err != nil {
		return nil, fmt.Errorf("stored trackers: %w", err)
	}
	return t, nil
}

func saveTrackers(store *index.Store, t *ring.Trackers) error {
	b, err := t.MarshalBinary()
	if err != nil {
		return err
	}
	return store.SetMeta("trackers", b)
}

func saveLayout(store *index.Store, l *ring.ClusterLayout) error {
	b, err := l.MarshalBinary()
	if err != nil {
		return err
	}
	return store.SetMeta("cluster-layout", b)
}

type credentials struct {
	AccessKeyID     string `json:"access_key_id"`
	SecretAccessKey string `json:"secret_access_key"`
}

// credentialSource is where the root credentials came from. Only a secret
// generated by this start is shown on the terminal: one from the
// environment or from an earlier start is already known to whoever needs
// it, and output is often kept in logs that others read.
type credentialSource int

const (
	credsFromEnv credentialSource = iota
	credsFromFile
	credsGenerated
)

// loadCredentials returns the root credentials: from the environment, else
// from the data directory, else generated now and saved there (mode 0600).
func loadCredentials(dir string) (credentials, credentialSource, error) {
	id, secret := os.Getenv("RINGSTORE_ACCESS_KEY_ID"), os.Getenv("RINGSTORE_SECRET_ACCESS_KEY")
	if id != "" || secret != "" {
		if id == "" || secret == "" {
			return credentials{}, 0, errors.New("set both RINGSTORE_ACCESS_KEY_ID and RINGSTORE_SECRET_ACCESS_KEY, or neither")
		}
		return credentials{id, secret}, credsFromEnv, nil
	}
	path := filepath.Join(dir, "credentials.json")
	b, err := os.ReadFile(path)
	if err == nil {
		var c credentials
		if err := json.Unmarshal(b, &c); err != nil || c.AccessKeyID == "" || c.SecretAccessKey == "" {
			return credentials{}, 0, fmt.Errorf("%s: not valid credentials", path)
		}
		return c, credsFromFile, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return credentials{}, 0, fmt.Errorf("read credentials: %w", err)
	}
	c := credentials{AccessKeyID: "RS" + randomString(18, "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"), SecretAccessKey: randomString(40, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/")}
	b, _ = json.MarshalIndent(c, "", "  ")
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return credentials{}, 0, fmt.Errorf("write credentials: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return credentials{}, 0, fmt.Errorf("write credentials: %w", err)
	}
	return c, credsGenerated, nil
}

func randomString(n int, alphabet string) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	for i := range b {
		b[i] = alphabet[int(b[i])%len(alphabet)]
	}
	return string(b)
}

func printBanner(w io.Writer, endpoint, region string, c credentials, from credentialSource, data string) {
	path := filepath.Join(data, "credentials.json")
	var sb strings.Builder
	fmt.Fprintf(&sb, "ringstore S3 endpoint: %s\n", endpoint)
	fmt.Fprintf(&sb, "  region:            %s\n", region)
	fmt.Fprintf(&sb, "  access key id:     %s\n", c.AccessKeyID)
	// The try line reads a secret it does not show from where it is kept.
	var secret string
	switch from {
	case credsGenerated:
		fmt.Fprintf(&sb, "  secret access key: %s\n", c.SecretAccessKey)
		fmt.Fprintf(&sb, "  (generated and saved in %s)\n", path)
		secret = c.SecretAccessKey
	case credsFromFile:
		fmt.Fprintf(&sb, "  secret access key: in %s\n", path)
		secret = `"$(sed -n 's/.*"secret_access_key": "\(.*\)".*/\1/p' ` + shellQuote(path) + `)"`
	default:
		sb.WriteString("  secret access key: from RINGSTORE_SECRET_ACCESS_KEY\n")
		secret = `"$RINGSTORE_SECRET_ACCESS_KEY"`
	}
	fmt.Fprintf(&sb, "try:\n  AWS_ACCESS_KEY_ID=%s AWS_SECRET_ACCESS_KEY=%s AWS_DEFAULT_REGION=%s aws --endpoint-url %s s3 ls\n",
		c.AccessKeyID, secret, region, endpoint)
	_, _ = io.WriteString(w, sb.String())
}

// shellQuote quotes s for a POSIX shell.
func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// forgetBucketService is the node-to-node request that drops a bucket from
// a node's bucket cache.
const forgetBucketService = "gateway.forget-bucket"

// forgetBucketEverywhere has every other alive node drop a bucket changed
// through this one from its cache. It waits at most a second, the cache's
// lifetime: past it they drop the bucket anyway.
func forgetBucketEverywhere(ctx context.Context, stream *rpc.Stream, m *ring.Membership, self, name string, log *slog.Logger) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), time.Second)
	defer cancel()
	var wg sync.WaitGroup
	for _, ms := range m.Status() {
		node := string(ms.ID)
		if node == self || !ms.Alive {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := stream.Call(ctx, node, forgetBucketService, []byte(name)); err != nil {
				log.Debug("bucket cache invalidation not delivered", "node", node, "bucket", name, "err", err)
			}
		}()
	}
	wg.Wait()
}

// fenceBucketService is the node-to-node request that registers or lifts
// a DeleteBucket's fence on a node (gateway.Server.FenceBucket).
const fenceBucketService = "gateway.fence-bucket"

// fenceBucketEverywhere tells every other node of every active layout
// version of a fence set or lifted. Setting fails unless every one of them
// answered within two seconds, alive or not as gossip sees it: a node cut
// off from this one may still coordinate writes through the others.
func fenceBucketEverywhere(ctx context.Context, stream *rpc.Stream, p *placements, self, name string, fence index.Timestamp, set bool) error {
	ctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	defer cancel()
	seen := map[ring.NodeID]bool{}
	var nodes []string
	for _, r := range p.view.Active {
		for _, m := range r.Layout().Members {
			if string(m.ID) != self && !seen[m.ID] {
				seen[m.ID] = true
				nodes = append(nodes, string(m.ID))
			}
		}
	}
	body := encodeFence(name, fence, set)
	errs := make([]error, len(nodes))
	var wg sync.WaitGroup
	for i, node := range nodes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if _, err := stream.Call(ctx, node, fenceBucketService, body); err != nil {
				errs[i] = fmt.Errorf("%s: %w", node, err)
			}
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

func encodeFence(name string, fence index.Timestamp, set bool) []byte {
	b := binary.BigEndian.AppendUint64(nil, uint64(fence))
	if set {
		b = append(b, 1)
	} else {
		b = append(b, 0)
	}
	return append(b, name...)
}

func decodeFence(b []byte) (string, index.Timestamp, bool, error) {
	if len(b) < 9 || b[8] > 1 {
		return "", 0, false, errors.New("gateway.fence-bucket: bad request")
	}
	return string(b[9:]), index.Timestamp(binary.BigEndian.Uint64(b)), b[8] == 1, nil
}
