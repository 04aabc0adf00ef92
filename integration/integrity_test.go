// integrity_test.go: a fault-free cluster under plain concurrent load never
// stores or serves a wrong byte.
//
// Goal: the store's first promise, checked the way a user would meet its
// failure. Many minio-go clients PUT small (inline), multi-chunk and
// deduplicated objects (bodies built from a small pool of chunk-sized
// blocks, so concurrent uploads share chunks) through every node of a
// 3-node cluster formed with --bootstrap-expect, as the README shows.
//
// Method: every acknowledged object is then read back through every node
// and compared byte for byte, and every chunk file on every node is hashed
// and compared with its name. The short form runs in `go test`; with
// -ringstore.long it runs 24 clients for 30 s with 8 MiB objects.
package integration

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/cespare/xxhash/v2"
	"github.com/minio/minio-go/v7"
	"golang.org/x/sys/unix"
)

// startBootstrapCluster starts n nodes at once with --bootstrap-expect n,
// each with extra environment.
func startBootstrapCluster(t *testing.T, n int, extra ...string) []*clusterNode {
	t.Helper()
	var nodes []*clusterNode
	var opts []ServerOptions
	seed := ""
	for i := range n {
		node, o := clusterNodeOptions(t, i, seed)
		if i == 0 {
			seed = node.gossip
		}
		o.Env = append(o.Env, fmt.Sprintf("RINGSTORE_BOOTSTRAP_EXPECT=%d", n))
		o.Env = append(o.Env, extra...)
		nodes, opts = append(nodes, node), append(opts, o)
	}
	servers := startServers(t, opts)
	for i := range nodes {
		nodes[i].Server = servers[i]
	}
	waitAlive(t, nodes, n)
	return nodes
}

// integrityObject is an acknowledged object: its body is rebuilt from the
// recipe, so the test holds hashes, not bodies.
type integrityObject struct {
	key    string
	recipe objectRecipe
	sum    [32]byte
}

// objectRecipe builds a body: blocks from the shared pool (deduplicated
// content), then a tail of fresh random bytes.
type objectRecipe struct {
	blocks []int
	seed   uint64
	tail   int
}

func (r objectRecipe) build(pool [][]byte) []byte {
	n := r.tail
	for _, b := range r.blocks {
		n += len(pool[b])
	}
	out := make([]byte, 0, n)
	for _, b := range r.blocks {
		out = append(out, pool[b]...)
	}
	return append(out, fastRandom(r.seed, r.tail)...)
}

