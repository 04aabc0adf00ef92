// cluster_test.go runs real multi-process clusters: 3 and 5 ringstore
// servers on distinct loopback addresses (127.0.0.x), joined by gossip
// with a cluster secret. It writes through one node with minio-go and reads
// through every other; then kills one node with SIGKILL in the middle of a
// write workload, keeps writing, restarts it, and checks that every
// acknowledged object is readable with the right bytes through every node,
// the restarted one included.
package integration

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

const clusterSecret = "integration-cluster-secret"

type clusterNode struct {
	*Server
	rpc, gossip string
}

// gossipPort finds a port free for both TCP and UDP on host.
func gossipPort(t testing.TB, host string) string {
	t.Helper()
	for i := 0; i < 100; i++ {
		l, err := net.Listen("tcp", host+":0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		u, err := net.ListenPacket("udp", addr)
		l.Close()
		if err == nil {
			u.Close()
			_, p, _ := net.SplitHostPort(addr)
			return p
		}
	}
	t.Fatal("no free gossip port")
	return ""
}

func startCluster(t *testing.T, n int) []*clusterNode {
	t.Helper()
	var nodes []*clusterNode
	var seed string
	for i := 0; i < n; i++ {
		host := fmt.Sprintf("127.0.0.%d", i+1)
		node := &clusterNode{
			rpc:    host + ":" + gossipPort(t, host),
			gossip: host + ":" + gossipPort(t, host),
		}
		env := []string{
			"RINGSTORE_CLUSTER_SECRET=" + clusterSecret,
			"RINGSTORE_RPC_ADDR=" + node.rpc,
			"RINGSTORE_GOSSIP_ADDR=" + node.gossip,
			fmt.Sprintf("RINGSTORE_ZONE=zone-%d", i%3),
			"RINGSTORE_HANDOFF_INTERVAL=500ms",
			"RINGSTORE_KEY_CACHE_TTL=500ms",
		}
		if seed != "" {
			env = append(env, "RINGSTORE_JOIN="+seed)
		} else {
			seed = node.gossip
		}
		node.Server = startServer(t, ServerOptions{Host: host, Env: env, LogLevel: "info"})
		nodes = append(nodes, node)
	}
	waitAlive(t, nodes, n)
	return nodes
}

// waitAlive waits until the first node's admin status lists want members,
// all alive.
func waitAlive(t *testing.T, nodes []*clusterNode, want int) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	var out []byte
	for time.Now().Before(deadline) {
		for _, nd := range nodes {
			cmd := exec.Command(serverBin, "admin", "status", "--rpc", nd.rpc)
			cmd.Env = append(toolEnv(), "RINGSTORE_CLUSTER_SECRET="+clusterSecret)
			var err error
			out, err = cmd.CombinedOutput()
			if err != nil {
				continue
			}
			if strings.Count(string(out), " alive ") == want && !strings.Contains(string(out), "unreachable") {
				return
			}
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	t.Fatalf("cluster of %d never all alive; last status:\n%s", want, out)
}

type written struct {
	key  string
	data []byte
}

func putObjects(t *testing.T, c *minio.Client, bucket, prefix string, count int, r *rand.Rand) []written {
	t.Helper()
	var out []written
	for i := 0; i < count; i++ {
		size := []int{0, 100, 4 << 10, 70 << 10, 1<<20 + 333, 2<<20 + 7}[r.IntN(6)]
		data := make([]byte, size)
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		key := fmt.Sprintf("%s/obj-%04d", prefix, i)
		if _, err := c.PutObject(testCtx(t, time.Minute), bucket, key, bytes.NewReader(data), int64(size), minio.PutObjectOptions{}); err != nil {
			t.Fatalf("put %s: %v", key, err)
		}
		out = append(out, written{key, data})
	}
	return out
}

// checkEverywhere reads every object through every node.
func checkEverywhere(t *testing.T, nodes []*clusterNode, bucket string, objs []written) {
	t.Helper()
	for _, nd := range nodes {
		c := minioClient(t, nd.Server)
		for _, o := range objs {
			obj, err := c.GetObject(testCtx(t, time.Minute), bucket, o.key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatalf("get %s via %s: %v", o.key, nd.Addr, err)
			}
			got, err := io.ReadAll(obj)
			obj.Close()
			if err != nil {
				t.Fatalf("read %s via %s: %v", o.key, nd.Addr, err)
			}
			if !bytes.Equal(got, o.data) {
				t.Fatalf("%s via %s: %d bytes that differ from the %d written", o.key, nd.Addr, len(got), len(o.data))
			}
		}
	}
}

func testCluster(t *testing.T, size int) {
	nodes := startCluster(t, size)
	bucket := bucketName(t)
	writer := minioClient(t, nodes[0].Server)
	if err := writer.MakeBucket(testCtx(t, time.Minute), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(uint64(size), 9))
	objs := putObjects(t, writer, bucket, "calm", 30, r)
	checkEverywhere(t, nodes, bucket, objs)

	// A workload runs through two nodes while another one is killed with
	// SIGKILL, stays down, and comes back.
	victim := nodes[1]
	var mu sync.Mutex
	var acked []written
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w, via := range []*clusterNode{nodes[0], nodes[2]} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := minioClient(t, via.Server)
			rr := rand.New(rand.NewPCG(uint64(w), uint64(size)))
			for i := 0; ctx.Err() == nil; i++ {
				data := make([]byte, []int{10, 5 << 10, 1<<20 + 11}[rr.IntN(3)])
				for j := range data {
					data[j] = byte(rr.Uint32())
				}
				key := fmt.Sprintf("storm/w%d-%05d", w, i)
				pctx, pcancel := context.WithTimeout(ctx, 30*time.Second)
				_, err := c.PutObject(pctx, bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
				pcancel()
				if err == nil {
					mu.Lock()
					acked = append(acked, written{key, data})
					mu.Unlock()
				}
			}
		}()
	}
	time.Sleep(1500 * time.Millisecond)
	victim.Kill()
	time.Sleep(3 * time.Second)
	mu.Lock()
	duringOutage := len(acked)
	mu.Unlock()
	victim.Restart()
	waitAlive(t, nodes, size)
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	if duringOutage == 0 || len(acked) == 0 {
		t.Fatalf("no write was acknowledged around the outage (%d before restart, %d in all)", duringOutage, len(acked))
	}
	t.Logf("%d-node cluster: %d objects acknowledged during the workload, %d of them before the killed node returned", size, len(acked), duringOutage)
	checkEverywhere(t, nodes, bucket, append(objs, acked...))
}

func TestCluster3(t *testing.T) { testCluster(t, 3) }

// admin runs a ringstore admin command against node.
func admin(t *testing.T, node *clusterNode, args ...string) string {
	t.Helper()
	cmd := exec.Command(serverBin, append([]string{"admin", "--rpc", node.rpc}, args...)...)
	cmd.Env = append(toolEnv(), "RINGSTORE_CLUSTER_SECRET="+clusterSecret)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("admin %v: %v\n%s", args, err, out)
	}
	return string(out)
}

