package bench

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	mrand "math/rand/v2"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/ringstore/ringstore/auth"
)

// Op is an operation type.
type Op int

// Operation types, in the order results are reported.
const (
	OpPut Op = iota
	OpGet
	OpStat
	OpList
	OpDelete
	numOps
)

var opNames = [numOps]string{"PUT", "GET", "STAT", "LIST", "DELETE"}

func (o Op) String() string { return opNames[o] }

// Mode is a workload.
type Mode string

// The workloads.
const (
	ModePut    Mode = "put"
	ModeGet    Mode = "get"
	ModeStat   Mode = "stat"
	ModeList   Mode = "list"
	ModeDelete Mode = "delete"
	ModeMixed  Mode = "mixed"
)

// Modes lists every workload.
var Modes = []Mode{ModePut, ModeGet, ModeStat, ModeList, ModeDelete, ModeMixed}

// ParseMode reads a workload name.
func ParseMode(s string) (Mode, error) {
	for _, m := range Modes {
		if strings.EqualFold(s, string(m)) {
			return m, nil
		}
	}
	return "", fmt.Errorf("unknown mode %q: want one of put, get, stat, list, delete, mixed", s)
}

// ops returns the operation types a mode issues, in report order.
func (m Mode) ops() []Op {
	switch m {
	case ModePut:
		return []Op{OpPut}
	case ModeGet:
		return []Op{OpGet}
	case ModeStat:
		return []Op{OpStat}
	case ModeList:
		return []Op{OpList}
	case ModeDelete:
		return []Op{OpDelete}
	default:
		return mixedOps[:]
	}
}

// prefilled reports whether the mode works on pre-filled objects.
func (m Mode) prefilled() bool { return m != ModePut }

// Config is one benchmark run.
type Config struct {
	Mode      Mode
	Endpoints []string // base URLs; requests round-robin over them
	AccessKey string
	SecretKey string
	Region    string
	// Bucket is used (and created if missing) when set; empty means a
	// fresh random bucket that is removed afterwards.
	Bucket string
	// Prefix is prepended to this run's own prefix (a random run id and
	// "/"), under which every object of the run lives.
	Prefix      string
	ObjSize     int64
	Concurrency int
	// Duration and Ops bound the measured phase; whichever ends it first
	// wins. At least one must be set.
	Duration time.Duration
	Ops      int64
	// Objects is the pre-filled object count; 0 picks one (see
	// DefaultObjects).
	Objects        int
	ListMaxKeys    int
	VerifyFraction float64
	// Seed drives content and operation choice; 0 means random.
	Seed uint64
	Keep bool
	// SSE is the server-side encryption objects are written and read
	// with: SSENone, SSES3 or SSEC.
	SSE string

	Baseline    bool
	BaselineDir string // where pebble's temp DB goes; "" means os.TempDir
	// BaselineDuration is the time given to the group-commit and bare
	// server measurements (the hash ones get a third each); 0 means 3 s.
	BaselineDuration time.Duration

	Progress io.Writer // live progress line, nil for none
	Logger   *slog.Logger
}

// DefaultObjects is the pre-fill count used when Config.Objects is 0:
// 2500 objects (warp's default), fewer when that would exceed 1 GiB, but
// never fewer than two per worker so MIXED can always lease a free one; a
// DELETE run bounded by Ops gets at least Ops objects.
func DefaultObjects(mode Mode, size int64, concurrency int, ops int64) int {
	n := int64(2500)
	if size > 0 {
		n = min(n, (1<<30)/size)
	}
	n = max(n, int64(2*concurrency))
	if mode == ModeDelete && ops > n {
		n = ops
	}
	return int(n)
}

