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
	"net/http"
	"net/url"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// clusterSecret is 32 random bytes in base64, as `openssl rand -base64 32`
// makes them.
const clusterSecret = "N9ghmD1xHEWVm6/m1Mpe2+Q9MHiZyZNxkw6QDUOwZxY="

// clusterExtraEnv is added to the environment of nodes startCluster starts.
var clusterExtraEnv []string

type clusterNode struct {
	*Server
	rpc, gossip, metrics string
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
	for i := 0; i < n; i++ {
		nodes = append(nodes, addNode(t, nodes, i))
	}
	waitAlive(t, nodes, n)
	return nodes
}

// addNode starts node i (on 127.0.0.i+1), joining nodes[0] if there is one.
func addNode(t *testing.T, nodes []*clusterNode, i int) *clusterNode {
	t.Helper()
	seed := ""
	if len(nodes) > 0 {
		seed = nodes[0].gossip
	}
	node, opts := clusterNodeOptions(t, i, seed)
	node.Server = startServer(t, opts)
	return node
}

// clusterNodeOptions chooses node i's addresses (on 127.0.0.i+1) and its
// server options, joining seed if it is set.
func clusterNodeOptions(t *testing.T, i int, seed string) (*clusterNode, ServerOptions) {
	t.Helper()
	host := fmt.Sprintf("127.0.0.%d", i+1)
	node := &clusterNode{
		rpc:     host + ":" + gossipPort(t, host),
		gossip:  host + ":" + gossipPort(t, host),
		metrics: host + ":" + gossipPort(t, host),
	}
	env := []string{
		"RINGSTORE_CLUSTER_SECRET=" + clusterSecret,
		"RINGSTORE_RPC_ADDR=" + node.rpc,
		"RINGSTORE_GOSSIP_ADDR=" + node.gossip,
		"RINGSTORE_METRICS_ADDR=" + node.metrics,
		fmt.Sprintf("RINGSTORE_ZONE=zone-%d", i%3),
		"RINGSTORE_HANDOFF_INTERVAL=500ms",
		"RINGSTORE_KEY_CACHE_TTL=500ms",
		"RINGSTORE_SETTLE_DELAY=1s",
		"RINGSTORE_AE_INTERVAL=1s",
	}
	if seed != "" {
		env = append(env, "RINGSTORE_JOIN="+seed)
	}
	env = append(env, clusterExtraEnv...)
	return node, ServerOptions{Host: host, Env: env, LogLevel: "info"}
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
	out, err := adminTry(node, args...)
	if err != nil {
		t.Fatalf("admin %v: %v\n%s", args, err, out)
	}
	return out
}

// adminTry runs a ringstore admin command against node and returns its
// output and whether it failed.
func adminTry(node *clusterNode, args ...string) (string, error) {
	cmd := exec.Command(serverBin, append([]string{"admin", "--rpc", node.rpc}, args...)...)
	cmd.Env = append(toolEnv(), "RINGSTORE_CLUSTER_SECRET="+clusterSecret)
	out, err := cmd.CombinedOutput()
	return string(out), err
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
	// The node that served the CreateBucket (a PUT) timed it, and the index
	// writes behind it timed their WAL fsyncs; both are on /metrics.
	resp, err := http.Get("http://" + nodes[2].metrics + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`ringstore_s3_request_duration_seconds_count{method="PUT",outcome="ok"} 1`,
		`ringstore_s3_request_duration_seconds_count{method="GET",outcome="error"}`,
		`ringstore_index_wal_fsync_seconds_bucket{le="0.0001"}`,
		`ringstore_read_digest_misses_total `,
		`ringstore_index_wal_sync_delay_seconds `,
		`ringstore_rpc_client_calls_total{service="index"}`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics of the serving node lacks %q", want)
		}
	}
	var fsyncs float64
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "ringstore_index_wal_fsync_seconds_count "); ok {
			fsyncs, _ = strconv.ParseFloat(v, 64)
		}
	}
	if fsyncs < 1 {
		t.Errorf("no WAL fsync counted after synced writes; /metrics:\n%s", body)
	}
}

func TestCluster5(t *testing.T) { testCluster(t, 5) }

