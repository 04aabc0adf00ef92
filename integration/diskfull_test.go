// diskfull_test.go: a full disk is an error, not a wedge.
//
// Goal: a node whose disk fills answers writes with 507
// InsufficientStorage and a message that says the disk is full, keeps
// serving reads, and takes writes again by itself once space returns,
// without a restart; nothing it acknowledged is lost. Below its
// --min-free floor it refuses new data before the disk is full, while
// deletes go on and free space (garbage collection reclaims their
// chunks). With the floor off and the disk filled from outside, the
// chunk directory and the index's log meet a real ENOSPC: the node must
// still answer, neither crash nor hang, and recover when the space comes
// back.
//
// Method: the server's data directory is on a small tmpfs of the test's
// own (skipped, saying why, where mounting is not permitted); the
// test writes until refused, reads everything back byte for byte, frees
// space, and writes again. A filler file the test writes into the tmpfs
// stands for another process eating the disk.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/ringstore/ringstore/internal/tmpfs"
)

// answerWithin is do that fails the test if the server does not answer
// within a minute: a node that hangs, not a slow one.
func (s *Server) answerWithin(t *testing.T, q rawReq) rawResp {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	r := s.newRaw(t, q).WithContext(ctx)
	resp, err := rawClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s/%s: no answer (%v); the node hangs or crashed (running: %v)", q.Method, q.Bucket, q.Key, err, s.running())
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s/%s: reading the answer: %v", q.Method, q.Bucket, q.Key, err)
	}
	return rawResp{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// diskFull checks a refusal for lack of space: 507 InsufficientStorage
// whose message says the disk is full and contains want.
func diskFull(t *testing.T, what string, r rawResp, want string) {
	t.Helper()
	e := r.errorDoc()
	if r.Status != 507 || e.Code != "InsufficientStorage" || !strings.Contains(e.Message, "disk") || !strings.Contains(e.Message, want) {
		t.Fatalf("%s: %s; want 507 InsufficientStorage saying %q", what, r, want)
	}
}

// objects is what the node acknowledged: key to body.
type objects map[string][]byte

func (o objects) checkAll(t *testing.T, s *Server, bucket, when string) {
	t.Helper()
	for k, body := range o {
		r := s.answerWithin(t, rawReq{Method: "GET", Bucket: bucket, Key: k})
		if r.Status != 200 || !bytes.Equal(r.Body, body) {
			t.Fatalf("%s: GET of acknowledged %s: %d, %d bytes (want %d)", when, k, r.Status, len(r.Body), len(body))
		}
	}
}

func metricValue(t *testing.T, addr, name string) string {
	t.Helper()
	resp, err := http.Get("http://" + addr + "/metrics")
	if err != nil {
		t.Fatalf("metrics: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	for _, l := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(l, name+" "); ok {
			return v
		}
	}
	t.Fatalf("metrics lack %s", name)
	return ""
}

// diskServer starts a server whose data directory is on a fresh tmpfs of
// size bytes and returns it with the tmpfs's path.
func diskServer(t *testing.T, size int64, env ...string) (*Server, string) {
	t.Helper()
	mnt := tmpfs.Mount(t, size)
	// The index's memtables, and so its log files, stay small beside the
	// tmpfs.
	env = append(env, "RINGSTORE_INDEX_MEMORY=16MiB")
	return startServer(t, ServerOptions{DataDir: filepath.Join(mnt, "data"), LogLevel: "info", Env: env}), mnt
}

// TestDiskFloor: below --min-free new data is refused with 507, reads and
// deletes go on, and writes come back once garbage collection has freed
// the deleted objects' chunks.
func TestDiskFloor(t *testing.T) {
	t.Parallel()
	metrics := "127.0.0.1:" + freePort(t)
	srv, _ := diskServer(t, 64<<20, "RINGSTORE_MIN_FREE=16MiB", "RINGSTORE_METRICS_ADDR="+metrics,
		"RINGSTORE_GC_INTERVAL=1s", "RINGSTORE_GC_GRACE=3s")
	b := bucketName(t)
	srv.mustCreateBucket(t, b)

	acked := objects{}
	var refused rawResp
	for i := 0; i < 1000 && refused.Status == 0; i++ {
		k, body := fmt.Sprintf("obj-%04d", i), randomBytes(256<<10)
		r := srv.answerWithin(t, rawReq{Method: "PUT", Bucket: b, Key: k, Body: body})
		switch r.Status {
		case 200:
			acked[k] = body
		default:
			refused = r
		}
	}
	if len(acked) == 0 {
		t.Fatalf("the first PUT was refused: %s", refused)
	}
	diskFull(t, fmt.Sprintf("PUT after %d acknowledged", len(acked)), refused, "--min-free")
	diskFull(t, "small PUT below the floor", srv.answerWithin(t, rawReq{Method: "PUT", Bucket: b, Key: "small", Body: []byte("x")}), "--min-free")
	diskFull(t, "create bucket below the floor", srv.answerWithin(t, rawReq{Method: "PUT", Bucket: b + "-2"}), "--min-free")
	if v := metricValue(t, metrics, "ringstore_disk_below_floor"); v != "1" {
		t.Fatalf("ringstore_disk_below_floor = %s while refusing; want 1", v)
	}
	t.Logf("%d objects of 256 KiB acknowledged before the floor", len(acked))
	acked.checkAll(t, srv, b, "below the floor")

	// Deletes go on, and free space once collected.
	deleted := 0
	for k := range acked {
		if deleted >= len(acked)/2 {
			break
		}
		if r := srv.answerWithin(t, rawReq{Method: "DELETE", Bucket: b, Key: k}); r.Status != 204 {
			t.Fatalf("DELETE below the floor: %s", r)
		}
		delete(acked, k)
		deleted++
	}
	body := randomBytes(256 << 10)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := srv.answerWithin(t, rawReq{Method: "PUT", Bucket: b, Key: "after", Body: body})
		if r.Status == 200 {
			acked["after"] = body
			break
		}
		diskFull(t, "PUT while garbage collection frees space", r, "--min-free")
		if time.Now().After(deadline) {
			t.Fatalf("writes did not resume after %d deletes and garbage collection", deleted)
		}
		time.Sleep(500 * time.Millisecond)
	}
	if v := metricValue(t, metrics, "ringstore_disk_below_floor"); v != "0" {
		t.Fatalf("ringstore_disk_below_floor = %s after writes resumed; want 0", v)
	}
	acked.checkAll(t, srv, b, "after writes resumed")
	srv.Restart()
	acked.checkAll(t, srv, b, "after a restart")
}

