// tls_test.go: the S3 port over HTTPS (--tls-cert, --tls-key).
//
// Goal: real clients (the aws CLI v2, minio-go, aws-sdk-go-v2) work over
// HTTPS with a certificate from a private CA they are told to trust; the
// certificate rotates without a restart, on SIGHUP and by the files
// changing alone, and a bad pair written over the files is refused while
// the old certificate goes on serving; the progress timeouts still cut off
// a stalled GET and let a slow one through, with TLS between the client
// and the connection the timeouts watch.
//
// Method: each test makes a throwaway CA and server certificates with
// crypto/x509, writes them to files and starts the server with them.
// Which certificate the server serves is read from new TLS connections.
package integration

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/minio/minio-go/v7"
	miniocreds "github.com/minio/minio-go/v7/pkg/credentials"
)

// testCA is a throwaway certificate authority.
type testCA struct {
	cert *x509.Certificate
	key  *ecdsa.PrivateKey
	pem  []byte
	path string // pem, written to a file
}

func newTestCA(t *testing.T) *testCA {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "ringstore integration CA"},
		NotBefore:             time.Now().Add(-time.Hour),
		NotAfter:              time.Now().Add(24 * time.Hour),
		IsCA:                  true,
		BasicConstraintsValid: true,
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	cert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	ca := &testCA{cert: cert, key: key, pem: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})}
	ca.path = filepath.Join(t.TempDir(), "ca.pem")
	if err := os.WriteFile(ca.path, ca.pem, 0o644); err != nil {
		t.Fatal(err)
	}
	return ca
}

// certPair is a certificate and a key, in PEM.
type certPair struct{ cert, key []byte }

// issue returns a server certificate for 127.0.0.1 and localhost with the
// given serial, valid for validity from an hour ago, and its key.
func (ca *testCA) issue(t *testing.T, serial int64, validity time.Duration) certPair {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	notBefore := time.Now().Add(-time.Hour).Truncate(time.Second)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "ringstore integration"},
		NotBefore:    notBefore,
		NotAfter:     notBefore.Add(validity),
		DNSNames:     []string{"localhost"},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca.cert, &key.PublicKey, ca.key)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return certPair{pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kd})}
}

func (ca *testCA) pool() *x509.CertPool {
	p := x509.NewCertPool()
	p.AddCert(ca.cert)
	return p
}

// transport is an HTTP transport trusting only the CA.
func (ca *testCA) transport() *http.Transport {
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.Proxy = nil
	tr.TLSClientConfig = &tls.Config{RootCAs: ca.pool()}
	return tr
}

// tlsFiles are the paths the server's certificate and key are read from.
type tlsFiles struct{ cert, key string }

// write replaces the files' contents, certificate first, as a rotation
// that does not rename would.
func (f tlsFiles) write(t *testing.T, p certPair) {
	t.Helper()
	if err := os.WriteFile(f.cert, p.cert, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f.key, p.key, 0o600); err != nil {
		t.Fatal(err)
	}
}

// startTLSServer starts a server on HTTPS with a certificate of serial 1
// from ca, valid for a day.
func startTLSServer(t *testing.T, ca *testCA, opts ServerOptions) (*Server, tlsFiles) {
	t.Helper()
	dir := t.TempDir()
	files := tlsFiles{filepath.Join(dir, "server.crt"), filepath.Join(dir, "server.key")}
	files.write(t, ca.issue(t, 1, 24*time.Hour))
	opts.TLSCert, opts.TLSKey = files.cert, files.key
	return startServer(t, opts), files
}

// servedCertificate opens a new TLS connection, trusting only ca, and
// returns the certificate the server presented.
func servedCertificate(t *testing.T, s *Server, ca *testCA) *x509.Certificate {
	t.Helper()
	c, err := tls.DialWithDialer(&net.Dialer{Timeout: 10 * time.Second}, "tcp", s.Addr, &tls.Config{RootCAs: ca.pool()})
	if err != nil {
		t.Fatalf("TLS connection to %s: %v", s.Addr, err)
	}
	defer c.Close()
	return c.ConnectionState().PeerCertificates[0]
}

