package bench

import (
	"context"
	"crypto/md5"
	"crypto/sha256"
	"encoding/binary"
	"fmt"
	"hash"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"

	"github.com/ringstore/ringstore/auth"
	"github.com/ringstore/ringstore/gateway"
)

// Baseline holds this machine's limits, measured in the same run, so that
// a figure can be read against what the hardware allows rather than in
// the abstract.
type Baseline struct {
	// HashSeqMiBPerSec: SHA-256 then MD5 over the same bytes on one
	// goroutine (one core): the per-byte cost a PUT pays to compute both.
	HashSeqMiBPerSec float64 `json:"sha256_md5_sequential_mib_per_s"`
	// HashParMiBPerSec: the two hashes on two goroutines in parallel, over
	// the same bytes; the pair's rate is the slower one's.
	HashParMiBPerSec float64 `json:"sha256_md5_parallel_mib_per_s"`
	SHA256MiBPerSec  float64 `json:"sha256_mib_per_s"` // in the parallel run
	MD5MiBPerSec     float64 `json:"md5_mib_per_s"`    // in the parallel run

	// GroupCommitsPerSec: pebble batches committed with Sync by
	// GroupCommitWriters goroutines: the rate durable metadata writes can
	// reach on this disk with commit-pipeline batching.
	GroupCommitsPerSec float64 `json:"pebble_group_commits_per_s"`
	GroupCommitWriters int     `json:"pebble_group_commit_writers"`
	GroupCommitDir     string  `json:"pebble_group_commit_dir"`

	// BareGet*: a bare net/http server on loopback answering GET with 4 KiB
	// from memory, driven by this client at the run's concurrency: the
	// request-rate ceiling of HTTP plus this client on this machine.
	BareGetOpsPerSec float64 `json:"bare_http_get_ops_per_s"`
	BareGetP99Ms     float64 `json:"bare_http_get_p99_ms"`
	BareGetClients   int     `json:"bare_http_get_clients"`
}

// Names of the limits as ratios cite them.
const (
	limitBare   = "bare-http-get"
	limitHash   = "sha256+md5"
	limitCommit = "group-commit"
)

// smallObjectMax bounds the objects whose request rate (rather than
// bandwidth) is the figure of merit: ringstore keeps objects up to this
// size inside the index record, so their cost is per request.
const smallObjectMax = gateway.DefaultInlineMax

// ratios relates one operation type's figures to the limits that bound it:
// STAT (and small-object GET) request rates to the bare server, PUT
// bandwidth to hashing, and DELETE (and small-object PUT) request rates to
// synced commits, since every such request is at least one durable index
// write. A large GET's request rate says nothing against a 4 KiB server,
// nor a large PUT's against a commit rate, so those get no ratio.
func (b *Baseline) ratios(o *OpResult, objSize int64) []Ratio {
	mk := func(metric, limit string, v, lim float64) Ratio {
		r := Ratio{Metric: metric, Limit: limit, Value: v, LimitValue: lim}
		if lim > 0 {
			r.Ratio = v / lim
		}
		return r
	}
	small := objSize <= smallObjectMax
	switch o.Op {
	case "STAT":
		return []Ratio{mk("ops_per_s", limitBare, o.OpsPerSec, b.BareGetOpsPerSec)}
	case "GET":
		if small {
			return []Ratio{mk("ops_per_s", limitBare, o.OpsPerSec, b.BareGetOpsPerSec)}
		}
	case "PUT":
		rs := []Ratio{mk("mib_per_s", limitHash, o.MiBPerSec, b.HashSeqMiBPerSec)}
		if small {
			rs = append(rs, mk("ops_per_s", limitCommit, o.OpsPerSec, b.GroupCommitsPerSec))
		}
		return rs
	case "DELETE":
		return []Ratio{mk("ops_per_s", limitCommit, o.OpsPerSec, b.GroupCommitsPerSec)}
	}
	return nil
}

func (b *Baseline) writeText(sb *strings.Builder) {
	sb.WriteString("machine limits (--baseline, measured in this run):\n")
	fmt.Fprintf(sb, "  %-13s SHA-256 then MD5, one core:       %9.1f MiB/s\n", limitHash, b.HashSeqMiBPerSec)
	fmt.Fprintf(sb, "  %-13s SHA-256 || MD5, two goroutines:   %9.1f MiB/s  (SHA-256 %.1f, MD5 %.1f)\n", "",
		b.HashParMiBPerSec, b.SHA256MiBPerSec, b.MD5MiBPerSec)
	fmt.Fprintf(sb, "  %-13s pebble synced batches:            %9.1f commits/s  (%d writers, in %s)\n", limitCommit,
		b.GroupCommitsPerSec, b.GroupCommitWriters, b.GroupCommitDir)
	fmt.Fprintf(sb, "  %-13s bare net/http GET 4 KiB:          %9.1f ops/s  p99 %.2f ms  (%d clients)\n", limitBare,
		b.BareGetOpsPerSec, b.BareGetP99Ms, b.BareGetClients)
}

// measureBaseline runs the three limit measurements one after another,
// before any load is sent, so they do not compete with each other or with
// the benchmark.
func measureBaseline(ctx context.Context, cfg Config, creds auth.Credentials, log *slog.Logger) (*Baseline, error) {
	d := cfg.BaselineDuration
	if d <= 0 {
		d = 3 * time.Second
	}
	b := &Baseline{}
	log.Info("baseline: hashing")
	measureHash(b, d/3)
	log.Info("baseline: pebble group commit", "writers", cfg.Concurrency)
	if err := measureGroupCommit(ctx, b, cfg.BaselineDir, cfg.Concurrency, d); err != nil {
		return nil, err
	}
	log.Info("baseline: bare net/http server", "clients", cfg.Concurrency)
	if err := measureBareHTTP(ctx, b, cfg, creds, d); err != nil {
		return nil, err
	}
	return b, nil
}