func (c *Config) check() error {
	if _, err := ParseMode(string(c.Mode)); err != nil {
		return err
	}
	if len(c.Endpoints) == 0 {
		return errors.New("no endpoint given")
	}
	if c.AccessKey == "" || c.SecretKey == "" {
		return errors.New("no credentials: set --access-key and --secret-key (or AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY)")
	}
	if c.ObjSize < 0 {
		return errors.New("object size must not be negative")
	}
	if c.Concurrency < 1 {
		return errors.New("concurrency must be at least 1")
	}
	if c.SSE != SSENone && c.SSE != SSES3 && c.SSE != SSEC {
		return fmt.Errorf("server-side encryption %q: want %q, %q or none", c.SSE, SSES3, SSEC)
	}
	if c.Duration <= 0 && c.Ops <= 0 {
		return errors.New("set a duration or an operation count")
	}
	if c.VerifyFraction < 0 || c.VerifyFraction > 1 {
		return errors.New("verify fraction must be within [0, 1]")
	}
	if c.ListMaxKeys < 1 || c.ListMaxKeys > 1000 {
		return errors.New("list max keys must be within [1, 1000]")
	}
	if c.Objects < 0 {
		return errors.New("object count must not be negative")
	}
	return nil
}

// opCounts are one worker's (or the merged) counts for one operation type.
type opCounts struct {
	ops, bytes, errors, verifyErrors, verified, keys int64
}

func (a *opCounts) add(b opCounts) {
	a.ops += b.ops
	a.bytes += b.bytes
	a.errors += b.errors
	a.verifyErrors += b.verifyErrors
	a.verified += b.verified
	a.keys += b.keys
}

// liveCounters feed the progress line; workers add to them after every
// operation.
type liveCounters struct {
	ops, bytes, errors atomic.Int64
}

// listWalk is one worker's position in a full listing of the prefix.
type listWalk struct {
	token, last string
	seen        int
}

type worker struct {
	rng     *mrand.Rand
	counts  [numOps]opCounts
	rec     [numOps]recorder
	buf     []byte
	ver     *Verifier
	listBuf bytes.Buffer
	walk    listWalk
}

// phase is one measured workload: the benchmark itself, or the bare-server
// baseline, which reuses it so both are driven by the same code.
type phase struct {
	c              *Client
	mode           Mode
	bucket, prefix string
	size           int64
	seed           uint64
	set            *objectSet
	verifyFraction float64
	listMaxKeys    int
	concurrency    int
	duration       time.Duration
	opsLimit       int64

	stop    atomic.Bool
	issued  atomic.Int64
	cursor  atomic.Int64 // next new key (PUT), next key to delete (DELETE)
	ranOut  atomic.Bool
	live    liveCounters
	workers []*worker

	errMu      sync.Mutex
	errSamples []string
	errMore    int
}

// phaseResult is what a phase measured.
type phaseResult struct {
	elapsed time.Duration
	counts  [numOps]opCounts
	latency [numOps]LatencySummary
	all     LatencySummary // every operation type together
	errors  []string
	ranOut  bool
}

const maxErrorSamples = 10

func (p *phase) noteError(err error) {
	p.errMu.Lock()
	defer p.errMu.Unlock()
	if len(p.errSamples) < maxErrorSamples {
		p.errSamples = append(p.errSamples, err.Error())
	} else {
		p.errMore++
	}
}

