package gateway

import (
	"bytes"
	"context"
	"crypto/md5"
	"encoding/base64"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"

	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
)

// TestBelowTheFloorOnlyNewDataIsRefused: below the free-space floor the
// requests that add data fail with 507 and a message that says the disk
// is full; reads, deletes and aborts go on; once space is back, so are
// writes.
func TestBelowTheFloorOnlyNewDataIsRefused(t *testing.T) {
	var full atomic.Bool
	var asked atomic.Int64
	ts := newTestServer(t, func(c *Config) {
		c.AdmitWrite = func(n int64) bool {
			asked.Store(n)
			return !full.Load()
		}
	})
	ts.must(200, "PUT", "/bkt", nil)
	small, big := []byte("small"), bytes.Repeat([]byte("b"), 200<<10)
	ts.must(200, "PUT", "/bkt/small", small)
	ts.must(200, "PUT", "/bkt/big", big)
	if asked.Load() != int64(len(big)) {
		t.Fatalf("admission asked about %d bytes; want the body's %d", asked.Load(), len(big))
	}
	w := ts.must(200, "POST", "/bkt/mp?uploads", nil)
	uploadID := between(w.Body.String(), "<UploadId>", "</UploadId>")

	full.Store(true)
	for _, r := range []struct{ method, target string }{
		{"PUT", "/bkt/new"},
		{"PUT", "/bkt2"},
		{"POST", "/bkt/mp2?uploads"},
		{"PUT", "/bkt/mp?partNumber=1&uploadId=" + uploadID},
		{"POST", "/bkt/mp?uploadId=" + uploadID},
	} {
		w := ts.do(r.method, r.target, small)
		if w.Code != 507 || errCode(w) != "InsufficientStorage" || !strings.Contains(w.Body.String(), "--min-free") {
			t.Errorf("%s %s below the floor = %d %s; want 507 InsufficientStorage naming --min-free", r.method, r.target, w.Code, w.Body)
		}
	}
	if w := ts.do("PUT", "/bkt/copy", nil, "x-amz-copy-source", "/bkt/big"); w.Code != 507 {
		t.Errorf("copy below the floor = %d %s; want 507", w.Code, w.Body)
	}
	if w := ts.must(200, "GET", "/bkt/big", nil); !bytes.Equal(w.Body.Bytes(), big) {
		t.Fatal("GET below the floor returned other bytes")
	}
	ts.must(200, "GET", "/bkt?list-type=2", nil)
	ts.must(204, "DELETE", "/bkt/small", nil)
	ts.must(204, "DELETE", "/bkt/mp?uploadId="+uploadID, nil)
	del := []byte(`<Delete><Object><Key>big</Key></Object></Delete>`)
	if w := ts.must(200, "POST", "/bkt?delete", del, "Content-MD5", md5Base64(del)); strings.Contains(w.Body.String(), "<Error>") {
		t.Fatalf("DeleteObjects below the floor: %s", w.Body)
	}

	full.Store(false)
	ts.must(200, "PUT", "/bkt/new", small)
}

// fullChunks is a chunk store whose disk is full.
type fullChunks struct{ Chunks }

func (fullChunks) Put(_ context.Context, c blobs.Chunk) error {
	return fmt.Errorf("put chunk %s: %w", c.ID(), &os.PathError{Op: "write", Path: "/data/blobs/tmp/x", Err: syscall.ENOSPC})
}

// TestFullDiskIs507: a chunk write or an index write that finds the disk
// full answers 507, not 500 or the quorum's 503.
func TestFullDiskIs507(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Chunks = fullChunks{c.Chunks} })
	ts.must(200, "PUT", "/bkt", nil)
	w := ts.do("PUT", "/bkt/big", bytes.Repeat([]byte("b"), 200<<10))
	if w.Code != 507 || errCode(w) != "InsufficientStorage" || !strings.Contains(w.Body.String(), "disk of this node is full") {
		t.Fatalf("PUT with the chunk disk full = %d %s; want 507 InsufficientStorage", w.Code, w.Body)
	}
	quorum := fmt.Errorf("%w: 0 of 1 acknowledgements: n1: %w", index.ErrQuorum, fmt.Errorf("index commit: %w", index.ErrDiskFull))
	if ae := asAPIError(quorum); ae != ErrDiskFull {
		t.Fatalf("a write quorum that failed on a full disk maps to %v; want ErrDiskFull", ae)
	}
	if ae := asAPIError(fmt.Errorf("index commit: %w", index.ErrStoreFailed)); ae != ErrServiceUnavailable {
		t.Fatalf("a failed index store maps to %v; want ErrServiceUnavailable", ae)
	}
}

func md5Base64(b []byte) string {
	sum := md5.Sum(b)
	return base64.StdEncoding.EncodeToString(sum[:])
}

func between(s, a, b string) string {
	i := strings.Index(s, a)
	if i < 0 {
		return ""
	}
	s = s[i+len(a):]
	if j := strings.Index(s, b); j >= 0 {
		return s[:j]
	}
	return ""
}
