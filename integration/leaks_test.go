// leaks_test.go: what the server prints and logs.
//
// Goal: no secret reaches the terminal or the log unless the server just
// generated it: --help shows no secret taken from the environment, the
// log of a node run through error paths holds neither the root secret,
// the cluster secret, a wrong secret a client tried, nor a presigned
// URL's signature, and no mangled formatting ("%!"); floods of garbage at
// the gossip port and of failed TLS handshakes at the S3 port write a
// bounded number of lines.
//
// Method: real processes, real sockets; the log is read from the file the
// harness keeps.
package integration

import (
	"crypto/tls"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

// The rate limit of repetitive log lines (docs/ARCHITECTURE.md, "Logs"):
// a kind of line writes a burst, then one line a period.
const (
	logBurst  = 5
	logPeriod = 10 * time.Second
)

func TestHelpShowsNoSecretFromEnvironment(t *testing.T) {
	t.Parallel()
	const secret = "help-test-cluster-secret-9876"
	for _, args := range [][]string{{"server", "--help"}, {"admin", "--help"}, {"admin", "status", "--help"}, {"bench", "--help"}} {
		cmd := exec.Command(serverBin, args...)
		cmd.Env = append(toolEnv(), "RINGSTORE_CLUSTER_SECRET="+secret, "RINGSTORE_SECRET_ACCESS_KEY="+secret, "AWS_SECRET_ACCESS_KEY="+secret)
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%v: %v\n%s", args, err, out)
		}
		if strings.Contains(string(out), secret) {
			t.Errorf("ringstore %s shows the secret from the environment:\n%s", strings.Join(args, " "), out)
		}
		if !strings.Contains(string(out), "--cluster-secret") && !strings.Contains(string(out), "--secret-key") {
			t.Errorf("ringstore %s lists no secret flag:\n%s", strings.Join(args, " "), out)
		}
	}
}

// checkLogClean fails the test if the log holds any of secrets or "%!".
func checkLogClean(t *testing.T, log string, secrets ...string) {
	t.Helper()
	for _, s := range secrets {
		if strings.Contains(log, s) {
			t.Errorf("the log holds a secret (%.6s...)", s)
		}
	}
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "%!") {
			t.Errorf("mangled formatting in the log: %s", l)
		}
	}
}