// waitSettled waits until node's status shows want members and no data
// move in progress.
func waitSettled(t *testing.T, node *clusterNode, want int, within time.Duration) string {
	t.Helper()
	deadline := time.Now().Add(within)
	var out string
	for time.Now().Before(deadline) {
		out = admin(t, node, "status")
		members := 0
		for _, line := range strings.Split(out, "\n") {
			if strings.Contains(line, " alive ") || strings.Contains(line, " unreachable ") || strings.Contains(line, "leaving") {
				members++
			}
		}
		if members == want && !strings.Contains(out, "data moving") && !strings.Contains(out, "leaving") {
			return out
		}
		time.Sleep(300 * time.Millisecond)
	}
	t.Fatalf("cluster did not settle at %d members within %v; last status:\n%s", want, within, out)
	return ""
}

// TestClusterGrowShrink grows a loaded 3-node cluster to 5 and shrinks it
// back to 3 while clients read and write. Every failed request is retried
// once after a short pause and must then succeed; at the end every
// acknowledged object reads back right through every remaining node.
func TestClusterGrowShrink(t *testing.T) {
	nodes := startCluster(t, 3)
	bucket := bucketName(t)
	c0 := minioClient(t, nodes[0].Server)
	if err := c0.MakeBucket(testCtx(t, time.Minute), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	r := rand.New(rand.NewPCG(35, 53))
	objs := putObjects(t, c0, bucket, "before", 40, r)

	var mu sync.Mutex
	acked := append([]written(nil), objs...)
	var failures []string
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for w := 0; w < 2; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := minioClient(t, nodes[w].Server)
			rr := rand.New(rand.NewPCG(uint64(w), 77))
			retry := func(what string, op func() error) {
				if err := op(); err == nil {
					return
				}
				time.Sleep(500 * time.Millisecond)
				if err := op(); err != nil && ctx.Err() == nil {
					mu.Lock()
					failures = append(failures, fmt.Sprintf("%s: %v", what, err))
					mu.Unlock()
				}
			}
			for i := 0; ctx.Err() == nil; i++ {
				data := make([]byte, []int{100, 4 << 10, 1<<20 + 5}[rr.IntN(3)])
				for j := range data {
					data[j] = byte(rr.Uint32())
				}
				key := fmt.Sprintf("during/w%d-%05d", w, i)
				okPut := false
				retry("put "+key, func() error {
					_, err := c.PutObject(context.Background(), bucket, key, bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{})
					okPut = err == nil
					return err
				})
				if okPut {
					mu.Lock()
					acked = append(acked, written{key, data})
					mu.Unlock()
				}
				mu.Lock()
				probe := acked[rr.IntN(len(acked))]
				mu.Unlock()
				retry("get "+probe.key, func() error {
					obj, err := c.GetObject(context.Background(), bucket, probe.key, minio.GetObjectOptions{})
					if err != nil {
						return err
					}
					defer obj.Close()
					got, err := io.ReadAll(obj)
					if err != nil {
						return err
					}
					if !bytes.Equal(got, probe.data) {
						return fmt.Errorf("read %d bytes that differ from the %d written", len(got), len(probe.data))
					}
					return nil
				})
			}
		}()
	}
	time.Sleep(time.Second)
	nodes = append(nodes, addNode(t, nodes, 3))
	nodes = append(nodes, addNode(t, nodes, 4))
	grown := waitSettled(t, nodes[0], 5, 90*time.Second)
	t.Logf("grown to 5:\n%s", grown)
	for _, leaving := range nodes[3:] {
		admin(t, nodes[0], "node", "remove", nodeID(t, leaving))
	}
	shrunk := waitSettled(t, nodes[0], 3, 90*time.Second)
	t.Logf("shrunk to 3:\n%s", shrunk)
	for _, leaving := range nodes[3:] {
		leaving.Stop()
	}
	time.Sleep(time.Second)
	cancel()
	wg.Wait()
	mu.Lock()
	defer mu.Unlock()
	if len(failures) > 0 {
		t.Fatalf("%d requests failed even after a retry, first: %s", len(failures), failures[0])
	}
	t.Logf("%d objects acknowledged in all", len(acked))
	checkEverywhere(t, nodes[:3], bucket, acked)
}

// nodeID reads a node's id from its log ("ringstore ready ... node=ID").
func nodeID(t *testing.T, n *clusterNode) string {
	t.Helper()
	for _, line := range strings.Split(n.Log(), "\n") {
		if i := strings.Index(line, " node="); i >= 0 && strings.Contains(line, "ringstore ready") {
			f := strings.Fields(line[i+6:])
			if len(f) > 0 {
				return f[0]
			}
		}
	}
	t.Fatal("no node id in the log")
	return ""
}