// waitServedSerial opens new connections until the server presents the
// certificate with serial want, for at most a minute.
func waitServedSerial(t *testing.T, s *Server, ca *testCA, want int64, what string) *x509.Certificate {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for {
		c := servedCertificate(t, s, ca)
		if c.SerialNumber.Int64() == want {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: the server still presents serial %d, want %d", what, c.SerialNumber.Int64(), want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitLog waits, for at most a minute, until the log holds n lines
// containing what.
func waitLog(t *testing.T, s *Server, what string, n int) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for strings.Count(s.Log(), what) < n {
		if time.Now().After(deadline) {
			t.Fatalf("the log has %d lines with %q, want %d:\n%s", strings.Count(s.Log(), what), what, n, s.logTail(20))
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestTLSClients: the aws CLI v2, minio-go and aws-sdk-go-v2 each store,
// list and read back objects over HTTPS, trusting the test CA.
func TestTLSClients(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	s, _ := startTLSServer(t, ca, ServerOptions{LogLevel: "info"})
	if !strings.Contains(s.Log(), "ringstore S3 endpoint: https://"+s.Addr) || !strings.Contains(s.Log(), "endpoint=https://"+s.Addr) {
		t.Fatalf("the banner and the ready line do not name the https endpoint:\n%s", s.logTail(20))
	}
	data := randomBytes(3<<20 + 17)

	t.Run("minio-go", func(t *testing.T) {
		t.Parallel()
		c, err := minio.New(s.Addr, &minio.Options{
			Creds: miniocreds.NewStaticV4(testAccessKey, testSecretKey, ""), Secure: true, Transport: ca.transport(),
			Region: testRegion, BucketLookup: minio.BucketLookupPath, MaxRetries: 1,
		})
		if err != nil {
			t.Fatal(err)
		}
		ctx := testCtx(t, 2*time.Minute)
		b := bucketName(t)
		if err := c.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutObject(ctx, b, "dir/obj", bytes.NewReader(data), int64(len(data)), minio.PutObjectOptions{}); err != nil {
			t.Fatal(err)
		}
		var keys []string
		for o := range c.ListObjects(ctx, b, minio.ListObjectsOptions{Recursive: true}) {
			if o.Err != nil {
				t.Fatal(o.Err)
			}
			keys = append(keys, o.Key)
		}
		if len(keys) != 1 || keys[0] != "dir/obj" {
			t.Fatalf("listed %v", keys)
		}
		obj, err := c.GetObject(ctx, b, "dir/obj", minio.GetObjectOptions{})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(obj)
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("GET: %d bytes, %v", len(got), err)
		}
	})

	t.Run("aws-sdk-go-v2", func(t *testing.T) {
		t.Parallel()
		c, log := awsClient(t, s, awsOptions{Transport: ca.transport()})
		ctx := testCtx(t, 2*time.Minute)
		b := bucketName(t)
		if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
			t.Fatal(err)
		}
		if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("obj"), Body: bytes.NewReader(data)}); err != nil {
			t.Fatal(err)
		}
		// Over HTTPS the SDK streams the body with a checksum trailer.
		if h := log.last(); h.Get("X-Amz-Trailer") == "" {
			t.Errorf("the SDK sent no trailer over HTTPS (x-amz-content-sha256 %q)", h.Get("X-Amz-Content-Sha256"))
		}
		list, err := c.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b)})
		if err != nil || len(list.Contents) != 1 || aws.ToString(list.Contents[0].Key) != "obj" {
			t.Fatalf("list: %v %v", list, err)
		}
		out, err := c.GetObject(ctx, &s3.GetObjectInput{Bucket: aws.String(b), Key: aws.String("obj")})
		if err != nil {
			t.Fatal(err)
		}
		got, err := io.ReadAll(out.Body)
		out.Body.Close()
		if err != nil || !bytes.Equal(got, data) {
			t.Fatalf("GET: %d bytes, %v", len(got), err)
		}
	})

	t.Run("aws-cli-v2", func(t *testing.T) {
		t.Parallel()
		bin := needTool(t, "/usr/bin/aws")
		dir := t.TempDir()
		cli := toolRun{Bin: bin, Env: awsEnv(dir, "AWS_CA_BUNDLE="+ca.path), Dir: dir}
		common := []string{"--endpoint-url", s.Endpoint(), "--cli-read-timeout", "30"}
		run := func(args ...string) string { t.Helper(); return cli.must(t, append(common, args...)...) }
		b := bucketName(t)
		src := writeFile(t, dir, "up/file.bin", data)
		run("s3", "mb", "s3://"+b)
		run("s3", "cp", src, "s3://"+b+"/cli/file.bin")
		if out := run("s3", "ls", "--recursive", "s3://"+b); !strings.Contains(out, "cli/file.bin") {
			t.Fatalf("ls: %s", out)
		}
		dst := filepath.Join(dir, "down.bin")
		run("s3", "cp", "s3://"+b+"/cli/file.bin", dst)
		if got, err := os.ReadFile(dst); err != nil || !bytes.Equal(got, data) {
			t.Fatalf("downloaded %d bytes, %v", len(got), err)
		}
		// Without the CA the CLI refuses the server: the check is real.
		untrusted := toolRun{Bin: bin, Env: awsEnv(dir), Dir: dir}
		if out, err := untrusted.run(append(common, "s3", "ls")...); err == nil {
			t.Fatalf("the CLI trusted the test CA without AWS_CA_BUNDLE: %s", out)
		}
	})
}

