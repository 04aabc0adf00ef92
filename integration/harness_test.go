// Package integration is ringstore's end-to-end test suite.
//
// Goal: check, from the outside, that a real ringstore process speaks S3 the
// way real S3 clients expect: minio-go, aws-sdk-go-v2 (with its default
// checksum behaviour), the aws CLI (v1 and v2), s3cmd, rclone and restic;
// and that it survives crashes and malformed requests.
//
// Method: TestMain builds cmd/ringstore once; every test starts its own
// server process on a free loopback port with a temporary data directory
// (startServer) and talks to it only over HTTP, through the client
// libraries, through external tools run with exec, or through raw requests
// signed with the AWS SDK's SigV4 signer (which shares no code with the
// server's verifier). Expected behaviour is S3's, as documented in the
// Amazon S3 API reference, not whatever the server happens to do.
//
// This file is the harness: the binary, the server process, the client
// constructors, the raw-request helpers and the external-tool runner.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/md5"
	"crypto/sha256"
	"crypto/tls"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"errors"
	"flag"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awscreds "github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

var (
	flagLong = flag.Bool("ringstore.long", false, "also run the long soak tests")
	flagBin  = flag.String("ringstore.bin", "", "test this ringstore binary instead of building one")
)

// Fixed test credentials, given to every server through its environment.
const (
	testAccessKey = "RSTESTACCESSKEY00001"
	testSecretKey = "rs-test-secret/key+0123456789abcdefghijkl"
	testRegion    = "us-east-1"
)

// serverBin is the ringstore binary under test.
var serverBin string

func TestMain(m *testing.M) {
	flag.Parse()
	code := func() int {
		if *flagBin != "" {
			serverBin = *flagBin
			return m.Run()
		}
		dir, err := os.MkdirTemp("", "ringstore-it-bin-")
		if err != nil {
			fmt.Fprintln(os.Stderr, "integration:", err)
			return 1
		}
		defer os.RemoveAll(dir)
		serverBin = filepath.Join(dir, "ringstore")
		goBin, err := exec.LookPath("go")
		if err != nil {
			goBin = filepath.Join(os.Getenv("GOROOT"), "bin", "go")
		}
		build := exec.Command(goBin, "build", "-o", serverBin, "github.com/ringstore/ringstore/cmd/ringstore")
		build.Stdout, build.Stderr = os.Stderr, os.Stderr
		if err := build.Run(); err != nil {
			fmt.Fprintln(os.Stderr, "integration: building ringstore:", err)
			return 1
		}
		return m.Run()
	}()
	os.Exit(code)
}

// ---------------------------------------------------------------------------
// The server process.

// ServerOptions configures startServer. The zero value is a fresh server.
type ServerOptions struct {
	// DataDir reuses a data directory; empty means a new temporary one.
	DataDir string
	// Domain enables virtual-hosted-style requests (--domain).
	Domain string
	// Region is --region; empty leaves the server's default (us-east-1).
	Region string
	// LogLevel is --log-level; empty means debug (the log is only shown
	// when a test fails).
	LogLevel string
	// Env adds environment variables (NAME=value) to the process.
	Env []string
	// Host is the loopback address to serve S3 on; empty means 127.0.0.1.
	Host string
	// TLSCert and TLSKey are --tls-cert and --tls-key: S3 over HTTPS.
	TLSCert, TLSKey string
}

// Server is one ringstore process under test.
type Server struct {
	t       testing.TB
	opts    ServerOptions
	Addr    string // 127.0.0.1:PORT
	DataDir string
	LogPath string

	mu      sync.Mutex
	cmd     *exec.Cmd
	done    chan struct{} // closed when cmd has exited
	waitErr error
	killed  bool // the current process was SIGKILLed on purpose
}

// Endpoint is the server's base URL.
func (s *Server) Endpoint() string {
	if s.opts.TLSCert != "" {
		return "https://" + s.Addr
	}
	return "http://" + s.Addr
}

// Signal sends sig to the running process.
func (s *Server) Signal(sig os.Signal) {
	s.t.Helper()
	s.mu.Lock()
	cmd := s.cmd
	s.mu.Unlock()
	if err := cmd.Process.Signal(sig); err != nil {
		s.t.Fatalf("signal %v: %v", sig, err)
	}
}