// TestClusterWithoutQuorum: with two of three owners stopped, a write that
// cannot reach its quorum answers 503 ServiceUnavailable, which clients
// retry, not 500, and the surviving node keeps serving. (Reads are not
// checked: until the first layout settles, about 30 s, they go to the
// version whose one owner is the first node.)
func TestClusterWithoutQuorum(t *testing.T) {
	nodes := startCluster(t, 3)
	bucket := bucketName(t)
	if r := nodes[0].do(t, rawReq{Method: "PUT", Bucket: bucket}); r.Status != 200 {
		t.Fatalf("create bucket: %v", r)
	}
	if r := nodes[0].do(t, rawReq{Method: "PUT", Bucket: bucket, Key: "before", Body: []byte("x")}); r.Status != 200 {
		t.Fatalf("PUT with every node up: %v", r)
	}
	nodes[1].Stop()
	nodes[2].Stop()
	r := nodes[0].do(t, rawReq{Method: "PUT", Bucket: bucket, Key: "after", Body: []byte("y")})
	if r.Status != 503 || r.errorDoc().Code != "ServiceUnavailable" {
		t.Fatalf("PUT without a quorum: %v; want 503 ServiceUnavailable", r)
	}
	// The surviving node still answers what needs no quorum.
	if r := nodes[0].do(t, rawReq{Method: "GET", Bucket: bucket, Key: "x", Anonymous: true}); r.Status != 403 {
		t.Fatalf("anonymous GET on the surviving node: %v", r)
	}
}

// TestClusterBootstrapExpect: three nodes started together with
// --bootstrap-expect 3 (the joiners first, so they must retry their seed)
// come up with one layout version holding all three and nothing to move,
// and serve reads of each other's writes from the start.
func TestClusterBootstrapExpect(t *testing.T) {
	var nodes []*clusterNode
	var opts []ServerOptions
	seed := ""
	for i := range 3 {
		node, o := clusterNodeOptions(t, i, seed)
		if i == 0 {
			seed = node.gossip
		}
		o.Env = append(o.Env, "RINGSTORE_BOOTSTRAP_EXPECT=3")
		nodes, opts = append(nodes, node), append(opts, o)
	}
	// The joiners start first and retry the seed until it is up.
	joiners := startServersLater(t, opts[1:])
	time.Sleep(time.Second)
	servers := append(startServers(t, opts[:1]), joiners()...)
	for i := range nodes {
		nodes[i].Server = servers[i]
	}
	// Each joiner hears of the other through gossip, a moment later.
	waitAlive(t, nodes, 3)
	for _, nd := range nodes {
		out := admin(t, nd, "status")
		if !strings.Contains(out, "layout version 1,") || strings.Contains(out, "data moving") {
			t.Fatalf("status of a node of a new 3-node cluster, once ready:\n%s", out)
		}
	}
	bucket := bucketName(t)
	if r := nodes[0].do(t, rawReq{Method: "PUT", Bucket: bucket}); r.Status != 200 {
		t.Fatalf("create bucket: %v", r)
	}
	for i, nd := range nodes {
		key := fmt.Sprintf("k%d", i)
		if r := nd.do(t, rawReq{Method: "PUT", Bucket: bucket, Key: key, Body: []byte(key)}); r.Status != 200 {
			t.Fatalf("PUT through node %d: %v", i, r)
		}
		// Read back through the next node: every node owns every
		// partition already.
		next := nodes[(i+1)%len(nodes)]
		if r := next.do(t, rawReq{Method: "GET", Bucket: bucket, Key: key}); r.Status != 200 || string(r.Body) != key {
			t.Fatalf("GET of %s through node %d: %v", key, (i+1)%len(nodes), r)
		}
	}
}