// TestLogsHoldNoSecrets runs a cluster node, logging at debug level,
// through requests that fail authentication, a presigned URL, an admin
// call with a wrong cluster secret, and a read whose chunk is gone.
func TestLogsHoldNoSecrets(t *testing.T) {
	t.Parallel()
	node, opts := clusterNodeOptions(t, 0, "")
	opts.LogLevel = "debug"
	node.Server = startServer(t, opts)
	s := node.Server
	b := bucketName(t)
	s.mustCreateBucket(t, b)
	s.mustPut(t, b, "small", []byte("small"))
	s.mustPut(t, b, "big", randomBytes(300<<10))

	// A wrong secret, an unknown key, a SigV2 signature, an unsigned
	// x-amz header, a malformed Authorization header.
	const wrongSecret = "wrong-secret-the-client-tried-0042"
	r := s.newRaw(t, rawReq{Method: "GET", Bucket: b, Key: "small", Anonymous: true})
	r.Header.Set("X-Amz-Content-Sha256", sha256Hex(nil))
	signWith(t, r, testAccessKey, wrongSecret)
	expectError(t, "wrong secret", doHTTP(t, r), 403, "SignatureDoesNotMatch")
	r = s.newRaw(t, rawReq{Method: "GET", Bucket: b, Key: "small", Anonymous: true})
	r.Header.Set("X-Amz-Content-Sha256", sha256Hex(nil))
	signWith(t, r, "RSUNKNOWNKEY0000", wrongSecret)
	expectError(t, "unknown key", doHTTP(t, r), 403, "InvalidAccessKeyId")
	expectError(t, "SigV2", s.do(t, rawReq{Method: "GET", Bucket: b, Key: "small", Anonymous: true,
		Header: http.Header{"Authorization": {"AWS " + testAccessKey + ":c2lnbmF0dXJl"}}}), 400, "InvalidRequest")
	r = s.newRaw(t, rawReq{Method: "PUT", Bucket: b, Key: "x", Body: []byte("x")})
	r.Header.Set("X-Amz-Meta-Added", "after signing")
	expectError(t, "unsigned header", doHTTP(t, r), 403, "AccessDenied")
	expectError(t, "malformed", s.do(t, rawReq{Method: "GET", Bucket: b, Key: "small", Anonymous: true,
		Header: http.Header{"Authorization": {"AWS4-HMAC-SHA256 Credential=" + testAccessKey + "/x, Signature=" + wrongSecret}}}), 400, "AuthorizationHeaderMalformed")

	// A presigned URL, used and expired: its signature is as good as the
	// key until it expires.
	u := s.presignRaw(t, "GET", b, "small", "", time.Now(), time.Hour)
	if got := doHTTP(t, mustRequest(t, "GET", u)); got.Status != 200 {
		t.Fatalf("presigned GET: %s", got)
	}
	sig := presignedSignature(t, u)
	old := s.presignRaw(t, "GET", b, "small", "", time.Now().Add(-2*time.Hour), time.Hour)
	expectError(t, "expired presigned", doHTTP(t, mustRequest(t, "GET", old)), 403, "AccessDenied")

	// An admin call with the wrong cluster secret.
	cmd := exec.Command(serverBin, "admin", "status", "--rpc", node.rpc)
	cmd.Env = append(toolEnv(), "RINGSTORE_CLUSTER_SECRET="+wrongSecret)
	if out, err := cmd.CombinedOutput(); err == nil {
		t.Fatalf("admin with a wrong secret succeeded:\n%s", out)
	}

	// A read whose chunks are gone from the disk: the error names no node.
	err := filepath.WalkDir(filepath.Join(s.DataDir, "blobs", "chunks"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			err = os.Remove(p)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The response has begun when the chunk is found missing: the
	// connection is closed under it.
	if resp, err := rawClient.Do(s.newRaw(t, rawReq{Method: "GET", Bucket: b, Key: "big"})); err == nil {
		n, err := io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if err == nil && resp.StatusCode == 200 {
			t.Fatalf("GET of an object whose chunks are gone: 200, %d bytes", n)
		}
	}

	s.Stop()
	log := s.Log()
	if !strings.Contains(log, "level=ERROR") && !strings.Contains(log, "level=WARN") {
		t.Fatalf("the error paths logged nothing; the test checks nothing:\n%s", s.logTail(30))
	}
	checkLogClean(t, log, testSecretKey, clusterSecret, wrongSecret, sig)
}

// signWith signs r (header form) with the given key pair.
func signWith(t *testing.T, r *http.Request, access, secret string) {
	t.Helper()
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	if err := signer.SignHTTP(t.Context(), aws.Credentials{AccessKeyID: access, SecretAccessKey: secret}, r, sha256Hex(nil), "s3", testRegion, time.Now()); err != nil {
		t.Fatal(err)
	}
}

func mustRequest(t *testing.T, method, u string) *http.Request {
	t.Helper()
	r, err := http.NewRequest(method, u, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func presignedSignature(t *testing.T, u string) string {
	t.Helper()
	pu, err := url.Parse(u)
	if err != nil {
		t.Fatal(err)
	}
	sig := pu.Query().Get("X-Amz-Signature")
	if len(sig) != 64 {
		t.Fatalf("presigned URL without a signature: %s", u)
	}
	return sig
}

// lineKind is a log line's kind as the rate limit sorts them: its message
// up to the first digit, colon, quote or parenthesis after its
// "component: " prefix.
var lineKind = regexp.MustCompile(`msg="?((?:\[[A-Z]+\] )?[a-z]+: )?([^0-9:'"(%\\]*)`)

func kindOf(line string) string {
	m := lineKind.FindStringSubmatch(line)
	if m == nil {
		return line
	}
	return m[1] + m[2]
}

// TestFloodsAreLoggedAtABoundedRate sends hundreds of garbage UDP packets
// and TCP streams at a cluster node's gossip port and hundreds of failed
// TLS handshakes at its S3 port; the log grows by a few lines per kind of
// failure and a summary of the rest, not a line each.
func TestFloodsAreLoggedAtABoundedRate(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	dir := t.TempDir()
	files := tlsFiles{filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")}
	files.write(t, ca.issue(t, 1, 24*time.Hour))
	node, opts := clusterNodeOptions(t, 0, "")
	opts.TLSCert, opts.TLSKey, opts.LogLevel = files.cert, files.key, "info"
	node.Server = startServer(t, opts)
	s := node.Server
	before := len(strings.Split(s.Log(), "\n"))

	const each = 100
	start := time.Now()
	garbage := []byte("\x16\x03\x01\x00\x05garbage that is not a gossip packet nor a TLS record")
	udp, err := net.Dial("udp", node.gossip)
	if err != nil {
		t.Fatal(err)
	}
	defer udp.Close()
	dialWrite := func(addr string, b []byte) {
		c, err := net.DialTimeout("tcp", addr, 10*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = c.Write(b)
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		_, _ = c.Read(make([]byte, 512)) // until the server answers or closes
		_ = c.Close()
	}
	for i := range 3 * each {
		_, _ = udp.Write(garbage)
		dialWrite(node.gossip, garbage)
		switch i % 3 {
		case 0: // not TLS at all
			dialWrite(s.Addr, garbage[5:])
		case 1: // plain HTTP to the HTTPS port
			dialWrite(s.Addr, []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
		case 2: // a client that does not trust the certificate
			c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.Addr, &tls.Config{RootCAs: ca.pool(), ServerName: "not-the-server"})
			if err == nil {
				c.Close()
				t.Fatal("a client trusted a certificate for another name")
			}
		}
	}
	// Wait for both summaries of what was suppressed, a period after the
	// first line each held back.
	deadline := time.Now().Add(2*logPeriod + 2*time.Minute)
	var lines []string
	for {
		lines = strings.Split(s.Log(), "\n")[before-1:]
		summaries := map[string]bool{}
		for _, l := range lines {
			if strings.Contains(l, "similar log lines suppressed") {
				for _, c := range []string{"component=memberlist", "component=http"} {
					if strings.Contains(l, c) {
						summaries[c] = true
					}
				}
			}
		}
		if len(summaries) == 2 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no summary of suppressed lines from %v:\n%s", summaries, strings.Join(lines, "\n"))
		}
		time.Sleep(200 * time.Millisecond)
	}
	elapsed := time.Since(start)

	kinds := map[string]int{}
	summaries := 0
	for _, l := range lines {
		switch {
		case strings.Contains(l, "similar log lines suppressed"):
			summaries++
		case strings.Contains(l, "component=memberlist") || strings.Contains(l, "component=http"):
			kinds[kindOf(l)]++
		}
	}
	perKind := logBurst + int(elapsed/logPeriod) + 1
	total := 0
	for k, n := range kinds {
		total += n
		if n > perKind {
			t.Errorf("%d lines of the kind %q in %v, want at most %d", n, k, elapsed.Round(time.Second), perKind)
		}
	}
	// Anything else the node logs meanwhile is a handful of lines.
	if all := len(lines); all > total+summaries+20 || total >= each {
		t.Errorf("the log grew by %d lines (%d from the floods, %d summaries) for %d garbage packets, streams and handshakes:\n%s",
			all, total, summaries, 6*each, strings.Join(lines, "\n"))
	}
	t.Logf("%d lines of %d kinds and %d summaries for %d garbage packets, streams and handshakes in %v",
		total, len(kinds), summaries, 6*each, elapsed.Round(time.Millisecond))
	checkLogClean(t, s.Log(), clusterSecret, testSecretKey)
}