// Pid is the running process's id.
func (s *Server) Pid() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.cmd.Process.Pid
}

// Port is the server's TCP port.
func (s *Server) Port() string { _, p, _ := net.SplitHostPort(s.Addr); return p }

// startServer starts a ringstore process and stops it (SIGTERM, then a check
// that it exited 0) when the test ends. The log is shown if the test failed.
func startServer(t testing.TB, opts ServerOptions) *Server {
	t.Helper()
	s := newServer(t, opts)
	if err := s.launch(); err != nil {
		s.dumpLog(40)
		t.Fatalf("start ringstore: %v", err)
	}
	return s
}

// startServers starts several ringstore processes at once and returns when
// all are ready: nodes of a new cluster formed with --bootstrap-expect are
// ready only once all of them are up.
func startServers(t testing.TB, opts []ServerOptions) []*Server {
	t.Helper()
	return startServersLater(t, opts)()
}

// startServersLater starts servers in the background; the function it
// returns waits for them to be ready.
func startServersLater(t testing.TB, opts []ServerOptions) func() []*Server {
	servers := make([]*Server, len(opts))
	errs := make([]error, len(opts))
	var wg sync.WaitGroup
	for i, o := range opts {
		servers[i] = newServer(t, o)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs[i] = servers[i].launch()
		}()
	}
	return func() []*Server {
		wg.Wait()
		for i, err := range errs {
			if err != nil {
				servers[i].dumpLog(40)
				t.Fatalf("start ringstore: %v", err)
			}
		}
		return servers
	}
}

// newServer prepares a server, its data and log, and its stop at the end
// of the test.
func newServer(t testing.TB, opts ServerOptions) *Server {
	s := &Server{t: t, opts: opts, DataDir: opts.DataDir}
	if s.DataDir == "" {
		s.DataDir = filepath.Join(t.TempDir(), "data")
	}
	logDir := t.TempDir()
	s.LogPath = filepath.Join(logDir, "ringstore.log")
	t.Cleanup(func() {
		s.stop(true)
		if t.Failed() {
			s.dumpLog(15)
		}
	})
	return s
}

// launch starts the process on a free port, trying another when the port
// was taken meanwhile.
func (s *Server) launch() error {
	var err error
	for attempt := 0; attempt < 5; attempt++ {
		host := s.opts.Host
		if host == "" {
			host = "127.0.0.1"
		}
		s.Addr = host + ":" + freePort(s.t)
		if err = s.start(); err == nil || !strings.Contains(s.logTail(20), "address already in use") {
			return err
		}
	}
	return err
}

func freePort(t testing.TB) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatalf("free port: %v", err)
	}
	defer ln.Close()
	_, p, _ := net.SplitHostPort(ln.Addr().String())
	return p
}

// readyWriter copies the process output to the log file and closes ready
// when the "ringstore ready" line has gone by.
type readyWriter struct {
	mu    sync.Mutex
	f     *os.File
	line  []byte
	ready chan struct{}
	once  sync.Once
}

func (w *readyWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	_, _ = w.f.Write(p)
	for _, c := range p {
		if c == '\n' {
			if bytes.Contains(w.line, []byte("ringstore ready")) {
				w.once.Do(func() { close(w.ready) })
			}
			w.line = w.line[:0]
			continue
		}
		if len(w.line) < 4096 {
			w.line = append(w.line, c)
		}
	}
	return len(p), nil
}

