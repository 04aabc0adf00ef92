// Goal: every mode runs cleanly against a real ringstore: zero errors with
// every read verified, the operation counts the budget asked for, LIST
// walks that see exactly the pre-filled keys, requests spread over several
// endpoints, and nothing left behind afterwards (the run's own bucket is
// removed, a pre-existing one is emptied of the run's objects but kept).
// Method: wire an in-process server from ringstore's own packages exactly
// as cmd/ringstore/server.go does (pebble index in a temp dir, chunk store,
// SigV4 verifier, one-node ring), serve it with httptest, and call Run with
// small --ops budgets. No timing is asserted.
package bench

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/ringstore/ringstore/auth"
	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/gateway"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/ring"
)

const (
	e2eAccessKey = "BENCHTESTKEY"
	e2eSecretKey = "bench/test/secret+key"
)

// startRingstore returns the URLs of n httptest servers in front of one
// in-process ringstore node, with a counter of the requests each received.
func startRingstore(t *testing.T, n int) ([]string, []*atomic.Int64) {
	t.Helper()
	dir := t.TempDir()
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	store, err := index.OpenStore(filepath.Join(dir, "index"), index.StoreOptions{Logger: log})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if err := store.Close(); err != nil {
			t.Error(err)
		}
	})
	chunks, err := blobs.Open(filepath.Join(dir, "blobs"))
	if err != nil {
		t.Fatal(err)
	}
	nodeID := ring.NodeID("benchnode")
	layout := ring.SingleNode(nodeID, "127.0.0.1:0", ring.DefaultPartitions)
	rg, err := ring.NewRing(layout, ring.Assign(nil, layout))
	if err != nil {
		t.Fatal(err)
	}
	placement := index.RingPlacement(rg)
	ix := index.New(index.Config{
		Self:      string(nodeID),
		Placement: func() index.Placement { return placement },
		Store:     store,
		Clock:     index.NewClock(nil),
		N:         1,
		Logger:    log,
	})
	verifier := &auth.Verifier{
		Region: "us-east-1",
		Lookup: func(id string) (string, bool) {
			if id == e2eAccessKey {
				return e2eSecretKey, true
			}
			return "", false
		},
	}
	gw := gateway.New(gateway.Config{Region: "us-east-1", Index: ix, Chunks: blobs.NewReplicated(blobs.ReplicatedConfig{Self: string(nodeID), Local: chunks, Placement: func() blobs.Placement { return blobs.RingPlacement(rg) }}, nil), Auth: verifier, Logger: log})
	var urls []string
	var counts []*atomic.Int64
	for range n {
		var c atomic.Int64
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c.Add(1)
			gw.ServeHTTP(w, r)
		}))
		t.Cleanup(srv.Close)
		urls = append(urls, srv.URL)
		counts = append(counts, &c)
	}
	return urls, counts
}

func e2eConfig(urls []string, mode Mode) Config {
	return Config{
		Mode: mode, Endpoints: urls, AccessKey: e2eAccessKey, SecretKey: e2eSecretKey,
		ObjSize: 8 << 10, Concurrency: 4, Ops: 60, Objects: 24, ListMaxKeys: 5,
		VerifyFraction: 1, Seed: 7,
	}
}

func testClient(t *testing.T, urls []string) *Client {
	t.Helper()
	c, err := NewClient(urls, auth.Credentials{AccessKeyID: e2eAccessKey, SecretAccessKey: e2eSecretKey}, "us-east-1", 4)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(c.Close)
	return c
}

func runOK(t *testing.T, cfg Config) *Result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	res, err := Run(ctx, cfg)
	if err != nil {
		t.Fatalf("Run %s: %v", cfg.Mode, err)
	}
	if res.Errors() != 0 || res.CleanupError != "" {
		t.Fatalf("%s: %d errors %v, cleanup %q", cfg.Mode, res.Errors(), res.ErrorSamples, res.CleanupError)
	}
	return res
}

// bucketGone checks that the run removed its own bucket.
func bucketGone(t *testing.T, c *Client, bucket string) {
	t.Helper()
	err := c.DeleteBucket(context.Background(), bucket)
	var se *S3Error
	if !errors.As(err, &se) || se.Code != "NoSuchBucket" {
		t.Errorf("bucket %s after the run: DeleteBucket gave %v, want NoSuchBucket", bucket, err)
	}
}

func TestEndToEndModes(t *testing.T) {
	urls, _ := startRingstore(t, 1)
	c := testClient(t, urls)
	for _, tc := range []struct {
		mode Mode
		size int64
	}{
		{ModePut, 8 << 10},
		{ModeGet, 8 << 10},
		{ModeGet, 200 << 10}, // above the inline limit: chunked storage, many reads per body
		{ModeGet, 0},
		{ModeStat, 8 << 10},
		{ModeList, 1 << 10},
		{ModeDelete, 8 << 10},
	} {
		t.Run(string(tc.mode)+"-"+FormatSize(tc.size), func(t *testing.T) {
			cfg := e2eConfig(urls, tc.mode)
			cfg.ObjSize = tc.size
			if tc.mode == ModeDelete {
				cfg.Objects = int(cfg.Ops)
			}
			res := runOK(t, cfg)
			if len(res.Operations) != 1 {
				t.Fatalf("%d operation types reported, want 1", len(res.Operations))
			}
			o := res.Operations[0]
			if o.Ops != cfg.Ops || res.Total.Ops != cfg.Ops {
				t.Errorf("%s: %d operations, want %d", o.Op, o.Ops, cfg.Ops)
			}
			switch tc.mode {
			case ModePut, ModeGet:
				if o.Bytes != cfg.Ops*tc.size {
					t.Errorf("%s moved %d bytes, want %d", o.Op, o.Bytes, cfg.Ops*tc.size)
				}
			case ModeList:
				// 24 keys in pages of 5: a walk is four full pages and one
				// of 4 keys. However the 60 pages fall to the 4 workers, at
				// least 9 walks complete (each checked), and every page but
				// a walk's last holds 5 keys.
				if o.Verified < 9 || o.Keys != 5*o.Ops-o.Verified {
					t.Errorf("LIST: %d keys in %d pages with %d complete walks", o.Keys, o.Ops, o.Verified)
				}
			}
			if tc.mode == ModeGet && o.Verified != o.Ops {
				t.Errorf("GET: %d of %d reads verified with fraction 1", o.Verified, o.Ops)
			}
			if !o.Latency.Exact || o.Latency.P50 <= 0 || o.Latency.P999 < o.Latency.P50 {
				t.Errorf("latency summary %+v", o.Latency)
			}
			bucketGone(t, c, res.Params.Bucket)
		})
	}
}

