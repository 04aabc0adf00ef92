// nodeplane_test.go attacks the node-to-node port of a real 3-node
// cluster from outside, as issue 17 did: someone on the wire between the
// admin tool and a node, or between nodes, sees no key secret and no
// object byte; a recorded admin session replayed byte for byte to any
// node changes nothing; a byte altered in a session breaks it; floods of
// unauthenticated bodies and garbage leave the node's memory where it
// was; a node or an admin tool with another secret gets nowhere, and the
// tool says why.
package integration

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/binary"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// recordProxy forwards TCP connections to target and keeps both
// directions of each. The client's bytes are forwarded one TLS record at
// a time through edit, which may change the record (its index counts the
// client's records on that connection).
type recordProxy struct {
	addr     string
	mu       sync.Mutex
	up, down []*bytes.Buffer
}

func startRecordProxy(t *testing.T, target string, edit func(i int, rec []byte)) *recordProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	p := &recordProxy{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s, err := net.Dial("tcp", target)
			if err != nil {
				_ = c.Close()
				continue
			}
			up, down := &bytes.Buffer{}, &bytes.Buffer{}
			p.mu.Lock()
			p.up, p.down = append(p.up, up), append(p.down, down)
			p.mu.Unlock()
			go func() {
				defer c.Close()
				buf := make([]byte, 32<<10)
				for {
					n, err := s.Read(buf)
					if n > 0 {
						p.keep(down, buf[:n])
						if _, err := c.Write(buf[:n]); err != nil {
							return
						}
					}
					if err != nil {
						return
					}
				}
			}()
			go func() {
				defer s.Close()
				r := bufio.NewReader(c)
				for i := 0; ; i++ {
					hdr := make([]byte, 5)
					if _, err := io.ReadFull(r, hdr); err != nil {
						return
					}
					rec := make([]byte, 5+int(binary.BigEndian.Uint16(hdr[3:])))
					copy(rec, hdr)
					if _, err := io.ReadFull(r, rec[5:]); err != nil {
						return
					}
					p.keep(up, rec)
					if edit != nil {
						edit(i, rec)
					}
					if _, err := s.Write(rec); err != nil {
						return
					}
				}
			}()
		}
	}()
	return p
}

func (p *recordProxy) keep(b *bytes.Buffer, data []byte) {
	p.mu.Lock()
	b.Write(data)
	p.mu.Unlock()
}

// conns returns what each connection's client sent, and everything seen.
func (p *recordProxy) recorded() (client [][]byte, all []byte) {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i := range p.up {
		client = append(client, bytes.Clone(p.up[i].Bytes()))
		all = append(all, p.up[i].Bytes()...)
		all = append(all, p.down[i].Bytes()...)
	}
	return client, all
}

// adminAt runs ringstore admin against addr with secret.
func adminAt(addr, secret string, args ...string) (string, error) {
	cmd := exec.Command(serverBin, append([]string{"admin", "--rpc", addr}, args...)...)
	cmd.Env = append(toolEnv(), "RINGSTORE_CLUSTER_SECRET="+secret)
	out, err := cmd.CombinedOutput()
	return string(out), err
}

var keyIDPattern = regexp.MustCompile(`(?m)^(RS[A-Z2-7]{18})\s`)

// keyIDs lists the access key ids a node knows.
func keyIDs(t *testing.T, node *clusterNode) []string {
	t.Helper()
	var ids []string
	for _, m := range keyIDPattern.FindAllStringSubmatch(admin(t, node, "key", "list"), -1) {
		ids = append(ids, m[1])
	}
	slices.Sort(ids)
	return ids
}

// parseKey reads the id and secret admin key create printed.
func parseKey(t *testing.T, out string) (id, secret string) {
	t.Helper()
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
	return id, secret
}

func TestNodePlane(t *testing.T) {
	nodes := startCluster(t, 3)
	t.Run("UnauthenticatedMemory", func(t *testing.T) { testUnauthenticatedMemory(t, nodes[2]) })
	t.Run("AdminOnTheWire", func(t *testing.T) { testAdminOnTheWire(t, nodes) })
	t.Run("NodesOnTheWire", func(t *testing.T) { testNodesOnTheWire(t, nodes) })
	t.Run("WrongSecret", func(t *testing.T) { testWrongSecret(t, nodes) })
}