// start launches the process on s.Addr and waits (at most 10 s) until it
// has logged "ringstore ready" and accepts connections.
func (s *Server) start() error {
	f, err := os.OpenFile(s.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	fmt.Fprintf(f, "=== harness: starting ringstore on %s at %s\n", s.Addr, time.Now().Format(time.RFC3339Nano))
	args := []string{"server", "--data", s.DataDir, "--s3-addr", s.Addr}
	if s.opts.Domain != "" {
		args = append(args, "--domain", s.opts.Domain)
	}
	if s.opts.Region != "" {
		args = append(args, "--region", s.opts.Region)
	}
	if s.opts.TLSCert != "" {
		args = append(args, "--tls-cert", s.opts.TLSCert, "--tls-key", s.opts.TLSKey)
	}
	level := s.opts.LogLevel
	if level == "" {
		level = "debug"
	}
	args = append(args, "--log-level", level)
	cmd := exec.Command(serverBin, args...)
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "RINGSTORE_") {
			env = append(env, kv)
		}
	}
	env = append(env, "RINGSTORE_ACCESS_KEY_ID="+testAccessKey, "RINGSTORE_SECRET_ACCESS_KEY="+testSecretKey)
	cmd.Env = append(env, s.opts.Env...)
	rw := &readyWriter{f: f, ready: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = rw, rw
	if err := cmd.Start(); err != nil {
		f.Close()
		return err
	}
	done := make(chan struct{})
	s.mu.Lock()
	s.cmd, s.done, s.killed, s.waitErr = cmd, done, false, nil
	s.mu.Unlock()
	go func() {
		err := cmd.Wait()
		s.mu.Lock()
		s.waitErr = err
		s.mu.Unlock()
		f.Close()
		close(done)
	}()
	select {
	case <-rw.ready:
	case <-done:
		return fmt.Errorf("ringstore exited before it was ready: %v", s.exitErr())
	case <-time.After(10 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		return errors.New("ringstore not ready within 10s")
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", s.Addr, time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("ringstore logged ready but %s refuses connections: %v", s.Addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (s *Server) exitErr() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.waitErr
}

func (s *Server) running() bool {
	s.mu.Lock()
	done := s.done
	s.mu.Unlock()
	if done == nil {
		return false
	}
	select {
	case <-done:
		return false
	default:
		return true
	}
}

// stop sends SIGTERM and waits; with check it reports a non-zero exit or a
// process that did not drain in time as test errors.
func (s *Server) stop(check bool) {
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	select {
	case <-done:
		return
	default:
	}
	_ = cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-done:
		if err := s.exitErr(); err != nil && check {
			s.t.Errorf("ringstore did not exit cleanly on SIGTERM: %v", err)
		}
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		if check {
			s.t.Errorf("ringstore did not exit within 20s of SIGTERM")
		}
	}
}

// Stop stops the server gracefully (SIGTERM) and checks it exited 0.
func (s *Server) Stop() { s.t.Helper(); s.stop(true) }

// Kill stops the server with SIGKILL, as a crash would.
func (s *Server) Kill() {
	s.t.Helper()
	s.mu.Lock()
	cmd, done := s.cmd, s.done
	s.killed = true
	s.mu.Unlock()
	if cmd == nil {
		return
	}
	_ = cmd.Process.Signal(syscall.SIGKILL)
	<-done
}

// Restart stops the server gracefully if it runs and starts it again on the
// same port and data directory.
func (s *Server) Restart() {
	s.t.Helper()
	if s.running() {
		s.Stop()
	}
	var err error
	for i := 0; i < 50; i++ { // the port may linger for a moment
		if err = s.start(); err == nil || !strings.Contains(s.logTail(5), "address already in use") {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.dumpLog(40)
		s.t.Fatalf("restart ringstore: %v", err)
	}
}

func (s *Server) logTail(n int) string {
	b, err := os.ReadFile(s.LogPath)
	if err != nil {
		return ""
	}
	lines := strings.Split(strings.TrimRight(string(b), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	for i, l := range lines {
		if len(l) > 240 {
			lines[i] = l[:240] + "..."
		}
	}
	return strings.Join(lines, "\n")
}

// errorsSinceStart returns the ERROR-level and panic lines the current
// process has logged (since the last start).
func (s *Server) errorsSinceStart() []string {
	log := s.Log()
	if i := strings.LastIndex(log, "=== harness: starting"); i >= 0 {
		log = log[i:]
	}
	var out []string
	for _, l := range strings.Split(log, "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "panic") {
			out = append(out, l)
		}
	}
	return out
}

// Log returns the whole server log so far.
func (s *Server) Log() string {
	b, _ := os.ReadFile(s.LogPath)
	return string(b)
}

// dumpLog shows the log's first error lines (which name the cause of a
// 500) and its last n lines.
func (s *Server) dumpLog(n int) {
	var errs []string
	for _, l := range strings.Split(s.Log(), "\n") {
		if strings.Contains(l, "level=ERROR") || strings.Contains(l, "panic") {
			if len(l) > 400 {
				l = l[:400] + "..."
			}
			errs = append(errs, l)
			if len(errs) == 8 {
				break
			}
		}
	}
	if len(errs) > 0 {
		s.t.Logf("first error lines of the ringstore log:\n%s", strings.Join(errs, "\n"))
	}
	s.t.Logf("last %d lines of the ringstore log (%s):\n%s", n, s.LogPath, s.logTail(n))
}

// ---------------------------------------------------------------------------
// Small helpers.

var bucketSeq atomic.Int64

var nonName = regexp.MustCompile(`[^a-z0-9]+`)

// bucketName returns a valid bucket name unique in this test run.
func bucketName(t testing.TB) string {
	n := strings.Trim(nonName.ReplaceAllString(strings.ToLower(t.Name()), "-"), "-")
	n = strings.TrimPrefix(n, "test")
	n = strings.Trim(n, "-")
	if len(n) > 40 {
		n = strings.Trim(n[len(n)-40:], "-")
	}
	if n == "" {
		n = "b"
	}
	return fmt.Sprintf("it-%s-%d", n, bucketSeq.Add(1))
}

// testCtx is a context that ends with the test or after d.
func testCtx(t testing.TB, d time.Duration) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), d)
	t.Cleanup(cancel)
	return ctx
}