// TestTLSRotation: a new certificate written over the files is served to
// new connections after SIGHUP, and again after a change of the files
// alone; a bad pair is refused, both ways, and the previous certificate
// goes on serving. The process is the same throughout.
func TestTLSRotation(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	s, files := startTLSServer(t, ca, ServerOptions{LogLevel: "info"})
	pid := s.Pid()
	if c := servedCertificate(t, s, ca); c.SerialNumber.Int64() != 1 {
		t.Fatalf("serial %d at start", c.SerialNumber.Int64())
	}
	b := bucketName(t)
	tr := ca.transport()
	client, _ := awsClient(t, s, awsOptions{Transport: tr})
	ctx := testCtx(t, 3*time.Minute)
	if _, err := client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Fatal(err)
	}
	put := func(key string) {
		t.Helper()
		// New connections only: each must see the certificate now served.
		tr.CloseIdleConnections()
		if _, err := client.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String(key), Body: strings.NewReader(key)}); err != nil {
			t.Fatalf("PUT %s: %v", key, err)
		}
	}
	put("before")

	// SIGHUP: a certificate of another serial and validity.
	files.write(t, ca.issue(t, 2, 48*time.Hour))
	s.Signal(syscall.SIGHUP)
	c := waitServedSerial(t, s, ca, 2, "after SIGHUP")
	if got := c.NotAfter.Sub(c.NotBefore); got != 48*time.Hour {
		t.Errorf("validity %v after SIGHUP, want 48h", got)
	}
	put("after-sighup")

	// The files change, nothing else.
	files.write(t, ca.issue(t, 3, 72*time.Hour))
	c = waitServedSerial(t, s, ca, 3, "after the files changed")
	if got := c.NotAfter.Sub(c.NotBefore); got != 72*time.Hour {
		t.Errorf("validity %v after the files changed, want 72h", got)
	}
	put("after-change")

	// A bad pair: a new certificate with a key that is not its own. It is
	// refused when the files change and again on SIGHUP; serial 3 stays.
	otherKey := ca.issue(t, 5, time.Hour).key
	files.write(t, certPair{ca.issue(t, 4, time.Hour).cert, otherKey})
	waitLog(t, s, "TLS certificate not reloaded", 1)
	s.Signal(syscall.SIGHUP)
	waitLog(t, s, "TLS certificate not reloaded", 2)
	if c := servedCertificate(t, s, ca); c.SerialNumber.Int64() != 3 {
		t.Fatalf("serial %d served after a bad pair, want 3 kept", c.SerialNumber.Int64())
	}
	put("after-bad-pair")
	// Garbage in place of the certificate is refused too.
	files.write(t, certPair{[]byte("not a certificate\n"), otherKey})
	waitLog(t, s, "TLS certificate not reloaded", 3)
	if c := servedCertificate(t, s, ca); c.SerialNumber.Int64() != 3 {
		t.Fatalf("serial %d served after garbage, want 3 kept", c.SerialNumber.Int64())
	}
	put("after-garbage")

	if s.Pid() != pid || strings.Count(s.Log(), "ringstore ready") != 1 {
		t.Fatalf("the server restarted (pid %d, was %d)", s.Pid(), pid)
	}
	if n := strings.Count(s.Log(), "TLS certificate reloaded"); n != 2 {
		t.Errorf("%d reloads logged, want 2", n)
	}
	list, err := client.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(b)})
	if err != nil || len(list.Contents) != 5 {
		t.Fatalf("listed %v, %v; want the five objects", list, err)
	}
}