// run drives the phase's workers until the duration or operation budget is
// spent (or ctx ends), then merges what they measured.
func (p *phase) run(ctx context.Context, progress io.Writer) phaseResult {
	p.workers = make([]*worker, p.concurrency)
	limit := max(sampleBudget/p.concurrency, 1024)
	bufSize := 64 << 10
	for i := range p.workers {
		w := &worker{
			rng: mrand.New(mrand.NewPCG(p.seed, uint64(i)+1)),
			buf: make([]byte, bufSize),
			ver: NewVerifier(bufSize),
		}
		for op := range w.rec {
			w.rec[op].limit = limit
		}
		p.workers[i] = w
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	stopWatch := context.AfterFunc(ctx, func() { p.stop.Store(true) })
	defer stopWatch()
	if p.duration > 0 {
		t := time.AfterFunc(p.duration, func() { p.stop.Store(true) })
		defer t.Stop()
	}
	start := time.Now()
	progressDone := make(chan struct{})
	var progressWG sync.WaitGroup
	if progress != nil {
		progressWG.Add(1)
		go func() {
			defer progressWG.Done()
			p.showProgress(progress, start, progressDone)
		}()
	}
	var wg sync.WaitGroup
	for _, w := range p.workers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			p.work(ctx, w)
		}()
	}
	wg.Wait()
	elapsed := time.Since(start)
	close(progressDone)
	progressWG.Wait()

	res := phaseResult{elapsed: elapsed, ranOut: p.ranOut.Load()}
	var all []*recorder
	for op := range numOps {
		rs := make([]*recorder, 0, len(p.workers))
		for _, w := range p.workers {
			res.counts[op].add(w.counts[op])
			rs = append(rs, &w.rec[op])
		}
		res.latency[op] = summarize(rs)
		all = append(all, rs...)
	}
	res.all = summarize(all)
	res.errors = p.errSamples
	if p.errMore > 0 {
		res.errors = append(res.errors, fmt.Sprintf("... and %d more errors", p.errMore))
	}
	return res
}

func (p *phase) showProgress(out io.Writer, start time.Time, done <-chan struct{}) {
	tick := time.NewTicker(time.Second)
	defer tick.Stop()
	var lastOps, lastBytes int64
	last := start
	for {
		select {
		case <-done:
			fmt.Fprint(out, "\r\x1b[K")
			return
		case now := <-tick.C:
			ops, b, errs := p.live.ops.Load(), p.live.bytes.Load(), p.live.errors.Load()
			dt := now.Sub(last).Seconds()
			fmt.Fprintf(out, "\r\x1b[K%6.0fs  %10d ops  %10.1f ops/s  %9.2f MiB/s  %d errors",
				now.Sub(start).Seconds(), ops, float64(ops-lastOps)/dt, float64(b-lastBytes)/dt/(1<<20), errs)
			lastOps, lastBytes, last = ops, b, now
		}
	}
}

func (p *phase) work(ctx context.Context, w *worker) {
	for !p.stop.Load() {
		if p.opsLimit > 0 && p.issued.Add(1) > p.opsLimit {
			return
		}
		switch p.mode {
		case ModePut:
			i := p.cursor.Add(1) - 1
			p.put(ctx, w, keyName(p.prefix, i))
		case ModeGet:
			p.get(ctx, w, p.set.keys[w.rng.IntN(len(p.set.keys))])
		case ModeStat:
			p.stat(ctx, w, p.set.keys[w.rng.IntN(len(p.set.keys))])
		case ModeList:
			p.list(ctx, w)
		case ModeDelete:
			i := p.cursor.Add(1) - 1
			if i >= int64(len(p.set.keys)) {
				p.ranOut.Store(true)
				p.stop.Store(true)
				return
			}
			p.del(ctx, w, p.set.keys[i])
		case ModeMixed:
			p.mixed(ctx, w)
		}
	}
}

// mixed runs one MIXED operation on a leased slot. If the drawn type finds
// no slot it can work on (all leased or deleted), it draws again, so the
// operation budget is spent on operations that happen.
func (p *phase) mixed(ctx context.Context, w *worker) {
	for !p.stop.Load() {
		op := pickMixed(w.rng)
		if op == OpPut {
			// Re-create a deleted object first, else overwrite one (with
			// the same bytes: content depends only on key and size).
			i, recreate := p.set.leaseAbsent(), true
			if i < 0 {
				i, recreate = p.set.leasePresent(w.rng), false
			}
			if i < 0 {
				runtime.Gosched()
				continue
			}
			ok := p.put(ctx, w, p.set.keys[i])
			// A failed re-creation goes back to the absent stack (if it
			// did store the object, the next PUT merely overwrites it); a
			// failed overwrite leaves the old object in place.
			p.set.release(i, ok || !recreate)
			return
		}
		i := p.set.leasePresent(w.rng)
		if i < 0 {
			runtime.Gosched()
			continue
		}
		key := p.set.keys[i]
		switch op {
		case OpGet:
			p.get(ctx, w, key)
			p.set.release(i, true)
		case OpStat:
			p.stat(ctx, w, key)
			p.set.release(i, true)
		case OpDelete:
			ok := p.del(ctx, w, key)
			p.set.release(i, !ok)
		}
		return
	}
}

