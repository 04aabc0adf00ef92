package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"log/slog"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// testPair is a certificate for 127.0.0.1 and its key, PEM-encoded.
type testPair struct {
	serial    int64
	cert, key []byte
}

// newTestPair makes a self-signed certificate with the given serial.
func newTestPair(t *testing.T, serial int64) testPair {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(serial),
		Subject:      pkix.Name{CommonName: "ringstore test"},
		NotBefore:    time.Now().Add(-time.Hour),
		NotAfter:     time.Now().Add(time.Duration(serial) * time.Hour),
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1)},
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	kd, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return testPair{serial: serial,
		cert: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}),
		key:  pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: kd})}
}

func writeTestFile(t *testing.T, path string, b []byte) {
	t.Helper()
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
}

// lockedBuffer is a log destination safe for concurrent writers.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string { l.mu.Lock(); defer l.mu.Unlock(); return l.b.String() }

func servedSerial(t *testing.T, r *certReloader) int64 {
	t.Helper()
	c, err := r.serverConfig().GetCertificate(&tls.ClientHelloInfo{})
	if err != nil {
		t.Fatal(err)
	}
	return c.Leaf.SerialNumber.Int64()
}

func TestCertReloader(t *testing.T) {
	dir := t.TempDir()
	certPath, keyPath := filepath.Join(dir, "cert.pem"), filepath.Join(dir, "key.pem")
	first := newTestPair(t, 1)
	writeTestFile(t, certPath, first.cert)
	writeTestFile(t, keyPath, first.key)
	var logs lockedBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	r, err := newCertReloader(certPath, keyPath, log)
	if err != nil {
		t.Fatal(err)
	}
	if got := servedSerial(t, r); got != 1 {
		t.Fatalf("serial %d", got)
	}

	// Nothing changed: looking reloads nothing.
	r.check()
	r.check()
	if strings.Contains(logs.String(), "reloaded") {
		t.Fatalf("reloaded unchanged files:\n%s", logs.String())
	}

	// A rotation writes the certificate, then the key. Caught between the
	// two, the files are a mismatched pair: they are not loaded until they
	// have stood still for a look, so no warning is logged.
	second := newTestPair(t, 2)
	writeTestFile(t, certPath, second.cert)
	r.check()
	writeTestFile(t, keyPath, second.key)
	r.check()
	if got := servedSerial(t, r); got != 1 {
		t.Fatalf("serial %d before the files stood still", got)
	}
	r.check()
	if got := servedSerial(t, r); got != 2 {
		t.Fatalf("serial %d after the files changed, want 2", got)
	}
	if strings.Contains(logs.String(), "level=WARN") {
		t.Fatalf("a rotation logged a warning:\n%s", logs.String())
	}

	// A bad pair (the third certificate with the second's key) is refused
	// once, with a warning, and the second kept; on SIGHUP likewise.
	third := newTestPair(t, 3)
	writeTestFile(t, certPath, third.cert)
	r.check()
	r.check()
	r.check()
	r.reload("SIGHUP")
	if got := servedSerial(t, r); got != 2 {
		t.Fatalf("serial %d after a bad pair, want 2 kept", got)
	}
	if n := strings.Count(logs.String(), "TLS certificate not reloaded"); n != 2 {
		t.Fatalf("%d warnings for a bad pair seen by polling and by SIGHUP, want 2:\n%s", n, logs.String())
	}

	// A file replaced by a rename (as rotation tools do) is a change too.
	tmp := keyPath + ".new"
	writeTestFile(t, tmp, third.key)
	if err := os.Rename(tmp, keyPath); err != nil {
		t.Fatal(err)
	}
	r.check()
	r.check()
	if got := servedSerial(t, r); got != 3 {
		t.Fatalf("serial %d after the key was renamed into place, want 3", got)
	}
	if keyLine := strings.Split(string(third.key), "\n")[1]; strings.Contains(logs.String(), keyLine) || strings.Contains(logs.String(), "PRIVATE KEY") {
		t.Fatal("key material in the log")
	}

	// A pair that does not load at start is an error.
	writeTestFile(t, keyPath, first.key)
	if _, err := newCertReloader(certPath, keyPath, log); err == nil {
		t.Fatal("started with a mismatched pair")
	}
	if _, err := tlsFlags("cert.pem", ""); err == nil {
		t.Fatal("--tls-cert without --tls-key")
	}
}