// TestDiskFilledFromOutside: with no floor, a filler file takes every
// byte of the disk. Chunk writes and the index's log then meet ENOSPC:
// the node answers 507 and serves reads, and writes work again, without
// a restart, once the filler is gone; nothing acknowledged is lost.
func TestDiskFilledFromOutside(t *testing.T) {
	t.Parallel()
	srv, mnt := diskServer(t, 48<<20, "RINGSTORE_MIN_FREE=0")
	b := bucketName(t)
	srv.mustCreateBucket(t, b)
	acked := objects{}
	for i := range 8 {
		for _, size := range []int{4 << 10, 256 << 10} {
			k, body := fmt.Sprintf("before-%d-%d", size, i), randomBytes(size)
			srv.mustPut(t, b, k, body)
			acked[k] = body
		}
	}

	filler := filepath.Join(mnt, "filler")
	t.Logf("filler: %d MiB", tmpfs.Fill(t, filler)>>20)

	// A chunk write meets ENOSPC at once.
	diskFull(t, "chunked PUT on a full disk", srv.answerWithin(t, rawReq{Method: "PUT", Bucket: b, Key: "chunked", Body: randomBytes(256 << 10)}), "full")
	// Inline objects go to the index's log, which has room for a while
	// (its files are allocated ahead); then its flushes, or the log
	// itself, meet the full disk.
	var refused rawResp
	for i := 0; i < 5000 && refused.Status == 0; i++ {
		k, body := fmt.Sprintf("inline-%04d", i), randomBytes(32<<10)
		r := srv.answerWithin(t, rawReq{Method: "PUT", Bucket: b, Key: k, Body: body})
		if r.Status == 200 {
			acked[k] = body
		} else {
			refused = r
		}
	}
	diskFull(t, "inline PUT once the index meets the full disk", refused, "full")
	t.Logf("%d inline objects acknowledged on the full disk", len(acked)-16)
	// The node stays up and answers: reads work, writes and deletes get
	// errors, not hangs.
	acked.checkAll(t, srv, b, "on a full disk")
	if keys := srv.listKeys(t, b, ""); len(keys) < len(acked) {
		t.Fatalf("listing on a full disk: %d keys; want at least the %d acknowledged", len(keys), len(acked))
	}
	diskFull(t, "inline PUT on a full disk", srv.answerWithin(t, rawReq{Method: "PUT", Bucket: b, Key: "more", Body: []byte("x")}), "full")
	if r := srv.answerWithin(t, rawReq{Method: "DELETE", Bucket: b, Key: "before-4096-0"}); r.Status != 204 && r.Status != 507 {
		t.Fatalf("DELETE on a full disk: %s; want 204 or 507", r)
	}
	if !srv.running() {
		t.Fatal("the node exited on a full disk")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	body := randomBytes(256 << 10)
	deadline := time.Now().Add(2 * time.Minute)
	for {
		r := srv.answerWithin(t, rawReq{Method: "PUT", Bucket: b, Key: "after", Body: body})
		if r.Status == 200 {
			acked["after"] = body
			break
		}
		diskFull(t, "PUT while space returns", r, "full")
		if time.Now().After(deadline) {
			t.Fatal("writes did not resume after the filler was removed")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for i := range 20 {
		k, body := fmt.Sprintf("after-%d", i), randomBytes(32<<10)
		srv.mustPut(t, b, k, body)
		acked[k] = body
	}
	delete(acked, "before-4096-0") // deleted, or not, while full
	acked.checkAll(t, srv, b, "after space returned")
	srv.Restart()
	acked.checkAll(t, srv, b, "after a restart")
}

// TestClusterNodeBelowFloor: in a cluster, a node below its floor refuses
// the S3 writes sent to it and the chunks other nodes send it, so writes
// through the other nodes still reach their quorum; every node serves
// reads, deletes go on, and the node takes writes again once space
// returns.
func TestClusterNodeBelowFloor(t *testing.T) {
	var nodes []*clusterNode
	var mnt string
	for i := range 3 {
		seed := ""
		if i > 0 {
			seed = nodes[0].gossip
		}
		node, opts := clusterNodeOptions(t, i, seed)
		if i == 2 {
			mnt = tmpfs.Mount(t, 64<<20)
			opts.DataDir = filepath.Join(mnt, "data")
			opts.Env = append(opts.Env, "RINGSTORE_MIN_FREE=16MiB", "RINGSTORE_INDEX_MEMORY=16MiB")
		}
		node.Server = startServer(t, opts)
		nodes = append(nodes, node)
	}
	waitAlive(t, nodes, 3)
	n1, n3 := nodes[0].Server, nodes[2].Server
	b := bucketName(t)
	n1.mustCreateBucket(t, b)

	// Another process leaves the third node 12 MiB: below its floor,
	// above its reserve.
	filler := filepath.Join(mnt, "filler")
	tmpfs.Fill(t, filler)
	st, err := os.Stat(filler)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(filler, st.Size()-12<<20); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		r := n3.answerWithin(t, rawReq{Method: "PUT", Bucket: b, Key: "probe", Body: []byte("x")})
		if r.Status != 200 {
			diskFull(t, "PUT to the node below its floor", r, "--min-free")
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the node below its floor still takes writes")
		}
		time.Sleep(100 * time.Millisecond)
	}

	acked := objects{}
	for i := range 12 {
		size := []int{4 << 10, 256 << 10, 1<<20 + 5}[i%3]
		k, body := fmt.Sprintf("obj-%02d", i), randomBytes(size)
		n1.mustPut(t, b, k, body)
		acked[k] = body
	}
	for _, nd := range nodes[:2] {
		acked.checkAll(t, nd.Server, b, "with a node below its floor")
	}
	// The other nodes wrote the chunks to each other only.
	var chunks int
	_ = filepath.WalkDir(filepath.Join(mnt, "data", "blobs", "chunks"), func(_ string, d os.DirEntry, _ error) error {
		if d != nil && !d.IsDir() {
			chunks++
		}
		return nil
	})
	if chunks > 0 {
		t.Fatalf("the node below its floor took %d chunks from the others", chunks)
	}
	acked.checkAll(t, n3, b, "through the node below its floor")
	if r := n3.answerWithin(t, rawReq{Method: "DELETE", Bucket: b, Key: "obj-00"}); r.Status != 204 {
		t.Fatalf("DELETE through the node below its floor: %s", r)
	}
	delete(acked, "obj-00")
	if r := n1.answerWithin(t, rawReq{Method: "GET", Bucket: b, Key: "obj-00"}); r.Status != 404 {
		t.Fatalf("GET of the object deleted through the node below its floor: %s", r)
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	body := randomBytes(256 << 10)
	deadline = time.Now().Add(time.Minute)
	for {
		r := n3.answerWithin(t, rawReq{Method: "PUT", Bucket: b, Key: "after", Body: body})
		if r.Status == 200 {
			acked["after"] = body
			break
		}
		diskFull(t, "PUT while space returns", r, "--min-free")
		if time.Now().After(deadline) {
			t.Fatal("writes through the node did not resume after space returned")
		}
		time.Sleep(200 * time.Millisecond)
	}
	for _, nd := range nodes {
		acked.checkAll(t, nd.Server, b, "after space returned")
	}
}