// finish records one operation's outcome. Operations cut short because
// the run was interrupted are not counted at all.
func (p *phase) finish(ctx context.Context, w *worker, op Op, start time.Time, n int64, verified bool, err error) bool {
	lat := time.Since(start)
	c := &w.counts[op]
	if err != nil {
		if ctx.Err() != nil {
			return false
		}
		c.errors++
		if errors.Is(err, ErrVerify) {
			c.verifyErrors++
			if verified {
				c.verified++
			}
		}
		p.live.errors.Add(1)
		p.noteError(err)
		return false
	}
	c.ops++
	c.bytes += n
	if verified {
		c.verified++
	}
	w.rec[op].add(lat)
	p.live.ops.Add(1)
	p.live.bytes.Add(n)
	return true
}

func (p *phase) put(ctx context.Context, w *worker, key string) bool {
	body := NewContent(p.seed, key, p.size)
	start := time.Now()
	err := p.c.PutObject(ctx, p.bucket, key, body, p.size)
	return p.finish(ctx, w, OpPut, start, p.size, false, err)
}

func (p *phase) get(ctx context.Context, w *worker, key string) bool {
	var v *Verifier
	if p.verifyFraction > 0 && (p.verifyFraction >= 1 || w.rng.Float64() < p.verifyFraction) {
		v = w.ver
		v.Reset(p.seed, key, p.size)
	}
	start := time.Now()
	n, err := p.c.GetObject(ctx, p.bucket, key, p.size, w.buf, v)
	return p.finish(ctx, w, OpGet, start, n, v != nil, err)
}

func (p *phase) stat(ctx context.Context, w *worker, key string) bool {
	start := time.Now()
	n, err := p.c.HeadObject(ctx, p.bucket, key)
	if err == nil && n != p.size {
		err = fmt.Errorf("HEAD /%s/%s: %w: Content-Length %d, want %d", p.bucket, key, ErrVerify, n, p.size)
	}
	return p.finish(ctx, w, OpStat, start, 0, false, err)
}

func (p *phase) del(ctx context.Context, w *worker, key string) bool {
	start := time.Now()
	err := p.c.DeleteObject(ctx, p.bucket, key)
	return p.finish(ctx, w, OpDelete, start, 0, false, err)
}

// list fetches the next page of this worker's walk over the prefix. When a
// walk completes it must have seen exactly the pre-filled objects (the
// order and prefix of every key are checked page by page as well).
func (p *phase) list(ctx context.Context, w *worker) bool {
	start := time.Now()
	page, err := p.c.ListObjects(ctx, p.bucket, p.prefix, w.walk.token, w.walk.last, p.listMaxKeys, &w.listBuf)
	if err != nil {
		w.walk = listWalk{}
		return p.finish(ctx, w, OpList, start, 0, false, err)
	}
	w.walk.seen += page.Keys
	if page.Truncated {
		w.walk.token, w.walk.last = page.NextToken, page.LastKey
	} else {
		seen := w.walk.seen
		w.walk = listWalk{}
		if seen != len(p.set.keys) {
			err = fmt.Errorf("list /%s prefix %q: %w: a full walk saw %d keys, want %d", p.bucket, p.prefix, ErrVerify, seen, len(p.set.keys))
			return p.finish(ctx, w, OpList, start, 0, true, err)
		}
	}
	if p.finish(ctx, w, OpList, start, 0, !page.Truncated, nil) {
		w.counts[OpList].keys += int64(page.Keys)
		return true
	}
	return false
}