var seedSeq atomic.Uint64

// randomBytes returns n pseudo-random bytes (incompressible, and different
// on every call).
func randomBytes(n int) []byte {
	r := rand.NewChaCha8([32]byte{byte(seedSeq.Add(1)), byte(time.Now().UnixNano()), byte(time.Now().UnixNano() >> 8)})
	b := make([]byte, n)
	_, _ = r.Read(b)
	return b
}

func sha256Hex(b []byte) string { s := sha256.Sum256(b); return hex.EncodeToString(s[:]) }
func md5Hex(b []byte) string    { s := md5.Sum(b); return hex.EncodeToString(s[:]) }

// writeFile writes data to dir/rel, creating directories.
func writeFile(t testing.TB, dir, rel string, data []byte) string {
	t.Helper()
	p := filepath.Join(dir, filepath.FromSlash(rel))
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// treeDigest maps every regular file under dir (slash-separated relative
// path) to the SHA-256 of its content.
func treeDigest(t testing.TB, dir string) map[string]string {
	t.Helper()
	out := map[string]string{}
	err := filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		if !info.Mode().IsRegular() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out[filepath.ToSlash(rel)] = sha256Hex(b)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// compareTrees fails the test unless got and want hold the same files with
// the same content.
func compareTrees(t testing.TB, want, got map[string]string) {
	t.Helper()
	var diffs []string
	for k, v := range want {
		if g, ok := got[k]; !ok {
			diffs = append(diffs, "missing "+k)
		} else if g != v {
			diffs = append(diffs, "content differs: "+k)
		}
	}
	for k := range got {
		if _, ok := want[k]; !ok {
			diffs = append(diffs, "unexpected "+k)
		}
	}
	if len(diffs) > 0 {
		slices.Sort(diffs)
		if len(diffs) > 10 {
			diffs = append(diffs[:10], fmt.Sprintf("... and %d more", len(diffs)-10))
		}
		t.Errorf("trees differ:\n  %s", strings.Join(diffs, "\n  "))
	}
}

// ---------------------------------------------------------------------------
// Clients.

// minioClient returns a minio-go client for the server, path-style.
func minioClient(t testing.TB, s *Server) *minio.Client {
	return minioClientWith(t, s, testAccessKey, testSecretKey)
}

func minioClientWith(t testing.TB, s *Server, access, secret string) *minio.Client {
	t.Helper()
	c, err := minio.New(s.Addr, &minio.Options{
		Creds:        miniocreds.NewStaticV4(access, secret, ""),
		Secure:       false,
		Region:       testRegion,
		BucketLookup: minio.BucketLookupPath,
		MaxRetries:   1,
	})
	if err != nil {
		t.Fatalf("minio.New: %v", err)
	}
	return c
}

// headerLog records the request headers a client sent, so tests can check
// what the SDK's defaults actually put on the wire.
type headerLog struct {
	mu   sync.Mutex
	reqs []http.Header
}

func (l *headerLog) add(h http.Header) {
	l.mu.Lock()
	l.reqs = append(l.reqs, h.Clone())
	l.mu.Unlock()
}

// last returns the headers of the last request sent.
func (l *headerLog) last() http.Header {
	l.mu.Lock()
	defer l.mu.Unlock()
	if len(l.reqs) == 0 {
		return http.Header{}
	}
	return l.reqs[len(l.reqs)-1]
}

type recordingTransport struct {
	next http.RoundTripper
	log  *headerLog
}

// hostHeader is the pseudo-header under which headerLog records the host a
// request was sent to.
const hostHeader = "X-Test-Url-Host"

func (rt recordingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	h := r.Header.Clone()
	h.Set(hostHeader, r.URL.Host)
	rt.log.add(h)
	return rt.next.RoundTrip(r)
}

// awsOptions configures awsClient.
type awsOptions struct {
	// Endpoint overrides the base endpoint (default s.Endpoint()).
	Endpoint string
	// VirtualHost: bucket in the host name instead of the path.
	VirtualHost bool
	// Transport overrides the HTTP transport.
	Transport http.RoundTripper
	// Access and Secret override the credentials.
	Access, Secret string
}

// awsClient returns an aws-sdk-go-v2 S3 client with the SDK's default
// settings (checksums included: RequestChecksumCalculation WhenSupported)
// except the endpoint, path-style addressing, static credentials, the region
// and a single attempt (no retries, so failures show as they are). The
// headers it sends are recorded.
func awsClient(t testing.TB, s *Server, o awsOptions) (*s3.Client, *headerLog) {
	t.Helper()
	endpoint := o.Endpoint
	if endpoint == "" {
		endpoint = s.Endpoint()
	}
	access, secret := testAccessKey, testSecretKey
	if o.Access != "" {
		access, secret = o.Access, o.Secret
	}
	var base http.RoundTripper = http.DefaultTransport.(*http.Transport).Clone()
	if o.Transport != nil {
		base = o.Transport
	}
	log := &headerLog{}
	hc := &http.Client{Transport: recordingTransport{next: base, log: log}, Timeout: 2 * time.Minute}
	// These are the values config.LoadDefaultConfig gives an application
	// that sets nothing (it is not called here because it also reads the
	// machine's AWS_* variables and shared files): checksums are computed
	// and validated "when supported", i.e. on every PutObject.
	cfg := aws.Config{
		Region:                     testRegion,
		Credentials:                awscreds.NewStaticCredentialsProvider(access, secret, ""),
		HTTPClient:                 hc,
		RetryMaxAttempts:           1,
		RequestChecksumCalculation: aws.RequestChecksumCalculationWhenSupported,
		ResponseChecksumValidation: aws.ResponseChecksumValidationWhenSupported,
	}
	c := s3.NewFromConfig(cfg, func(so *s3.Options) {
		so.BaseEndpoint = aws.String(endpoint)
		so.UsePathStyle = !o.VirtualHost
	})
	return c, log
}

// awsVHostClient returns an aws-sdk-go-v2 client using virtual-hosted-style
// addressing against a server started with Domain: requests go to
// bucket.DOMAIN:PORT, and every host name is dialled at the server, so no
// DNS is needed.
func awsVHostClient(t testing.TB, s *Server) (*s3.Client, *headerLog) {
	t.Helper()
	if s.opts.Domain == "" {
		t.Fatal("awsVHostClient needs a server started with a Domain")
	}
	return awsClient(t, s, awsOptions{
		Endpoint:    "http://" + s.opts.Domain + ":" + s.Port(),
		VirtualHost: true,
		Transport:   vhostTransport(s),
	})
}

// vhostTransport dials the server whatever host name a request names.
func vhostTransport(s *Server) *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	d := &net.Dialer{Timeout: 5 * time.Second}
	tr.DialContext = func(ctx context.Context, network, _ string) (net.Conn, error) {
		return d.DialContext(ctx, network, s.Addr)
	}
	return tr
}

// tlsFront puts a TLS-terminating reverse proxy in front of the server and
// returns its https endpoint and a transport that trusts it. The AWS SDK
// sends its default CRC32 checksums as aws-chunked trailers only over TLS;
// this lets the suite exercise that path against the plain-HTTP server.
// The proxy keeps the Host header, so signatures stay valid.
func tlsFront(t testing.TB, s *Server) (endpoint string, tr *http.Transport) {
	t.Helper()
	target, _ := url.Parse(s.Endpoint())
	rp := httputil.NewSingleHostReverseProxy(target)
	rp.ErrorLog = nil
	ts := httptest.NewTLSServer(rp)
	t.Cleanup(ts.Close)
	tr = ts.Client().Transport.(*http.Transport).Clone()
	tr.TLSClientConfig = &tls.Config{RootCAs: ts.Client().Transport.(*http.Transport).TLSClientConfig.RootCAs}
	return ts.URL, tr
}

// ---------------------------------------------------------------------------
// Raw signed requests.

// s3Escape escapes a key for a URL path the way S3 clients do: everything
// but unreserved characters and '/'.
func s3Escape(key string) string {
	var sb strings.Builder
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' ||
			c == '-' || c == '_' || c == '.' || c == '~' || c == '/' {
			sb.WriteByte(c)
		} else {
			fmt.Fprintf(&sb, "%%%02X", c)
		}
	}
	return sb.String()
}