// measureHash times the two digests a PUT computes over incompressible
// bytes (a buffer of the content stream), first in turn on one goroutine,
// then each on its own goroutine over the same buffer.
func measureHash(b *Baseline, d time.Duration) {
	buf := make([]byte, 1<<20)
	_, _ = NewContent(1, "baseline", int64(len(buf))).Read(buf)
	const mib = 1 << 20

	sha, md := sha256.New(), md5.New()
	var n int64
	start := time.Now()
	for n == 0 || time.Since(start) < d {
		sha.Write(buf)
		md.Write(buf)
		n += int64(len(buf))
	}
	b.HashSeqMiBPerSec = float64(n) / mib / time.Since(start).Seconds()

	rate := func(h hash.Hash) float64 {
		var n int64
		start := time.Now()
		for n == 0 || time.Since(start) < d {
			h.Write(buf)
			n += int64(len(buf))
		}
		return float64(n) / mib / time.Since(start).Seconds()
	}
	var wg sync.WaitGroup
	wg.Add(2)
	go func() { defer wg.Done(); b.SHA256MiBPerSec = rate(sha256.New()) }()
	go func() { defer wg.Done(); b.MD5MiBPerSec = rate(md5.New()) }()
	wg.Wait()
	b.HashParMiBPerSec = min(b.SHA256MiBPerSec, b.MD5MiBPerSec)
}

// quietLogger drops pebble's informational lines; errors still reach slog.
type quietLogger struct{}

func (quietLogger) Infof(string, ...any) {}
func (quietLogger) Errorf(format string, args ...any) {
	slog.Error("baseline pebble: " + fmt.Sprintf(format, args...))
}
func (quietLogger) Fatalf(format string, args ...any) {
	panic(fmt.Sprintf("baseline pebble: "+format, args...))
}

// measureGroupCommit has writers goroutines each commit small synced
// batches to a fresh pebble DB for d; concurrent commits share WAL fsyncs,
// which is the rate ringstore's index can reach at best.
func measureGroupCommit(ctx context.Context, b *Baseline, dir string, writers int, d time.Duration) error {
	tmp, err := os.MkdirTemp(dir, "ringstore-bench-pebble-")
	if err != nil {
		return fmt.Errorf("group commit: temp dir: %w", err)
	}
	defer os.RemoveAll(tmp)
	db, err := pebble.Open(tmp, &pebble.Options{Logger: quietLogger{}, FormatMajorVersion: pebble.FormatNewest})
	if err != nil {
		return fmt.Errorf("group commit: open pebble in %s: %w", tmp, err)
	}
	var commits atomic.Int64
	var firstErr atomic.Pointer[error]
	deadline := time.Now().Add(d)
	start := time.Now()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var key [16]byte
			val := make([]byte, 128)
			binary.BigEndian.PutUint64(key[:8], uint64(w))
			for i := uint64(0); ctx.Err() == nil && time.Now().Before(deadline); i++ {
				binary.BigEndian.PutUint64(key[8:], i)
				batch := db.NewBatch()
				_ = batch.Set(key[:], val, nil)
				if err := batch.Commit(pebble.Sync); err != nil {
					err = fmt.Errorf("group commit: %w", err)
					firstErr.CompareAndSwap(nil, &err)
					_ = batch.Close()
					return
				}
				_ = batch.Close()
				commits.Add(1)
			}
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	if err := db.Close(); err != nil {
		return fmt.Errorf("group commit: close pebble: %w", err)
	}
	if e := firstErr.Load(); e != nil {
		return *e
	}
	b.GroupCommitsPerSec = float64(commits.Load()) / elapsed.Seconds()
	b.GroupCommitWriters = writers
	b.GroupCommitDir = dir
	if b.GroupCommitDir == "" {
		b.GroupCommitDir = os.TempDir()
	}
	return nil
}

// measureBareHTTP serves 4 KiB GETs from memory on loopback (no auth, no
// storage) and drives them with the benchmark's own GET phase.
func measureBareHTTP(ctx context.Context, b *Baseline, cfg Config, creds auth.Credentials, d time.Duration) error {
	const size = 4 << 10
	body := make([]byte, size)
	_, _ = NewContent(1, "bare", size).Read(body)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return fmt.Errorf("bare server: listen: %w", err)
	}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Length", "4096")
			_, _ = w.Write(body)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go func() { _ = srv.Serve(ln) }()
	defer srv.Close()

	c, err := NewClient([]string{"http://" + ln.Addr().String()}, creds, cfg.Region, cfg.Concurrency)
	if err != nil {
		return fmt.Errorf("bare server: %w", err)
	}
	defer c.Close()
	p := &phase{
		c: c, mode: ModeGet, bucket: "bare", prefix: "bare/", size: size, seed: 1,
		set: newObjectSet("bare/", 1024), concurrency: cfg.Concurrency, duration: d,
	}
	pr := p.run(ctx, nil)
	g := pr.counts[OpGet]
	if g.errors > 0 {
		return fmt.Errorf("bare server: %d of %d GETs failed: %v", g.errors, g.errors+g.ops, pr.errors)
	}
	b.BareGetOpsPerSec = float64(g.ops) / pr.elapsed.Seconds()
	b.BareGetP99Ms = pr.latency[OpGet].P99
	b.BareGetClients = cfg.Concurrency
	return nil
}