// Run executes one benchmark: baseline (if asked), bucket, pre-fill,
// measured phase, cleanup.
func Run(ctx context.Context, cfg Config) (*Result, error) {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.ListMaxKeys == 0 {
		cfg.ListMaxKeys = 1000
	}
	if err := cfg.check(); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if cfg.Seed == 0 {
		var b [8]byte
		_, _ = rand.Read(b[:])
		cfg.Seed = binary.LittleEndian.Uint64(b[:]) | 1
	}
	if cfg.Objects == 0 {
		cfg.Objects = DefaultObjects(cfg.Mode, cfg.ObjSize, cfg.Concurrency, cfg.Ops)
	}
	if cfg.Mode == ModeMixed && cfg.Objects < 2*cfg.Concurrency {
		log.Warn("raising --objects so every MIXED worker can lease an object", "objects", 2*cfg.Concurrency)
		cfg.Objects = 2 * cfg.Concurrency
	}
	if cfg.Mode == ModeDelete && cfg.Ops > int64(cfg.Objects) {
		log.Warn("fewer objects than DELETE operations: the run ends when they run out", "objects", cfg.Objects, "ops", cfg.Ops)
	}
	creds := auth.Credentials{AccessKeyID: cfg.AccessKey, SecretAccessKey: cfg.SecretKey}

	res := newResult(cfg)
	if cfg.Baseline {
		b, err := measureBaseline(ctx, cfg, creds, log)
		if err != nil {
			return nil, fmt.Errorf("bench: baseline: %w", err)
		}
		res.Baseline = b
	}

	c, err := NewClient(cfg.Endpoints, creds, cfg.Region, cfg.Concurrency)
	if err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}
	defer c.Close()
	if err := c.SetSSE(cfg.SSE); err != nil {
		return nil, fmt.Errorf("bench: %w", err)
	}

	owned, err := ensureBucket(ctx, c, &cfg, log)
	if err != nil {
		return nil, err
	}
	res.Params.Bucket = cfg.Bucket
	prefix := cfg.Prefix + randomHex(4) + "/"
	res.Params.Prefix = prefix

	// Cleanup runs whatever happens next, on its own context: an
	// interrupted run must still leave the endpoint as it found it.
	defer func() {
		if cfg.Keep {
			log.Info("keeping benchmark objects", "bucket", cfg.Bucket, "prefix", prefix)
			return
		}
		cctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 10*time.Minute)
		defer cancel()
		if err := cleanup(cctx, c, cfg.Bucket, prefix, owned, max(cfg.Concurrency, 4), log); err != nil {
			log.Error("cleanup incomplete", "bucket", cfg.Bucket, "prefix", prefix, "err", err)
			res.CleanupError = err.Error()
		}
	}()

	p := &phase{
		c: c, mode: cfg.Mode, bucket: cfg.Bucket, prefix: prefix, size: cfg.ObjSize, seed: cfg.Seed,
		verifyFraction: cfg.VerifyFraction, listMaxKeys: cfg.ListMaxKeys, concurrency: cfg.Concurrency,
		duration: cfg.Duration, opsLimit: cfg.Ops,
	}
	if cfg.Mode.prefilled() {
		p.set = newObjectSet(prefix, cfg.Objects)
		if err := prefill(ctx, c, cfg.Bucket, p.set.keys, cfg.ObjSize, cfg.Seed, cfg.Concurrency, log); err != nil {
			return nil, err
		}
	}
	log.Info("running", "mode", cfg.Mode, "concurrency", cfg.Concurrency, "duration", cfg.Duration, "ops", cfg.Ops)
	pr := p.run(ctx, cfg.Progress)
	if err := ctx.Err(); err != nil {
		log.Warn("interrupted: reporting what was measured", "err", err)
		res.Interrupted = true
	}
	res.fill(cfg, pr)
	return res, nil
}