// rawReq describes a raw request to the server.
type rawReq struct {
	Method string
	Bucket string // "" for the service
	Key    string
	Query  string // raw query, e.g. "delete" or "list-type=2&prefix=a"
	Header http.Header
	Body   []byte
	// PayloadHash overrides x-amz-content-sha256 (default: SHA-256 of Body).
	PayloadHash string
	// Anonymous sends the request unsigned.
	Anonymous bool
	// Time is the signing time (default now).
	Time time.Time
}

// newRaw builds the *http.Request for q, signed with the AWS SDK's signer.
func (s *Server) newRaw(t testing.TB, q rawReq) *http.Request {
	t.Helper()
	path := "/"
	if q.Bucket != "" {
		path += q.Bucket
		if q.Key != "" {
			path += "/" + s3Escape(q.Key)
		}
	}
	u := &url.URL{Scheme: "http", Host: s.Addr, RawQuery: q.Query}
	u.Path, _ = url.PathUnescape(path)
	u.RawPath = path
	r, err := http.NewRequest(q.Method, u.String(), bytes.NewReader(q.Body))
	if err != nil {
		t.Fatalf("raw request: %v", err)
	}
	if q.Body == nil {
		r.Body, r.ContentLength = http.NoBody, 0
	}
	for k, vs := range q.Header {
		for _, v := range vs {
			r.Header.Add(k, v)
		}
	}
	if q.Anonymous {
		return r
	}
	signRaw(t, r, q.PayloadHash, q.Body, q.Time)
	return r
}