// testAdminOnTheWire: admin key create through a proxy. The proxy sees
// neither the new key's secret nor its id; replaying each recorded
// connection to that node and to another creates no key; a byte altered
// in the request record makes the command fail and creates no key.
func testAdminOnTheWire(t *testing.T, nodes []*clusterNode) {
	before := keyIDs(t, nodes[1])
	p := startRecordProxy(t, nodes[0].rpc, nil)
	out, err := adminAt(p.addr, clusterSecret, "key", "create", "on-the-wire")
	if err != nil {
		t.Fatalf("admin key create through a proxy: %v\n%s", err, out)
	}
	id, secret := parseKey(t, out)
	sessions, wire := p.recorded()
	for what, s := range map[string]string{"key secret": secret, "key id": id, "key name": "on-the-wire", "service name": "admin.key.create"} {
		if bytes.Contains(wire, []byte(s)) {
			t.Errorf("the %s crossed the wire in the clear", what)
		}
	}
	if len(sessions) == 0 {
		t.Fatal("the proxy saw no connection")
	}
	for _, node := range nodes[:2] {
		for _, rec := range sessions {
			c, err := net.Dial("tcp", node.rpc)
			if err != nil {
				t.Fatal(err)
			}
			go func() { _, _ = c.Write(rec) }()
			got, _ := io.ReadAll(c)
			c.Close()
			if bytes.Contains(got, []byte(`"secret"`)) || keyIDPattern.Match(got) {
				t.Fatalf("a replayed admin session to %s got a key back: %q", node.rpc, got)
			}
		}
	}
	want := slices.Sorted(slices.Values(append(slices.Clone(before), id)))
	if got := keyIDs(t, nodes[1]); !slices.Equal(got, want) {
		t.Fatalf("keys after the replays %v, want %v (the one created)", got, want)
	}

	// Go's client sends ClientHello, ChangeCipherSpec, then Certificate,
	// CertificateVerify and Finished in records of their own: record 5 is
	// the first after the handshake, the request. Its last byte is in the
	// AEAD tag.
	altered := atomic.Int32{}
	p2 := startRecordProxy(t, nodes[0].rpc, func(i int, rec []byte) {
		if i == 5 {
			rec[len(rec)-1] ^= 1
			altered.Add(1)
		}
	})
	out, err = adminAt(p2.addr, clusterSecret, "key", "create", "altered")
	if err == nil {
		t.Fatalf("admin key create through an altering proxy succeeded:\n%s", out)
	}
	if altered.Load() == 0 {
		t.Fatalf("the proxy altered nothing; the command failed with %v:\n%s", err, out)
	}
	t.Logf("altered session: %s", strings.TrimSpace(out))
	if got := keyIDs(t, nodes[1]); !slices.Equal(got, want) {
		t.Fatalf("keys after an altered session %v, want %v", got, want)
	}
}