func TestClusterIntegrity(t *testing.T) {
	clients, duration, bigBytes := 12, 8*time.Second, 3<<20
	if *flagLong {
		clients, duration, bigBytes = 24, 30*time.Second, 8<<20
	}
	nodes := startBootstrapCluster(t, 3)
	bucket := bucketName(t)
	if err := minioClient(t, nodes[0].Server).MakeBucket(testCtx(t, time.Minute), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	// Chunk-sized blocks (the default chunk is 1 MiB), so objects made of
	// them share whole chunks.
	pool := make([][]byte, 6)
	for i := range pool {
		pool[i] = fastRandom(uint64(1000+i), 1<<20)
	}

	var mu sync.Mutex
	var acked []integrityObject
	var putErrs int
	deadline := time.Now().Add(duration)
	var wg sync.WaitGroup
	for c := range clients {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cl := minioClient(t, nodes[c%len(nodes)].Server)
			rng := rand.New(rand.NewPCG(uint64(c), 42))
			for i := 0; time.Now().Before(deadline) && !t.Failed(); i++ {
				var rc objectRecipe
				rc.seed = uint64(c)<<32 | uint64(i)
				switch rng.IntN(4) {
				case 0: // inline
					rc.tail = rng.IntN(64 << 10)
				case 1: // a few chunks and a tail
					rc.tail = 1<<20 + rng.IntN(2<<20)
				case 2: // big
					rc.tail = bigBytes
				case 3: // deduplicated: shared blocks, sometimes a tail
					for range 1 + rng.IntN(4) {
						rc.blocks = append(rc.blocks, rng.IntN(len(pool)))
					}
					if rng.IntN(2) == 0 {
						rc.tail = rng.IntN(100 << 10)
					}
				}
				body := rc.build(pool)
				key := fmt.Sprintf("c%02d/%05d", c, i)
				_, err := cl.PutObject(testCtx(t, 2*time.Minute), bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{})
				mu.Lock()
				if err != nil {
					// Not acknowledged: nothing is promised for it.
					putErrs++
				} else {
					acked = append(acked, integrityObject{key: key, recipe: rc, sum: sha256.Sum256(body)})
				}
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if putErrs > 0 {
		t.Errorf("%d PUTs failed on a fault-free cluster", putErrs)
	}
	if len(acked) == 0 {
		t.Fatal("no PUT was acknowledged")
	}

	// Every acknowledged object, through every node, byte-exact.
	verified := 0
	var bytesRead int64
	for _, nd := range nodes {
		cl := minioClient(t, nd.Server)
		for _, o := range acked {
			obj, err := cl.GetObject(testCtx(t, time.Minute), bucket, o.key, minio.GetObjectOptions{})
			if err != nil {
				t.Errorf("GET %s through %s: %v", o.key, nd.Addr, err)
				continue
			}
			h := sha256.New()
			n, err := io.Copy(h, obj)
			obj.Close()
			if err != nil {
				t.Errorf("GET %s through %s: %v after %d bytes", o.key, nd.Addr, err, n)
				continue
			}
			if !bytes.Equal(h.Sum(nil), o.sum[:]) {
				want := o.recipe.build(pool)
				t.Errorf("GET %s through %s: %d bytes that differ from the %d acknowledged", o.key, nd.Addr, n, len(want))
				continue
			}
			verified++
			bytesRead += n
		}
	}

	// Every chunk file on every node holds the bytes its name says.
	scanned, bad := 0, 0
	copies := map[string]int{}
	for _, nd := range nodes {
		for name, p := range chunkFiles(t, nd) {
			copies[name]++
			b, err := os.ReadFile(p)
			if err != nil {
				continue // collected meanwhile
			}
			scanned++
			if s := sha256.Sum256(b); hex.EncodeToString(s[:]) != name {
				bad++
				t.Errorf("node %s: chunk file %s holds %d bytes hashing to %x", nd.Addr, name, len(b), s)
			}
		}
	}
	short := 0
	for _, n := range copies {
		if n < len(nodes) {
			short++
		}
	}
	t.Logf("%d clients for %v: %d objects acknowledged, %d GETs verified byte-exact (%d MiB) through %d nodes; %d chunk files scanned, %d wrong; %d chunks, %d on fewer than %d nodes",
		clients, duration, len(acked), verified, bytesRead>>20, len(nodes), scanned, bad, len(copies), short, len(nodes))
}

// TestClusterScrubsChunksOfEarlierVersionsOnce: a node whose chunk store
// comes from a version that did not check its writes (no marker) may hold
// a chunk whose bytes are not its name's, with a fast checksum computed
// from those wrong bytes, which reads trust. At start it verifies every
// chunk against its id once: the wrong one is quarantined and fetched
// again from another owner, so the node serves the right bytes.
func TestClusterScrubsChunksOfEarlierVersionsOnce(t *testing.T) {
	nodes := startBootstrapCluster(t, 3)
	bucket := bucketName(t)
	c := minioClient(t, nodes[0].Server)
	if err := c.MakeBucket(testCtx(t, time.Minute), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	body := fastRandom(5, 2<<20+100)
	if _, err := c.PutObject(testCtx(t, time.Minute), bucket, "obj", bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
		t.Fatal(err)
	}
	victim := nodes[1]
	victim.Stop()
	// What the old write path left: other bytes under the name, with a
	// checksum attribute that matches them.
	wrong := 0
	for _, p := range chunkFiles(t, victim) {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for i := range b {
			b[i] ^= 0x5a
		}
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		var sum [8]byte
		binary.BigEndian.PutUint64(sum[:], xxhash.Sum64(b))
		if err := unix.Setxattr(p, "user.ringstore.xxh64", sum[:], 0); err != nil {
			t.Skipf("no extended attributes here: %v", err)
		}
		wrong++
	}
	if wrong == 0 {
		t.Fatal("the victim holds no chunk files")
	}
	if err := os.Remove(filepath.Join(victim.DataDir, "blobs", "verified-writes")); err != nil {
		t.Fatal(err)
	}
	victim.Restart()
	deadline := time.Now().Add(time.Minute)
	for !strings.Contains(victim.Log(), "every chunk verified") {
		if time.Now().After(deadline) {
			t.Fatalf("the restarted node never finished verifying its chunks")
		}
		time.Sleep(100 * time.Millisecond)
	}
	got, err := getBytes(t, minioClient(t, victim.Server), bucket, "obj")
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("GET through the node after its first scrub: %d bytes, right %v, %v", len(got), bytes.Equal(got, body), err)
	}
	for name, p := range chunkFiles(t, victim) {
		b, err := os.ReadFile(p)
		if err == nil && sha256Hex(b) != name {
			t.Fatalf("chunk %s still holds wrong bytes", name)
		}
	}
}