// signRaw signs r with the test credentials (SigV4 header form). An empty
// payloadHash means the SHA-256 of body.
func signRaw(t testing.TB, r *http.Request, payloadHash string, body []byte, at time.Time) {
	t.Helper()
	if payloadHash == "" {
		payloadHash = sha256Hex(body)
	}
	if at.IsZero() {
		at = time.Now()
	}
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	err := signer.SignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey},
		r, payloadHash, "s3", testRegion, at)
	if err != nil {
		t.Fatalf("sign: %v", err)
	}
}

// presignRaw returns a presigned URL for method on bucket/key, signed at
// time at and valid for expires.
func (s *Server) presignRaw(t testing.TB, method, bucket, key, query string, at time.Time, expires time.Duration) string {
	t.Helper()
	path := "/" + bucket + "/" + s3Escape(key)
	u := &url.URL{Scheme: "http", Host: s.Addr, RawQuery: query}
	u.Path, _ = url.PathUnescape(path)
	u.RawPath = path
	qv := u.Query()
	qv.Set("X-Amz-Expires", strconv.Itoa(int(expires/time.Second)))
	u.RawQuery = qv.Encode()
	r, _ := http.NewRequest(method, u.String(), nil)
	signer := v4.NewSigner(func(o *v4.SignerOptions) { o.DisableURIPathEscaping = true })
	signed, _, err := signer.PresignHTTP(context.Background(), aws.Credentials{AccessKeyID: testAccessKey, SecretAccessKey: testSecretKey},
		r, "UNSIGNED-PAYLOAD", "s3", testRegion, at)
	if err != nil {
		t.Fatalf("presign: %v", err)
	}
	return signed
}