// ensureBucket creates the run's bucket. A fresh random bucket is owned by
// the run and removed afterwards; a named one that already exists is used
// as it is and kept.
func ensureBucket(ctx context.Context, c *Client, cfg *Config, log *slog.Logger) (owned bool, err error) {
	if cfg.Bucket == "" {
		cfg.Bucket = "ringstore-bench-" + randomHex(4)
	}
	err = c.CreateBucket(ctx, cfg.Bucket)
	var se *S3Error
	switch {
	case err == nil:
		log.Info("created bucket", "bucket", cfg.Bucket)
		return true, nil
	case errors.As(err, &se) && se.Code == "BucketAlreadyOwnedByYou":
		log.Info("using existing bucket", "bucket", cfg.Bucket)
		return false, nil
	default:
		return false, fmt.Errorf("bench: create bucket %s: %w", cfg.Bucket, err)
	}
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// prefill uploads keys with at most parallel requests in flight. Each
// object gets a few attempts; one that keeps failing aborts the run, as
// the measured phase would otherwise count the gap against the server.
func prefill(ctx context.Context, c *Client, bucket string, keys []string, size int64, seed uint64, parallel int, log *slog.Logger) error {
	log.Info("pre-filling", "objects", len(keys), "size", FormatSize(size))
	start := time.Now()
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next, done atomic.Int64
	var wg sync.WaitGroup
	for range min(parallel, len(keys)) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := next.Add(1) - 1
				if i >= int64(len(keys)) {
					return
				}
				var err error
				for attempt := range 3 {
					if attempt > 0 {
						time.Sleep(time.Duration(attempt) * 100 * time.Millisecond)
					}
					if err = c.PutObject(ctx, bucket, keys[i], NewContent(seed, keys[i], size), size); err == nil || ctx.Err() != nil {
						break
					}
				}
				if err != nil {
					cancel(fmt.Errorf("bench: pre-fill %s: %w", keys[i], err))
					return
				}
				if d := done.Add(1); d%1000 == 0 {
					log.Debug("pre-fill progress", "done", d, "of", len(keys))
				}
			}
		}()
	}
	wg.Wait()
	if err := context.Cause(ctx); err != nil {
		return err
	}
	log.Info("pre-filled", "objects", len(keys), "took", time.Since(start).Round(time.Millisecond))
	return nil
}

// cleanup deletes every object under prefix with DeleteObjects batches of
// up to 1000 keys (parallel batches in flight, while the listing goes on)
// and then the bucket, if the run created it.
func cleanup(ctx context.Context, c *Client, bucket, prefix string, removeBucket bool, parallel int, log *slog.Logger) error {
	start := time.Now()
	batches := make(chan []string, parallel)
	var deleted atomic.Int64
	var errMu sync.Mutex
	var firstErr error
	setErr := func(err error) {
		errMu.Lock()
		if firstErr == nil {
			firstErr = err
		}
		errMu.Unlock()
	}
	var wg sync.WaitGroup
	for range parallel {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for keys := range batches {
				failed, err := c.DeleteObjects(ctx, bucket, keys)
				deleted.Add(int64(len(keys) - failed))
				if err != nil {
					setErr(err)
				}
			}
		}()
	}
	var buf bytes.Buffer
	token, after := "", ""
	var listErr error
	for {
		var keys []string
		page, err := c.listPage(ctx, bucket, prefix, token, after, 1000, &buf, func(k []byte) { keys = append(keys, string(k)) })
		if err != nil {
			listErr = fmt.Errorf("list for cleanup: %w", err)
			break
		}
		if len(keys) > 0 {
			batches <- keys
		}
		if !page.Truncated {
			break
		}
		token, after = page.NextToken, page.LastKey
	}
	close(batches)
	wg.Wait()
	if listErr != nil {
		setErr(listErr)
	}
	if firstErr != nil {
		return firstErr
	}
	log.Info("deleted benchmark objects", "objects", deleted.Load(), "took", time.Since(start).Round(time.Millisecond))
	if removeBucket {
		if err := c.DeleteBucket(ctx, bucket); err != nil {
			return fmt.Errorf("delete bucket: %w", err)
		}
		log.Info("deleted bucket", "bucket", bucket)
	}
	return nil
}