// testNodesOnTheWire captures the loopback interface while a key is
// created and objects are written through one node and read through the
// others: no byte that crossed an RPC port carries the key's secret or 32
// consecutive bytes of an object. Capturing needs CAP_NET_RAW; without it
// the subtest skips (internal/rpc's TestStreamOnTheWire proxies two nodes
// in one process).
func testNodesOnTheWire(t *testing.T, nodes []*clusterNode) {
	ports := map[uint16]bool{}
	for _, n := range nodes {
		_, p, _ := net.SplitHostPort(n.rpc)
		v, _ := strconv.Atoi(p)
		ports[uint16(v)] = true
	}
	capture := captureLoopback(t, ports)
	_, secret := parseKey(t, admin(t, nodes[0], "key", "create", "captured"))
	bucket := bucketName(t)
	c := minioClient(t, nodes[0].Server)
	if err := c.MakeBucket(testCtx(t, time.Minute), bucket, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	var bodies [][]byte
	for i, size := range []int{300, 4 << 10, 100 << 10, 2<<20 + 5} {
		body := make([]byte, size)
		_, _ = rand.Read(body)
		bodies = append(bodies, body)
		key := fmt.Sprintf("o%d", i)
		if _, err := c.PutObject(testCtx(t, time.Minute), bucket, key, bytes.NewReader(body), int64(size), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		for _, n := range nodes[1:] {
			obj, err := minioClient(t, n.Server).GetObject(testCtx(t, time.Minute), bucket, key, minio.GetObjectOptions{})
			if err != nil {
				t.Fatal(err)
			}
			got, err := io.ReadAll(obj)
			obj.Close()
			if err != nil || !bytes.Equal(got, body) {
				t.Fatalf("%s through %s: %d bytes, %v", key, n.rpc, len(got), err)
			}
		}
	}
	wire := capture()
	// Replicas of the 2 MiB object alone cross the RPC ports twice; a
	// loaded machine drops some of the capture, which only narrows what
	// is checked. Less than a megabyte means the capture did not work.
	if len(wire) < 1<<20 {
		t.Fatalf("captured %d bytes on the RPC ports: the capture missed the traffic", len(wire))
	}
	if bytes.Contains(wire, []byte(secret)) {
		t.Error("an access key's secret crossed an RPC port in the clear")
	}
	windows := map[string]bool{}
	for _, b := range bodies {
		for i := 0; i+32 <= len(b); i += 16 {
			windows[string(b[i:i+32])] = true
		}
	}
	for i := 0; i+32 <= len(wire); i++ {
		if windows[string(wire[i:i+32])] {
			t.Fatalf("object bytes crossed an RPC port in the clear (at %d of %d captured)", i, len(wire))
		}
	}
	t.Logf("%d bytes captured on the RPC ports", len(wire))
}

// captureLoopback records the TCP payloads to and from ports on lo until
// the function it returns is called, which returns them.
func captureLoopback(t *testing.T, ports map[uint16]bool) func() []byte {
	t.Helper()
	const ethPAll = 0x0003
	proto := int(ethPAll>>8 | ethPAll<<8&0xff00)
	fd, err := syscall.Socket(syscall.AF_PACKET, syscall.SOCK_RAW, proto)
	if err != nil {
		t.Skipf("no packet capture here (%v)", err)
	}
	lo, err := net.InterfaceByName("lo")
	if err != nil {
		syscall.Close(fd)
		t.Skipf("no loopback interface: %v", err)
	}
	if err := syscall.Bind(fd, &syscall.SockaddrLinklayer{Protocol: uint16(proto), Ifindex: lo.Index}); err != nil {
		syscall.Close(fd)
		t.Skipf("no packet capture on lo (%v)", err)
	}
	// A busy machine drops what the reader does not take in time: ask for
	// a buffer past rmem_max (root may), else as much as allowed.
	if syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUFFORCE, 64<<20) != nil {
		_ = syscall.SetsockoptInt(fd, syscall.SOL_SOCKET, syscall.SO_RCVBUF, 64<<20)
	}
	tv := syscall.NsecToTimeval(int64(100 * time.Millisecond))
	_ = syscall.SetsockoptTimeval(fd, syscall.SOL_SOCKET, syscall.SO_RCVTIMEO, &tv)
	var stop atomic.Bool
	var out bytes.Buffer
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 1<<16+128)
		for !stop.Load() {
			n, _, err := syscall.Recvfrom(fd, buf, 0)
			if err != nil || n < 14+20 {
				continue
			}
			// Ethernet (14), IPv4 (IHL), TCP (data offset): keep the payload
			// of segments from or to an RPC port.
			ip := buf[14:n]
			if ip[0]>>4 != 4 || ip[9] != syscall.IPPROTO_TCP {
				continue
			}
			tcp := ip[int(ip[0]&0xf)*4:]
			if len(tcp) < 20 {
				continue
			}
			src, dst := binary.BigEndian.Uint16(tcp), binary.BigEndian.Uint16(tcp[2:])
			if ports[src] || ports[dst] {
				out.Write(tcp[int(tcp[12]>>4)*4:])
			}
		}
	}()
	var once sync.Once
	finish := func() []byte {
		once.Do(func() {
			stop.Store(true)
			<-done
			syscall.Close(fd)
		})
		return out.Bytes()
	}
	t.Cleanup(func() { finish() })
	return finish
}

