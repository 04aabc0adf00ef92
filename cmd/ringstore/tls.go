package main

import (
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// certPollInterval is how often the certificate files are read for a
// change. A change is loaded once the files stood still for one more look,
// so a rotation that writes the certificate and then the key is not
// caught half done.
const certPollInterval = 2 * time.Second

// certReloader holds the certificate a TLS listener serves, loaded from a
// certificate and a key file and loaded again on SIGHUP or when either
// file changes, so that certificates rotate without a restart. A new pair
// that does not load is logged and the one in use kept.
type certReloader struct {
	certPath, keyPath string
	log               *slog.Logger
	cert              atomic.Pointer[tls.Certificate]

	mu sync.Mutex
	// tried is what the files were at the last load, successful or not:
	// a pair that failed is not tried again until the files change.
	tried fileStamps
	// seen is what they were at the last look.
	seen fileStamps
}

// fileStamps are digests of the two files' contents, zero for a file
// that cannot be read. Contents rather than modification times: a file
// rewritten within one tick of the file system's clock, at the same size,
// keeps its time, and the files are small.
type fileStamps [2][sha256.Size]byte

func readStamps(certPath, keyPath string) fileStamps {
	var s fileStamps
	for i, p := range []string{certPath, keyPath} {
		if b, err := readSmall(p); err == nil {
			s[i] = sha256.Sum256(b)
		}
	}
	return s
}

// readSmall reads a file of at most a mebibyte: certificate chains and
// keys are a few kilobytes, and a path named by mistake is not read whole
// every poll.
func readSmall(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, 1<<20))
}

// newCertReloader loads the pair, failing if it does not load.
func newCertReloader(certPath, keyPath string, log *slog.Logger) (*certReloader, error) {
	r := &certReloader{certPath: certPath, keyPath: keyPath, log: log}
	r.tried = readStamps(certPath, keyPath)
	r.seen = r.tried
	c, err := loadPair(certPath, keyPath)
	if err != nil {
		return nil, err
	}
	r.cert.Store(c)
	r.logLoaded("TLS certificate loaded", c)
	return r, nil
}

func loadPair(certPath, keyPath string) (*tls.Certificate, error) {
	c, err := tls.LoadX509KeyPair(certPath, keyPath)
	if err != nil {
		return nil, fmt.Errorf("--tls-cert %s, --tls-key %s: %w", certPath, keyPath, err)
	}
	if c.Leaf == nil {
		if c.Leaf, err = x509.ParseCertificate(c.Certificate[0]); err != nil {
			return nil, fmt.Errorf("--tls-cert %s: %w", certPath, err)
		}
	}
	return &c, nil
}

func (r *certReloader) logLoaded(msg string, c *tls.Certificate) {
	leaf := c.Leaf
	names := leaf.DNSNames
	for _, ip := range leaf.IPAddresses {
		names = append(names, ip.String())
	}
	r.log.Info(msg, "subject", leaf.Subject.String(), "names", strings.Join(names, ","),
		"serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	if now := time.Now(); now.After(leaf.NotAfter) || now.Before(leaf.NotBefore) {
		r.log.Warn("TLS certificate is outside its validity period: clients will refuse it",
			"not_before", leaf.NotBefore.UTC().Format(time.RFC3339), "not_after", leaf.NotAfter.UTC().Format(time.RFC3339))
	}
}

// reload loads the files again and serves the new pair if it loads.
func (r *certReloader) reload(why string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.reloadLocked(why, readStamps(r.certPath, r.keyPath))
}

func (r *certReloader) reloadLocked(why string, now fileStamps) {
	r.tried, r.seen = now, now
	c, err := loadPair(r.certPath, r.keyPath)
	if err != nil {
		r.log.Warn("TLS certificate not reloaded: still serving the previous one", "trigger", why, "err", err)
		return
	}
	r.cert.Store(c)
	r.logLoaded("TLS certificate reloaded", c)
}

// check looks at the files once and reloads them if they changed since
// the last load and have not changed since the last look.
func (r *certReloader) check() {
	r.mu.Lock()
	defer r.mu.Unlock()
	now := readStamps(r.certPath, r.keyPath)
	switch {
	case now == r.tried:
		r.seen = now
	case now == r.seen:
		r.reloadLocked("files changed", now)
	default:
		r.seen = now
	}
}

// run reloads on every signal from hup and when the files change, until
// ctx ends.
func (r *certReloader) run(ctx context.Context, hup <-chan os.Signal) {
	t := time.NewTicker(certPollInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-hup:
			r.reload("SIGHUP")
		case <-t.C:
			r.check()
		}
	}
}

// serverConfig is the TLS configuration of a port serving the pair.
// TLS 1.2 is the floor S3 itself keeps for its clients; Go's default
// cipher suites and curves stand. Only HTTP/1.1 is offered: S3 clients
// speak it, and the progress timeouts (gateway.Server.Listener) bound
// one request per connection at a time, which HTTP/2 would not be.
func (r *certReloader) serverConfig() *tls.Config {
	return &tls.Config{
		MinVersion: tls.VersionTLS12,
		NextProtos: []string{"http/1.1"},
		GetCertificate: func(*tls.ClientHelloInfo) (*tls.Certificate, error) {
			return r.cert.Load(), nil
		},
	}
}

// listener wraps ln, whose connections are plain TCP (or wrap it, as the
// progress timeouts do), in TLS. TLS goes outermost so that net/http
// sees a *tls.Conn, and the connections it wraps still carry the bytes on
// the wire: the progress timeouts count and retry the encrypted writes,
// under TLS, which takes a failed write as the end of the connection.
func (r *certReloader) listener(ln net.Listener) net.Listener {
	return tls.NewListener(ln, r.serverConfig())
}

// tlsFlags checks that --tls-cert and --tls-key come together.
func tlsFlags(cert, key string) (bool, error) {
	if (cert == "") != (key == "") {
		return false, errors.New("--tls-cert and --tls-key go together: give both, or neither")
	}
	return cert != "", nil
}