// tlsDialSlow opens a TLS connection with a small receive buffer: a
// response the client does not read then fills little more than the
// server's send buffer. It is four times dialSlow's: a client needs a
// whole TLS record (16 KiB) before it can use any of it, and with
// loopback's 64 KiB segments a receive buffer of about one record has the
// kernel deliver it in window probes a few hundred milliseconds apart.
func tlsDialSlow(t *testing.T, s *Server, ca *testCA) *tls.Conn {
	t.Helper()
	raw, err := net.Dial("tcp", s.Addr)
	if err != nil {
		t.Fatal(err)
	}
	_ = raw.(*net.TCPConn).SetReadBuffer(64 << 10)
	c := tls.Client(raw, &tls.Config{RootCAs: ca.pool(), ServerName: "127.0.0.1"})
	t.Cleanup(func() { c.Close() })
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := c.HandshakeContext(ctx); err != nil {
		t.Fatal(err)
	}
	return c
}

// startTLSGet sends a signed GET on c and reads the response's header.
func startTLSGet(t *testing.T, s *Server, c net.Conn, bucket, key string) *http.Response {
	t.Helper()
	req := s.newRaw(t, rawReq{Method: "GET", Bucket: bucket, Key: key})
	req.URL.Scheme = "https"
	if err := req.Write(c); err != nil {
		t.Fatal(err)
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Minute))
	resp, err := http.ReadResponse(bufio.NewReaderSize(c, 4<<10), req)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("GET %s/%s: %v %v", bucket, key, resp, err)
	}
	return resp
}

// TestTLSProgressTimeouts: with TLS between the client and the connection
// the progress timeouts watch, a GET whose client stops reading is still
// cut off, and one whose client reads slowly but steadily still gets the
// whole object (the server still sees the client taking bytes).
func TestTLSProgressTimeouts(t *testing.T) {
	t.Parallel()
	ca := newTestCA(t)
	s, _ := startTLSServer(t, ca, ServerOptions{Env: []string{"RINGSTORE_S3_PROGRESS_TIMEOUT=" + progressTimeout.String()}})
	c, _ := awsClient(t, s, awsOptions{Transport: ca.transport()})
	ctx := testCtx(t, 3*time.Minute)
	b := bucketName(t)
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(b)}); err != nil {
		t.Fatal(err)
	}
	big := randomBytes(16 << 20)
	if _, err := c.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String(b), Key: aws.String("big"), Body: bytes.NewReader(big)}); err != nil {
		t.Fatal(err)
	}

	t.Run("stalled", func(t *testing.T) {
		conn := tlsDialSlow(t, s, ca)
		resp := startTLSGet(t, s, conn, b, "big")
		took, ok := s.waitStalls(1, 30*time.Second)
		if !ok {
			t.Fatalf("the server still writes to a TLS client that stopped reading %v ago (timeout %v)", took.Round(time.Millisecond), progressTimeout)
		}
		t.Logf("the server gave up %v after the TLS client stopped reading (timeout %v)", took.Round(time.Millisecond), progressTimeout)
		_ = conn.SetReadDeadline(time.Now().Add(30 * time.Second))
		n, err := io.Copy(io.Discard, resp.Body)
		if err == nil || n >= int64(len(big)) {
			t.Errorf("the stalled client then read %d of %d bytes (err %v); want a short body, the connection closed", n, len(big), err)
		}
	})
	t.Run("slow", func(t *testing.T) {
		// 48 KiB every 50 ms, as TestSlowClientsGetThrough: the server's
		// writes wait longer than the timeout while the client keeps
		// taking bytes.
		conn := tlsDialSlow(t, s, ca)
		start := time.Now()
		resp := startTLSGet(t, s, conn, b, "big")
		_ = conn.SetReadDeadline(time.Now().Add(3 * time.Minute))
		var got bytes.Buffer
		buf := make([]byte, 48<<10)
		for {
			n, err := io.ReadFull(resp.Body, buf)
			got.Write(buf[:n])
			if err == io.EOF || err == io.ErrUnexpectedEOF {
				break
			}
			if err != nil {
				t.Fatalf("slow GET after %d bytes: %v", got.Len(), err)
			}
			time.Sleep(50 * time.Millisecond)
		}
		t.Logf("slow TLS GET took %v (timeout %v)", time.Since(start).Round(time.Millisecond), progressTimeout)
		if !bytes.Equal(got.Bytes(), big) {
			t.Fatalf("slow GET: %d bytes of %d, or other bytes", got.Len(), len(big))
		}
	})
}