// rawClient is the HTTP client for raw requests: no redirects, no
// transparent gzip.
var rawClient = &http.Client{
	Transport: &http.Transport{DisableCompression: true, Proxy: nil, MaxIdleConnsPerHost: 16},
	Timeout:   2 * time.Minute,
	CheckRedirect: func(*http.Request, []*http.Request) error {
		return http.ErrUseLastResponse
	},
}

// rawResp is a response read whole.
type rawResp struct {
	Status int
	Header http.Header
	Body   []byte
}

func (r rawResp) String() string {
	b := string(r.Body)
	if strings.HasPrefix(b, "<?xml") {
		if i := strings.Index(b, "?>"); i >= 0 {
			b = b[i+2:]
		}
	}
	b = strings.TrimSpace(strings.ReplaceAll(b, "\n", " "))
	if len(b) > 400 {
		b = b[:400] + "..."
	}
	return fmt.Sprintf("%d %s", r.Status, b)
}

// s3Error is an S3 error document.
type s3Error struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	RequestID string   `xml:"RequestId"`
	HostID    string   `xml:"HostId"`
	Resource  string   `xml:"Resource"`
	Key       string   `xml:"Key"`
	Bucket    string   `xml:"BucketName"`
}

// errorDoc parses the body as an S3 error document (zero value if not one).
func (r rawResp) errorDoc() s3Error {
	var e s3Error
	_ = xml.Unmarshal(r.Body, &e)
	return e
}

// do sends a raw request and reads the response.
func (s *Server) do(t testing.TB, q rawReq) rawResp {
	t.Helper()
	return doHTTP(t, s.newRaw(t, q))
}

func doHTTP(t testing.TB, r *http.Request) rawResp {
	t.Helper()
	resp, err := rawClient.Do(r)
	if err != nil {
		t.Fatalf("%s %s: %v", r.Method, r.URL, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: reading body: %v", r.Method, r.URL, err)
	}
	return rawResp{Status: resp.StatusCode, Header: resp.Header, Body: b}
}

// expectError checks that a raw response is the S3 error code with status.
func expectError(t testing.TB, what string, r rawResp, status int, code string) {
	t.Helper()
	e := r.errorDoc()
	if r.Status != status || e.Code != code {
		t.Errorf("%s: got %s, want %d %s", what, r, status, code)
	}
}

// mustCreateBucket creates a bucket with a raw request.
func (s *Server) mustCreateBucket(t testing.TB, bucket string) {
	t.Helper()
	if r := s.do(t, rawReq{Method: "PUT", Bucket: bucket}); r.Status != 200 {
		t.Fatalf("create bucket %s: %s", bucket, r)
	}
}

// mustPut stores an object with a raw request.
func (s *Server) mustPut(t testing.TB, bucket, key string, body []byte) {
	t.Helper()
	if r := s.do(t, rawReq{Method: "PUT", Bucket: bucket, Key: key, Body: body}); r.Status != 200 {
		t.Fatalf("put %s/%s: %s", bucket, key, r)
	}
}

// objectStatus returns the status of a HEAD of bucket/key.
func (s *Server) objectStatus(t testing.TB, bucket, key string) int {
	t.Helper()
	return s.do(t, rawReq{Method: "HEAD", Bucket: bucket, Key: key}).Status
}

// listKeys lists every key of a bucket (ListObjectsV2, raw).
func (s *Server) listKeys(t testing.TB, bucket, prefix string) []string {
	t.Helper()
	var keys []string
	token := ""
	for page := 0; page < 10000; page++ {
		q := url.Values{"list-type": {"2"}, "prefix": {prefix}, "encoding-type": {"url"}}
		if token != "" {
			q.Set("continuation-token", token)
		}
		r := s.do(t, rawReq{Method: "GET", Bucket: bucket, Query: q.Encode()})
		if r.Status != 200 {
			t.Fatalf("list %s: %s", bucket, r)
		}
		var res struct {
			Contents  []struct{ Key string } `xml:"Contents"`
			Truncated bool                   `xml:"IsTruncated"`
			Next      string                 `xml:"NextContinuationToken"`
		}
		if err := xml.Unmarshal(r.Body, &res); err != nil {
			t.Fatalf("list %s: %v", bucket, err)
		}
		for _, c := range res.Contents {
			k, err := url.QueryUnescape(c.Key)
			if err != nil {
				t.Fatalf("list %s: key %q not url-encoded: %v", bucket, c.Key, err)
			}
			keys = append(keys, k)
		}
		if !res.Truncated {
			return keys
		}
		token = res.Next
	}
	t.Fatalf("list %s: too many pages", bucket)
	return nil
}

// ---------------------------------------------------------------------------
// External tools.

// needTool returns the path of an external tool, or skips the test when it
// is missing (fails instead under CI=true, where CI installs every tool).
func needTool(t testing.TB, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err == nil {
		return p
	}
	if filepath.IsAbs(name) {
		if _, err := os.Stat(name); err == nil {
			return name
		}
	}
	if os.Getenv("CI") == "true" {
		t.Fatalf("%s is not installed; CI must install it", name)
	}
	t.Skipf("%s is not installed: skipping (install it to run this test)", name)
	return ""
}

// toolEnv is the environment for external tools: the test's own, without
// any AWS_, RCLONE_ or RESTIC_ settings of the machine (and without
// AWS_CA_BUNDLE, which rclone refuses to start with), plus extra.
func toolEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		name, _, _ := strings.Cut(kv, "=")
		switch {
		case strings.HasPrefix(name, "AWS_"), strings.HasPrefix(name, "RCLONE_"), strings.HasPrefix(name, "RESTIC_"):
			continue
		}
		env = append(env, kv)
	}
	return append(env, extra...)
}