// TestEndToEndSSEC runs GET and STAT with --sse SSE-C: every request of
// the run carries the run's key (the server refuses reads without it),
// and reads verify.
func TestEndToEndSSEC(t *testing.T) {
	urls, _ := startRingstore(t, 1)
	for _, mode := range []Mode{ModeGet, ModeStat} {
		cfg := e2eConfig(urls, mode)
		cfg.ObjSize, cfg.SSE = 200<<10, SSEC
		res := runOK(t, cfg)
		if o := res.Operations[0]; o.Ops != cfg.Ops || (mode == ModeGet && o.Verified != o.Ops) {
			t.Fatalf("%s with SSE-C: %+v", mode, o)
		}
	}
	cfg := e2eConfig(urls, ModeGet)
	cfg.SSE = "aws:kms"
	if _, err := Run(context.Background(), cfg); err == nil {
		t.Fatal("an unknown encryption mode ran")
	}
}

func TestEndToEndMixedRoundRobin(t *testing.T) {
	urls, counts := startRingstore(t, 2)
	cfg := e2eConfig(urls, ModeMixed)
	cfg.Ops = 400
	cfg.Objects = 40
	res := runOK(t, cfg)
	var sum int64
	for _, o := range res.Operations {
		if o.Ops == 0 {
			t.Errorf("MIXED issued no %s", o.Op)
		}
		sum += o.Ops
	}
	if sum != cfg.Ops || res.Total.Ops != cfg.Ops {
		t.Errorf("MIXED: %d operations (total row %d), want %d", sum, res.Total.Ops, cfg.Ops)
	}
	if g, _ := res.Op("GET"); g.Verified != g.Ops {
		t.Errorf("GET: %d of %d reads verified", g.Verified, g.Ops)
	}
	a, b := counts[0].Load(), counts[1].Load()
	if a == 0 || b == 0 || a-b > 2 || b-a > 2 {
		t.Errorf("requests per endpoint %d and %d, want an even round-robin split", a, b)
	}
	bucketGone(t, testClient(t, urls), res.Params.Bucket)
}

func TestEndToEndExistingBucketKept(t *testing.T) {
	urls, _ := startRingstore(t, 1)
	c := testClient(t, urls)
	ctx := context.Background()
	if err := c.CreateBucket(ctx, "mine"); err != nil {
		t.Fatal(err)
	}
	cfg := e2eConfig(urls, ModeGet)
	cfg.Bucket, cfg.Prefix = "mine", "team/"
	res := runOK(t, cfg)
	if res.Params.Bucket != "mine" || len(res.Params.Prefix) <= len("team/") {
		t.Fatalf("bucket %q prefix %q", res.Params.Bucket, res.Params.Prefix)
	}
	// The run's objects are gone, the bucket is not: it must now be empty
	// and deletable.
	var buf bytes.Buffer
	page, err := c.ListObjects(ctx, "mine", "", "", "", 1000, &buf)
	if err != nil || page.Keys != 0 {
		t.Fatalf("after the run: %d keys left, %v", page.Keys, err)
	}
	if err := c.DeleteBucket(ctx, "mine"); err != nil {
		t.Fatalf("pre-existing bucket was not kept: %v", err)
	}
}

func TestEndToEndBaseline(t *testing.T) {
	urls, _ := startRingstore(t, 1)
	cfg := e2eConfig(urls, ModeMixed)
	cfg.Baseline, cfg.BaselineDuration, cfg.BaselineDir = true, 300*time.Millisecond, t.TempDir()
	res := runOK(t, cfg)
	b := res.Baseline
	if b == nil || b.HashSeqMiBPerSec <= 0 || b.HashParMiBPerSec <= 0 || b.GroupCommitsPerSec <= 0 || b.BareGetOpsPerSec <= 0 {
		t.Fatalf("baseline not measured: %+v", b)
	}
	for _, o := range res.Operations {
		if len(o.VsBaseline) == 0 {
			t.Errorf("%s has no ratio to a baseline", o.Op)
		}
		for _, r := range o.VsBaseline {
			if r.LimitValue <= 0 || r.Ratio != r.Value/r.LimitValue {
				t.Errorf("%s ratio %+v", o.Op, r)
			}
		}
	}
	var sb strings.Builder
	if err := res.WriteText(&sb); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(sb.String(), "machine limits") || !strings.Contains(sb.String(), "VS BASELINE") {
		t.Errorf("text report lacks the baseline:\n%s", sb.String())
	}
	if err := res.WriteJSON(io.Discard); err != nil {
		t.Fatal(err)
	}
}