// testUnauthenticatedMemory floods a node's RPC port from clients that
// hold no certificate from the cluster secret: 8 HTTP POSTs of 80 MiB
// (the old admin path read whole bodies before checking them), 8
// connections of 80 MiB of garbage, 8 TLS clients without a certificate
// and 8 with one from another CA, each sending 80 MiB. The node's resident
// memory must stay within 64 MiB of where it was, and it must serve on.
func testUnauthenticatedMemory(t *testing.T, node *clusterNode) {
	node.mu.Lock()
	pid := node.cmd.Process.Pid
	node.mu.Unlock()
	base := rss(t, pid)
	start := time.Now()
	stranger := strangerCert(t)
	const body = 80 << 20
	var wg sync.WaitGroup
	var accepted atomic.Int64 // bytes the node's socket took
	send := func(c net.Conn, head []byte) {
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(2 * time.Minute))
		if _, err := c.Write(head); err != nil {
			return
		}
		chunk := make([]byte, 1<<20)
		_, _ = rand.Read(chunk)
		for sent := 0; sent < body; sent += len(chunk) {
			n, err := c.Write(chunk)
			accepted.Add(int64(n))
			if err != nil {
				return
			}
		}
	}
	for i := range 32 {
		wg.Go(func() {
			switch i % 4 {
			case 0:
				c, err := net.Dial("tcp", node.rpc)
				if err == nil {
					send(c, fmt.Appendf(nil, "POST /rpc/admin.key.create HTTP/1.1\r\nHost: %s\r\nContent-Type: application/octet-stream\r\nContent-Length: %d\r\n\r\n", node.rpc, body))
				}
			case 1:
				c, err := net.Dial("tcp", node.rpc)
				if err == nil {
					send(c, nil)
				}
			case 2, 3:
				cfg := &tls.Config{InsecureSkipVerify: true, MinVersion: tls.VersionTLS13, NextProtos: []string{"ringstore-rpc/1"}}
				if i%4 == 3 {
					cfg.Certificates = []tls.Certificate{stranger}
				}
				c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", node.rpc, cfg)
				if err == nil {
					send(c, nil)
				}
			}
		})
	}
	peak := base
	done := make(chan struct{})
	go func() { wg.Wait(); close(done) }()
	for sampling := true; sampling; {
		select {
		case <-done:
			sampling = false
		case <-time.After(20 * time.Millisecond):
		}
		peak = max(peak, rss(t, pid))
	}
	after := rss(t, pid)
	t.Logf("node resident memory: %d MiB before, %d MiB at the peak of the flood, %d MiB after; its sockets took %d MiB of the %d MiB sent",
		base>>20, peak>>20, after>>20, accepted.Load()>>20, int64(32*body)>>20)
	if peak-base > 64<<20 {
		t.Errorf("an unauthenticated flood grew the node by %d MiB", (peak-base)>>20)
	}
	if out, err := adminTry(node, "status"); err != nil {
		t.Fatalf("node after the flood: %v\n%s", err, out)
	}
	// Every connection was refused and counted, and the log has a line
	// per ten seconds of refusals, not one per connection.
	if n, err := strconv.ParseFloat(metricValue(t, node.metrics, "ringstore_rpc_handshakes_refused_total"), 64); err != nil || n < 32 {
		t.Errorf("refused handshakes counted: %v (%v), want at least 32", n, err)
	}
	logged, err := os.ReadFile(node.LogPath)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Count(string(logged), "rpc connection refused")
	if allowed := 2 + int(time.Since(start)/(10*time.Second)); lines > allowed {
		t.Errorf("%d log lines for 32 refused connections in %v, want at most %d", lines, time.Since(start), allowed)
	}
}

// rss is the resident memory of process pid, in bytes.
func rss(t *testing.T, pid int) int64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		t.Fatalf("resident memory: %v", err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				t.Fatalf("VmRSS %q: %v", v, err)
			}
			return kb << 10
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// strangerCert is a certificate from a CA that is not the cluster's.
func strangerCert(t *testing.T) tls.Certificate {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(7), Subject: pkix.Name{CommonName: "n1", OrganizationalUnit: []string{"node"}},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		t.Fatal(err)
	}
	return tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv}
}

// testWrongSecret: the admin tool with another secret, or a weak one,
// fails and says why, changing nothing; a node with another secret cannot
// join; the RPC port serves no plain HTTP, metrics included.
func testWrongSecret(t *testing.T, nodes []*clusterNode) {
	before := keyIDs(t, nodes[0])
	other := "PsaKtMyAWrFDFcGdttUJLcFTaZ+LQVa8iKBTMPQeX3E=" // another 32 random bytes
	out, err := adminAt(nodes[0].rpc, other, "key", "create", "intruder")
	if err == nil || !strings.Contains(out, "secret") {
		t.Fatalf("admin with another secret: %v\n%s", err, out)
	}
	t.Logf("admin with another secret: %s", strings.TrimSpace(out))
	out, err = adminAt(nodes[0].rpc, "integration-cluster-secret", "status")
	if err == nil || !strings.Contains(out, "openssl rand -base64 32") {
		t.Fatalf("admin with a weak secret: %v\n%s", err, out)
	}
	if got := keyIDs(t, nodes[0]); !slices.Equal(got, before) {
		t.Fatalf("keys changed by a tool with another secret: %v, were %v", got, before)
	}

	_, opts := clusterNodeOptions(t, 3, nodes[0].gossip)
	for i, kv := range opts.Env {
		if strings.HasPrefix(kv, "RINGSTORE_CLUSTER_SECRET=") {
			opts.Env[i] = "RINGSTORE_CLUSTER_SECRET=" + other
		}
	}
	s := newServer(t, opts)
	if err := s.launch(); err == nil {
		t.Fatal("a node with another secret started")
	}
	waitAlive(t, nodes, 3)

	for _, n := range nodes {
		if resp, err := http.Get("http://" + n.rpc + "/metrics"); err == nil {
			resp.Body.Close()
			t.Fatalf("the RPC port %s answered plain HTTP: %s", n.rpc, resp.Status)
		}
	}
}
