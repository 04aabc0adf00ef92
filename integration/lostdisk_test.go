// lostdisk_test.go: a node that loses its disk gets everything back,
// records and chunks, by itself.
//
// Goal: a node restarted on an empty data directory under its old id
// (--node-id) must converge without an operator and without a client
// reading anything: record anti-entropy brings back the records, and chunk
// anti-entropy the chunks those records' references name. Before chunk
// anti-entropy, the records came back within seconds and the chunks never
// did, and the cluster ran on two copies without a sign of it.
//
// Method: a 3-node cluster (every node owns every partition) holds inline
// and multi-chunk objects. One node is stopped, its data directory wiped,
// and it is started again with its id. The test waits, reading nothing
// through S3, until its chunk files are those of a healthy node and record
// anti-entropy has found nothing to repair for a while. Then the two
// healthy nodes are stopped and the restored node, restarted with
// --read-quorum 1, must serve every object byte-exact alone.
package integration

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"os"
	"slices"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

func TestClusterLostDiskConverges(t *testing.T) {
	count := 40
	if *flagLong {
		count = 200
	}
	nodes := startBootstrapCluster(t, 3, "RINGSTORE_AE_RATE=100000")
	bucket := bucketName(t)
	c := minioClient(t, nodes[0].Server)
	if err := c.MakeBucket(testCtx(t, time.Minute), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	objs := putObjects(t, c, bucket, "lost", count, rand.New(rand.NewPCG(11, 12)))
	shared := fastRandom(3, 1<<20)
	for i := range 5 {
		// Objects sharing a chunk: one reference each, one chunk file.
		body := append(slices.Clone(shared), fmt.Sprintf("tail %d", i)...)
		key := fmt.Sprintf("lost/shared-%d", i)
		if _, err := c.PutObject(testCtx(t, time.Minute), bucket, key, bytes.NewReader(body), int64(len(body)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		objs = append(objs, written{key, body})
	}

	victim := nodes[2]
	id := nodeID(t, victim)
	healthy := chunkFiles(t, nodes[0])
	if len(healthy) == 0 {
		t.Fatal("the cluster holds no chunk files")
	}
	victim.Stop()
	if err := os.RemoveAll(victim.DataDir); err != nil {
		t.Fatal(err)
	}
	victim.opts.Env = append(slices.Clone(victim.opts.Env), "RINGSTORE_NODE_ID="+id)
	start := time.Now()
	victim.Restart()

	// Converged: every chunk back, and record anti-entropy quiet.
	deadline := time.Now().Add(3 * time.Minute)
	for {
		have := chunkFiles(t, victim)
		missing := 0
		for name := range healthy {
			if _, ok := have[name]; !ok {
				missing++
			}
		}
		if missing == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v the restored node still lacks %d of %d chunks; status:\n%s", time.Since(start).Round(time.Second), missing, len(healthy), admin(t, victim, "status"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	chunksBack := time.Since(start)
	waitRecordsQuiet(t, victim, time.Minute)
	status := admin(t, victim, "status")
	t.Logf("restored node: %d chunk files back in %v (records quiet after %v); %s", len(healthy), chunksBack.Round(10*time.Millisecond),
		time.Since(start).Round(10*time.Millisecond), statusLine(status, "chunk anti-entropy:"))

	// The restored node alone serves everything.
	nodes[0].Stop()
	nodes[1].Stop()
	victim.opts.Env = append(victim.opts.Env, "RINGSTORE_READ_QUORUM=1")
	victim.Restart()
	cv := minioClient(t, victim.Server)
	for _, o := range objs {
		got, err := getBytes(t, cv, bucket, o.key)
		if err != nil || !bytes.Equal(got, o.data) {
			t.Fatalf("GET %s from the restored node alone: %d bytes (want %d), %v", o.key, len(got), len(o.data), err)
		}
	}
	if lacks := len(healthy) - len(chunkFiles(t, victim)); lacks > 0 {
		t.Fatalf("the restored node lacks %d chunks", lacks)
	}
}

// waitRecordsQuiet waits until node's record anti-entropy has run several
// rounds in a row without finding a partition that differs.
func waitRecordsQuiet(t *testing.T, node *clusterNode, within time.Duration) {
	t.Helper()
	parse := func() (rounds, differing int) {
		var pulled, pushed, compared int
		var last string
		var secs float64
		var bytes int
		line := statusLine(admin(t, node, "status"), "anti-entropy:")
		fmt.Sscanf(line, "anti-entropy: %d rounds (last %s %fs, %d bytes), %d partition comparisons, %d differing, %d records pulled, %d pushed",
			&rounds, &last, &secs, &bytes, &compared, &differing, &pulled, &pushed)
		return rounds, differing
	}
	deadline := time.Now().Add(within)
	r0, d0 := parse()
	for time.Now().Before(deadline) {
		time.Sleep(500 * time.Millisecond)
		r, d := parse()
		if d != d0 {
			r0, d0 = r, d
			continue
		}
		if r >= r0+3 {
			return
		}
	}
	t.Fatalf("record anti-entropy still finds differences after %v:\n%s", within, admin(t, node, "status"))
}
