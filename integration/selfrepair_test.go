// selfrepair_test.go checks the background repairs of a real cluster:
// scrub finds bytes flipped in a chunk file and in a pebble table on one
// node and repairs both from the other owners, while GETs keep returning
// the right bytes; garbage collection reclaims the chunks of an object
// deleted while an owner was down (which comes back holding the old
// references) and of an abandoned multipart upload.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// withEnv returns nodes started with extra environment.
func startClusterEnv(t *testing.T, n int, extra ...string) []*clusterNode {
	t.Helper()
	old := clusterExtraEnv
	clusterExtraEnv = extra
	defer func() { clusterExtraEnv = old }()
	return startCluster(t, n)
}

// chunkFiles lists a node's chunk files.
func chunkFiles(t *testing.T, n *clusterNode) map[string]string {
	t.Helper()
	out := map[string]string{}
	_ = filepath.WalkDir(filepath.Join(n.DataDir, "blobs", "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			out[d.Name()] = p
		}
		return nil
	})
	return out
}

func getBytes(t *testing.T, c *minio.Client, bucket, key string) ([]byte, error) {
	t.Helper()
	obj, err := c.GetObject(testCtx(t, time.Minute), bucket, key, minio.GetObjectOptions{})
	if err != nil {
		return nil, err
	}
	defer obj.Close()
	return io.ReadAll(obj)
}