// TestClusterBucketChangesReachCachedNodes: a node reuses a bucket record
// it read for a second. A bucket deleted, or switched to versioning,
// through another node must not be served from that copy once the client
// has seen the change: a PUT to the deleted bucket is NoSuchBucket at
// once, not an object written into a bucket that is gone.
func TestClusterBucketChangesReachCachedNodes(t *testing.T) {
	nodes := startCluster(t, 3)
	a, b := nodes[0], nodes[1]
	bucket := bucketName(t)
	if r := a.do(t, rawReq{Method: "PUT", Bucket: bucket}); r.Status != 200 {
		t.Fatalf("create bucket: %v", r)
	}
	// b reads the bucket, and keeps it.
	if r := b.do(t, rawReq{Method: "PUT", Bucket: bucket, Key: "k", Body: []byte("1")}); r.Status != 200 {
		t.Fatalf("PUT through b: %v", r)
	}
	if r := a.do(t, rawReq{Method: "PUT", Bucket: bucket, Query: "versioning", Body: []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`)}); r.Status != 200 {
		t.Fatalf("enable versioning through a: %v", r)
	}
	r := b.do(t, rawReq{Method: "PUT", Bucket: bucket, Key: "k", Body: []byte("2")})
	if v := r.Header.Get("x-amz-version-id"); r.Status != 200 || v == "" || v == "null" {
		t.Fatalf("PUT through b right after versioning was enabled through a: %v (version id %q); want a version id", r, v)
	}
	// Empty the bucket and delete it through a.
	l := a.do(t, rawReq{Method: "GET", Bucket: bucket, Query: "versions"})
	if l.Status != 200 {
		t.Fatalf("list versions: %v", l)
	}
	for _, m := range regexp.MustCompile(`<VersionId>([^<]+)</VersionId>`).FindAllStringSubmatch(string(l.Body), -1) {
		if r := a.do(t, rawReq{Method: "DELETE", Bucket: bucket, Key: "k", Query: "versionId=" + url.QueryEscape(m[1])}); r.Status != 204 {
			t.Fatalf("delete version %s: %v", m[1], r)
		}
	}
	if r := a.do(t, rawReq{Method: "DELETE", Bucket: bucket}); r.Status != 204 {
		t.Fatalf("delete bucket through a: %v", r)
	}
	if r := b.do(t, rawReq{Method: "PUT", Bucket: bucket, Key: "late", Body: []byte("x")}); r.Status != 404 || r.errorDoc().Code != "NoSuchBucket" {
		t.Fatalf("PUT through b right after the bucket was deleted through a: %v; want 404 NoSuchBucket", r)
	}
}

// TestClusterSkipDeadNode: a node of a 4-node cluster dies for good and is
// removed. The data move to the layout without it waits for it; once it
// is skipped (`admin node skip`), the move finishes, and every object
// reads back through every remaining node.
func TestClusterSkipDeadNode(t *testing.T) {
	nodes := startCluster(t, 4)
	waitSettled(t, nodes[0], 4, 60*time.Second)
	bucket := bucketName(t)
	c0 := minioClient(t, nodes[0].Server)
	if err := c0.MakeBucket(testCtx(t, time.Minute), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	objs := putObjects(t, c0, bucket, "before", 30, rand.New(rand.NewPCG(4, 44)))
	dead := nodes[3]
	id := nodeID(t, dead)
	dead.Kill()
	deadline := time.Now().Add(30 * time.Second)
	for !strings.Contains(admin(t, nodes[0], "status"), "unreachable") {
		if time.Now().After(deadline) {
			t.Fatal("the killed node is still seen alive after 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	if out, err := adminTry(nodes[0], "node", "skip", id); err == nil || !strings.Contains(out, "not removed") {
		t.Fatalf("skip of a node still in the layout: %v\n%s", err, out)
	}
	admin(t, nodes[0], "node", "remove", id)
	// With the settle delay at 1 s a move without a dead node takes a few
	// seconds; this one waits for it.
	time.Sleep(5 * time.Second)
	if out := admin(t, nodes[1], "status"); !strings.Contains(out, "data moving") {
		t.Fatalf("the move finished without the dead node:\n%s", out)
	}
	if out := admin(t, nodes[1], "node", "skip", id); !strings.Contains(out, "skipped") {
		t.Fatalf("skip: %s", out)
	}
	st := waitSettled(t, nodes[0], 3, 60*time.Second)
	t.Logf("after the skip:\n%s", st)
	objs = append(objs, putObjects(t, minioClient(t, nodes[2].Server), bucket, "after", 10, rand.New(rand.NewPCG(5, 55)))...)
	checkEverywhere(t, nodes[:3], bucket, objs)
}

// TestClusterPutRacingDeleteBucket: a PUT through one node racing a
// DeleteBucket of its bucket through another: exactly one of the two
// fails, whatever the timing, and when the delete wins the object is
// nowhere, not even in the bucket created again.
func TestClusterPutRacingDeleteBucket(t *testing.T) {
	nodes := startBootstrapCluster(t, 3)
	a, b := nodes[0], nodes[1]
	r := rand.New(rand.NewPCG(8, 9))
	putWon, deleteWon := 0, 0
	for trial := range 30 {
		bucket := fmt.Sprintf("%s-%d", bucketName(t), trial)
		if resp := a.do(t, rawReq{Method: "PUT", Bucket: bucket}); resp.Status != 200 {
			t.Fatalf("create: %v", resp)
		}
		b.do(t, rawReq{Method: "GET", Bucket: bucket, Key: "absent"}) // b caches the bucket
		body := fastRandom(uint64(trial), []int{200, 1<<20 + 5}[trial%2])
		var put, del rawResp
		var wg sync.WaitGroup
		wg.Add(2)
		d1, d2 := time.Duration(r.IntN(3000))*time.Microsecond, time.Duration(r.IntN(3000))*time.Microsecond
		go func() {
			defer wg.Done()
			time.Sleep(d1)
			put = b.do(t, rawReq{Method: "PUT", Bucket: bucket, Key: "obj", Body: body})
		}()
		go func() {
			defer wg.Done()
			time.Sleep(d2)
			del = a.do(t, rawReq{Method: "DELETE", Bucket: bucket})
		}()
		wg.Wait()
		switch {
		case put.Status == 200 && del.Status == 204:
			t.Fatalf("trial %d: both the PUT and the DeleteBucket succeeded", trial)
		case put.Status == 200 && del.Status == 409:
			putWon++
			if g := a.do(t, rawReq{Method: "GET", Bucket: bucket, Key: "obj"}); g.Status != 200 || !bytes.Equal(g.Body, body) {
				t.Fatalf("trial %d: the PUT won but GET answers %v", trial, g)
			}
		case put.Status == 404 && del.Status == 204:
			deleteWon++
			if resp := a.do(t, rawReq{Method: "PUT", Bucket: bucket}); resp.Status != 200 {
				t.Fatalf("create again: %v", resp)
			}
			if g := b.do(t, rawReq{Method: "GET", Bucket: bucket, Key: "obj"}); g.Status != 404 {
				t.Fatalf("trial %d: the delete won, yet the bucket created again answers GET with %v", trial, g)
			}
		default:
			t.Fatalf("trial %d: PUT %v, DeleteBucket %v; want exactly one to fail", trial, put, del)
		}
	}
	t.Logf("30 trials: the PUT won %d, the DeleteBucket %d", putWon, deleteWon)
}

// TestClusterDeleteBucketNeedsEveryNode: a DeleteBucket must reach every
// node of the layout with its fence (a node it cannot reach could still
// confirm writes into the bucket), so with one node stopped it answers
// 503 and the bucket stays; with the node back it succeeds.
func TestClusterDeleteBucketNeedsEveryNode(t *testing.T) {
	nodes := startBootstrapCluster(t, 3)
	bucket := bucketName(t)
	if r := nodes[0].do(t, rawReq{Method: "PUT", Bucket: bucket}); r.Status != 200 {
		t.Fatalf("create: %v", r)
	}
	nodes[2].Stop()
	r := nodes[0].do(t, rawReq{Method: "DELETE", Bucket: bucket})
	expectError(t, "DeleteBucket with a node stopped", r, 503, "ServiceUnavailable")
	if r := nodes[1].do(t, rawReq{Method: "PUT", Bucket: bucket, Key: "k", Body: []byte("v")}); r.Status != 200 {
		t.Fatalf("PUT into the bucket the failed delete left: %v", r)
	}
	if r := nodes[1].do(t, rawReq{Method: "DELETE", Bucket: bucket, Key: "k"}); r.Status != 204 {
		t.Fatalf("DELETE object: %v", r)
	}
	nodes[2].Restart()
	waitAlive(t, nodes, 3)
	if r := nodes[0].do(t, rawReq{Method: "DELETE", Bucket: bucket}); r.Status != 204 {
		t.Fatalf("DeleteBucket with every node back: %v", r)
	}
}