// TestClusterAccessKeys: an access key created through one node's admin
// port is a replicated index record, so every node accepts it; revoked,
// every node refuses it.
func TestClusterAccessKeys(t *testing.T) {
	nodes := startCluster(t, 3)
	out := admin(t, nodes[0], "key", "create", "ci")
	var id, secret string
	for _, line := range strings.Split(out, "\n") {
		if v, ok := strings.CutPrefix(line, "access key id:"); ok {
			id = strings.TrimSpace(v)
		}
		if v, ok := strings.CutPrefix(line, "secret access key:"); ok {
			secret = strings.TrimSpace(v)
		}
	}
	if id == "" || secret == "" {
		t.Fatalf("admin key create printed %q", out)
	}
	c := minioClientWith(t, nodes[2].Server, id, secret)
	bucket := bucketName(t)
	if err := c.MakeBucket(testCtx(t, time.Minute), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatalf("new key on another node: %v", err)
	}
	if !strings.Contains(admin(t, nodes[1], "key", "list"), id) {
		t.Fatal("key not listed")
	}
	admin(t, nodes[1], "key", "delete", id)
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := c.ListBuckets(testCtx(t, time.Minute))
		if err != nil && minio.ToErrorResponse(err).Code == "InvalidAccessKeyId" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("revoked key still accepted: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func TestCluster5(t *testing.T) { testCluster(t, 5) }