// awsEnv is toolEnv with the test credentials for AWS-style tools, and
// config files pointed at dir so the machine's own do not interfere.
func awsEnv(dir string, extra ...string) []string {
	return toolEnv(append([]string{
		"AWS_ACCESS_KEY_ID=" + testAccessKey,
		"AWS_SECRET_ACCESS_KEY=" + testSecretKey,
		"AWS_DEFAULT_REGION=" + testRegion,
		"AWS_REGION=" + testRegion,
		"AWS_CONFIG_FILE=" + filepath.Join(dir, "aws-config"),
		"AWS_SHARED_CREDENTIALS_FILE=" + filepath.Join(dir, "aws-credentials"),
		"AWS_EC2_METADATA_DISABLED=true",
		"AWS_PAGER=",
	}, extra...)...)
}

// toolRun runs an external tool and returns its stdout, or an error that
// carries the end of its stderr.
type toolRun struct {
	Bin string
	Env []string
	Dir string
	// Timeout per command; default 2 minutes.
	Timeout time.Duration
}

func (tr toolRun) run(args ...string) (string, error) {
	timeout := tr.Timeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, tr.Bin, args...)
	cmd.Env, cmd.Dir = tr.Env, tr.Dir
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	start := time.Now()
	err := cmd.Run()
	if d := time.Since(start); d > 10*time.Second && os.Getenv("RINGSTORE_IT_TIMING") != "" {
		fmt.Fprintf(os.Stderr, "slow tool command (%v): %s %s\n", d.Round(time.Millisecond), filepath.Base(tr.Bin), strings.Join(args, " "))
	}
	if err != nil {
		return stdout.String(), fmt.Errorf("%s %s: %v\n%s", filepath.Base(tr.Bin), strings.Join(args, " "), err, tail(stderr.String()+stdout.String(), 15))
	}
	return stdout.String(), nil
}

// must runs the tool and fails the test on error.
func (tr toolRun) must(t testing.TB, args ...string) string {
	t.Helper()
	out, err := tr.run(args...)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

// tail returns the last n non-empty lines of s.
func tail(s string, n int) string {
	var lines []string
	sc := bufio.NewScanner(strings.NewReader(s))
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" {
			lines = append(lines, "    "+l)
		}
	}
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// contentMD5 is the Content-MD5 header value for body.
func contentMD5(body []byte) string {
	s := md5.Sum(body)
	return base64.StdEncoding.EncodeToString(s[:])
}