func TestClusterScrubRepairs(t *testing.T) {
	nodes := startClusterEnv(t, 3, "RINGSTORE_SCRUB_INTERVAL=1s", "RINGSTORE_SCRUB_BYTES_RATE=1e9", "RINGSTORE_SCRUB_RECORDS_RATE=1e7")
	bucket := bucketName(t)
	c := minioClient(t, nodes[0].Server)
	if err := c.MakeBucket(testCtx(t, time.Minute), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(5, 5))
	objs := putObjects(t, c, bucket, "scrub", 30, r)
	big := written{key: "scrub/big", data: fastRandom(77, 3<<20)}
	if _, err := c.PutObject(testCtx(t, time.Minute), bucket, big.key, bytes.NewReader(big.data), int64(len(big.data)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	objs = append(objs, big)
	victim := nodes[1]

	// Bit rot in the index: stop the node, flip bytes inside the data of
	// its largest table and of its largest blob file (the values of
	// records with inline bodies), start it again.
	victim.Stop()
	tables := flipIndexFile(t, victim, ".sst")
	blobs := flipIndexFile(t, victim, ".blob")
	victim.Restart()
	waitAlive(t, nodes, 3)

	// Bit rot in a chunk: flip a byte in every chunk file of the victim.
	flipped := 0
	for name, p := range chunkFiles(t, victim) {
		b, err := os.ReadFile(p)
		if err != nil || len(b) == 0 {
			continue
		}
		b[len(b)/2] ^= 0x01
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		flipped++
		_ = name
	}
	if flipped == 0 {
		t.Fatal("the victim holds no chunk files")
	}
	// Meanwhile a GET of the damaged object, through a healthy node, and
	// of the small (inline) ones through the damaged node, return the
	// right bytes.
	if got, err := getBytes(t, minioClient(t, nodes[0].Server), bucket, big.key); err != nil || !bytes.Equal(got, big.data) {
		t.Fatalf("GET of the damaged object through a healthy node: %d bytes, %v", len(got), err)
	}
	cv := minioClient(t, victim.Server)
	for _, o := range objs[:10] {
		got, err := getBytes(t, cv, bucket, o.key)
		if err != nil || !bytes.Equal(got, o.data) {
			t.Fatalf("GET %s through the damaged node: %d bytes, %v", o.key, len(got), err)
		}
	}
	// Scrub finds and repairs the flipped chunks no client read, and the
	// damaged partitions of the table.
	deadline := time.Now().Add(60 * time.Second)
	for {
		status := statusLine(admin(t, victim, "status"), "scrub:")
		var passes, records, damaged, repairedParts, chunks, corrupt, repaired int
		fmt.Sscanf(status, "scrub: %d passes, %d records (%d damaged partitions, %d repaired), %d chunks (%d corrupt, %d repaired)",
			&passes, &records, &damaged, &repairedParts, &chunks, &corrupt, &repaired)
		bad := 0
		for name, p := range chunkFiles(t, victim) {
			if b, err := os.ReadFile(p); err == nil && sha256Hex(b) != name {
				bad++
			}
		}
		recordsOK := tables+blobs == 0 || (damaged > 0 && repairedParts >= damaged)
		if bad == 0 && repaired > 0 && recordsOK {
			t.Logf("after repair: %s", status)
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d chunk files still corrupt; status: %s", bad, status)
		}
		time.Sleep(500 * time.Millisecond)
	}
	checkEverywhere(t, nodes, bucket, objs)
}

// flipIndexFile flips bytes in the middle of the largest file of the
// stopped node's index with the suffix and returns how many it damaged (0 if
// there is none yet, with everything still in the WAL).
func flipIndexFile(t *testing.T, n *clusterNode, suffix string) int {
	t.Helper()
	var largest string
	var size int64
	_ = filepath.WalkDir(filepath.Join(n.DataDir, "index"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || !strings.HasSuffix(p, suffix) {
			return nil
		}
		if fi, err := d.Info(); err == nil && fi.Size() > size {
			largest, size = p, fi.Size()
		}
		return nil
	})
	if largest == "" {
		t.Logf("no %s file in the index yet (everything in the WAL); that check is skipped", suffix)
		return 0
	}
	b, err := os.ReadFile(largest)
	if err != nil {
		t.Fatal(err)
	}
	// Keys sort 'm' (node metadata) < 'r' (records) < 't' (trees), and
	// a file's index and footer sit at its end: the middle of the file is
	// record data.
	for i := len(b) * 2 / 5; i < len(b)/2; i += 97 {
		b[i] ^= 0x5a
	}
	if err := os.WriteFile(largest, b, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Logf("flipped bytes in %s (%d bytes)", filepath.Base(largest), len(b))
	return 1
}

func statusLine(status, prefix string) string {
	for _, l := range strings.Split(status, "\n") {
		if strings.HasPrefix(l, prefix) {
			return l
		}
	}
	return ""
}

func TestClusterGarbageCollection(t *testing.T) {
	nodes := startClusterEnv(t, 3, "RINGSTORE_GC_INTERVAL=1s", "RINGSTORE_GC_GRACE=2s", "RINGSTORE_UPLOAD_EXPIRY=3s")
	bucket := bucketName(t)
	c := minioClient(t, nodes[0].Server)
	ctx := testCtx(t, 2*time.Minute)
	if err := c.MakeBucket(ctx, bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	doomed := fastRandom(91, 2<<20+9)
	keep := fastRandom(92, 1<<20+1)
	for k, d := range map[string][]byte{"doomed": doomed, "keep": keep} {
		if _, err := c.PutObject(ctx, bucket, k, bytes.NewReader(d), int64(len(d)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	// An abandoned multipart upload with one part.
	core := minio.Core{Client: c}
	id, err := core.NewMultipartUpload(ctx, bucket, "abandoned", minio.PutObjectOptions{})
	if err != nil {
		t.Fatal(err)
	}
	part := fastRandom(93, 1<<20+3)
	if _, err := core.PutObjectPart(ctx, bucket, "abandoned", id, 1, bytes.NewReader(part), int64(len(part)), minio.PutObjectPartOptions{}); err != nil {
		t.Fatal(err)
	}
	// An owner is down while the object is deleted, and comes back with the
	// old records and references.
	nodes[2].Kill()
	if err := c.RemoveObject(ctx, bucket, "doomed", minio.RemoveObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	nodes[2].Restart()
	waitAlive(t, nodes, 3)
	gone := func(data []byte) bool {
		want := map[string]bool{}
		for off := 0; off < len(data); off += 1 << 20 {
			want[sha256Hex(data[off:min(off+1<<20, len(data))])] = true
		}
		for _, n := range nodes {
			for name := range chunkFiles(t, n) {
				if want[name] {
					return false
				}
			}
		}
		return true
	}
	deadline := time.Now().Add(90 * time.Second)
	for !(gone(doomed) && gone(part)) {
		if time.Now().After(deadline) {
			t.Fatalf("chunks not reclaimed: deleted object gone=%v, abandoned upload gone=%v", gone(doomed), gone(part))
		}
		time.Sleep(time.Second)
	}
	for _, n := range nodes {
		cn := minioClient(t, n.Server)
		if _, err := getBytes(t, cn, bucket, "doomed"); err == nil || minio.ToErrorResponse(err).Code != "NoSuchKey" {
			t.Fatalf("deleted object through %s: %v", n.Addr, err)
		}
		got, err := getBytes(t, cn, bucket, "keep")
		if err != nil || !bytes.Equal(got, keep) {
			t.Fatalf("kept object through %s: %d bytes, %v", n.Addr, len(got), err)
		}
	}
	_ = context.Background
	_ = fmt.Sprint
}
