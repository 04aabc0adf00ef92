package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"runtime/pprof"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/ringstore/ringstore/internal/bench"
)

type benchOptions struct {
	endpoints               []string
	accessKey, secretKey    string
	region, bucket, prefix  string
	objSize                 string
	concurrency             int
	duration                time.Duration
	ops                     int64
	objects, listMaxKeys    int
	verifyFraction          float64
	seed                    uint64
	jsonOut, keep, baseline bool
	baselineDir, logLevel   string
	baselineDuration        time.Duration
	cpuProfile              string
	sse                     string
}

func benchCmd() *cobra.Command {
	var o benchOptions
	cmd := &cobra.Command{
		Use:   "bench [flags] put|get|stat|list|delete|mixed",
		Short: "Load-test an S3 endpoint (warp-style PUT, GET, STAT, LIST, DELETE, MIXED)",
		Long: `Load-test an S3 endpoint. The run creates its own bucket (or uses --bucket),
pre-fills objects for GET, STAT, LIST, DELETE and MIXED, measures for
--duration or --ops operations, prints one row per operation type and
cleans up. MIXED is 45% GET, 30% STAT, 15% PUT, 10% DELETE; deleted objects
are re-created so the set stays populated.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			// --ops alone bounds the run by count only; given both, whichever
			// ends first wins.
			if o.ops > 0 && !cmd.Flags().Changed("duration") {
				o.duration = 0
			}
			return runBench(cmd.Context(), o, args[0])
		},
	}
	f := cmd.Flags()
	f.StringSliceVar(&o.endpoints, "endpoint", []string{"http://127.0.0.1:9000"}, "S3 endpoint URL; repeat or comma-separate to round-robin requests over several")
	f.StringVar(&o.accessKey, "access-key", firstEnv("AWS_ACCESS_KEY_ID", "RINGSTORE_ACCESS_KEY_ID"), "access key id [AWS_ACCESS_KEY_ID, RINGSTORE_ACCESS_KEY_ID]")
	f.Var(secretDefault(&o.secretKey, firstEnv("AWS_SECRET_ACCESS_KEY", "RINGSTORE_SECRET_ACCESS_KEY")), "secret-key", "secret access key [AWS_SECRET_ACCESS_KEY, RINGSTORE_SECRET_ACCESS_KEY]")
	f.StringVar(&o.region, "region", "us-east-1", "region to sign for")
	f.StringVar(&o.bucket, "bucket", "", "bucket to use: an existing one is kept, one the run creates is removed (default: a fresh ringstore-bench-xxxxxxxx)")
	f.StringVar(&o.prefix, "prefix", "", "key prefix; the run adds a random run id and '/' after it")
	f.StringVar(&o.objSize, "obj-size", "4KiB", "object size (e.g. 4KiB, 64KiB, 1MiB, 64MiB)")
	f.IntVar(&o.concurrency, "concurrency", 32, "concurrent client workers")
	f.DurationVar(&o.duration, "duration", 30*time.Second, "measured phase length (not applied when --ops is given without it)")
	f.Int64Var(&o.ops, "ops", 0, "stop after this many operations")
	f.IntVar(&o.objects, "objects", 0, "objects pre-filled for get, stat, list, delete, mixed (0: 2500, capped at 1 GiB total, at least 2 per worker)")
	f.IntVar(&o.listMaxKeys, "list-max-keys", 1000, "page size of LIST operations")
	f.Float64Var(&o.verifyFraction, "verify-fraction", 0.05, "fraction of GETs whose bytes are checked against what was written")
	f.Uint64Var(&o.seed, "seed", 0, "seed of object content and operation choice (0: random)")
	f.BoolVar(&o.jsonOut, "json", false, "print one JSON document instead of the table")
	f.BoolVar(&o.keep, "keep", false, "leave the objects and bucket in place")
	f.BoolVar(&o.baseline, "baseline", false, "also measure this machine's limits (hashing, pebble group commit, bare HTTP) and report ratios")
	f.StringVar(&o.baselineDir, "baseline-dir", "", "directory for the group-commit test DB; put it on the server's data disk (default: system temp dir)")
	f.DurationVar(&o.baselineDuration, "baseline-duration", 3*time.Second, "time for each of the group-commit and bare-HTTP baselines")
	f.StringVar(&o.logLevel, "log-level", "info", "debug, info, warn or error (logs go to stderr)")
	f.StringVar(&o.sse, "sse", "", "server-side encryption of the objects: AES256 (SSE-S3) or SSE-C (one random customer key for the run); default none")
	f.StringVar(&o.cpuProfile, "cpuprofile", "", "write a CPU profile of this client (the whole run) to this file, to tell its cost from the server's")
	return cmd
}

func runBench(ctx context.Context, o benchOptions, modeArg string) error {
	mode, err := bench.ParseMode(modeArg)
	if err != nil {
		return err
	}
	size, err := bench.ParseSize(o.objSize)
	if err != nil {
		return fmt.Errorf("--obj-size: %w", err)
	}
	endpoints, err := bench.ParseEndpoints(o.endpoints)
	if err != nil {
		return fmt.Errorf("--endpoint: %w", err)
	}
	log, err := newLogger(o.logLevel)
	if err != nil {
		return err
	}
	cfg := bench.Config{
		Mode: mode, Endpoints: endpoints, AccessKey: o.accessKey, SecretKey: o.secretKey,
		Region: o.region, Bucket: o.bucket, Prefix: o.prefix, ObjSize: size,
		Concurrency: o.concurrency, Duration: o.duration, Ops: o.ops, Objects: o.objects, ListMaxKeys: o.listMaxKeys,
		VerifyFraction: o.verifyFraction, Seed: o.seed, Keep: o.keep, SSE: o.sse,
		Baseline: o.baseline, BaselineDir: o.baselineDir, BaselineDuration: o.baselineDuration,
		Logger: log,
	}
	if !o.jsonOut && isTerminal(os.Stderr) {
		cfg.Progress = os.Stderr
	}
	ctx, stop := signal.NotifyContext(ctx, os.Interrupt, syscall.SIGTERM)
	defer stop()
	if o.cpuProfile != "" {
		pf, err := os.Create(o.cpuProfile)
		if err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pf.Close()
		if err := pprof.StartCPUProfile(pf); err != nil {
			return fmt.Errorf("--cpuprofile: %w", err)
		}
		defer pprof.StopCPUProfile()
	}
	res, err := bench.Run(ctx, cfg)
	if err != nil {
		return err
	}
	if o.jsonOut {
		return res.WriteJSON(os.Stdout)
	}
	return res.WriteText(os.Stdout)
}

func firstEnv(names ...string) string {
	for _, n := range names {
		if v := os.Getenv(n); v != "" {
			return v
		}
	}
	return ""
}

func isTerminal(f *os.File) bool {
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}
