package rpc

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// The wire protocol is HTTP/1.1: POST /rpc/<service> with the request as
// the body, answered by 200 and the reply as the body, or by 500 and an
// error message. Both directions carry
//
//	X-Ringstore-From, X-Ringstore-To   node ids
//	X-Ringstore-Time                   unix nanoseconds
//	X-Ringstore-Mac                    hex HMAC-SHA256 over the above, the
//	                                   service, the status and SHA-256(body)
//
// keyed by the cluster secret. A message outside the clock window or with a
// bad MAC is refused. Replaying a captured message within the window can
// only repeat an idempotent request.

const (
	hdrFrom = "X-Ringstore-From"
	hdrTo   = "X-Ringstore-To"
	hdrTime = "X-Ringstore-Time"
	hdrMac  = "X-Ringstore-Mac"

	// macWindow bounds the clock difference between nodes that may talk.
	macWindow = 5 * time.Minute
	// MaxBodyBytes bounds a request or reply body.
	MaxBodyBytes = 80 << 20
)

// ErrUnauthenticated means a message failed the cluster-secret check.
var ErrUnauthenticated = errors.New("rpc: message not authenticated by the cluster secret")

func mac(secret []byte, from, to, service string, status int, t int64, body []byte) string {
	sum := sha256.Sum256(body)
	m := hmac.New(sha256.New, secret)
	fmt.Fprintf(m, "%s\n%s\n%s\n%d\n%d\n", from, to, service, status, t)
	m.Write(sum[:])
	return hex.EncodeToString(m.Sum(nil))
}

func checkMac(secret []byte, h http.Header, from, to, service string, status int, body []byte, now time.Time) error {
	t, err := strconv.ParseInt(h.Get(hdrTime), 10, 64)
	if err != nil {
		return ErrUnauthenticated
	}
	if d := now.Sub(time.Unix(0, t)); d > macWindow || d < -macWindow {
		return fmt.Errorf("%w: clock difference %v", ErrUnauthenticated, d)
	}
	want := mac(secret, from, to, service, status, t, body)
	if !hmac.Equal([]byte(want), []byte(h.Get(hdrMac))) {
		return ErrUnauthenticated
	}
	return nil
}

// HTTP is the network Transport and its server.
type HTTP struct {
	// Stats counts the bytes this node sent and received as a client, per
	// service.
	Stats Stats

	Self   string
	Secret []byte
	// Resolve returns the RPC address (host:port) of a node.
	Resolve func(node string) (string, bool)
	Mux     *Mux
	Logger  *slog.Logger
	Client  *http.Client
	Now     func() time.Time
}

// NewHTTP returns an HTTP transport with a client tuned for many small
// concurrent requests to few peers.
func NewHTTP(self string, secret []byte, resolve func(string) (string, bool), mux *Mux, log *slog.Logger) *HTTP {
	if log == nil {
		log = slog.Default()
	}
	tr := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 3 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        1024,
		MaxIdleConnsPerHost: 256,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}
	return &HTTP{Self: self, Secret: secret, Resolve: resolve, Mux: mux, Logger: log,
		Client: &http.Client{Transport: tr}, Now: time.Now}
}

// Call implements Transport.
func (t *HTTP) Call(ctx context.Context, to, service string, body []byte) ([]byte, error) {
	addr, ok := t.Resolve(to)
	if !ok {
		return nil, fmt.Errorf("rpc: no address for node %s", to)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, "http://"+addr+"/rpc/"+service, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("rpc %s to %s: %w", service, to, err)
	}
	now := t.Now().UnixNano()
	req.Header.Set(hdrFrom, t.Self)
	req.Header.Set(hdrTo, to)
	req.Header.Set(hdrTime, strconv.FormatInt(now, 10))
	req.Header.Set(hdrMac, mac(t.Secret, t.Self, to, service, 0, now, body))
	req.Header.Set("Content-Type", "application/octet-stream")
	resp, err := t.Client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("rpc %s to %s: %w", service, to, err)
	}
	var reply []byte
	defer func() { t.Stats.add(service, len(body), len(reply)) }()
	defer resp.Body.Close()
	reply, err = io.ReadAll(io.LimitReader(resp.Body, MaxBodyBytes+1))
	if err != nil {
		return nil, fmt.Errorf("rpc %s to %s: read reply: %w", service, to, err)
	}
	if len(reply) > MaxBodyBytes {
		return nil, fmt.Errorf("rpc %s to %s: reply over %d bytes", service, to, MaxBodyBytes)
	}
	if resp.StatusCode == http.StatusUnauthorized {
		return nil, fmt.Errorf("rpc %s to %s: %w: the node refused the request (is the cluster secret the same?)", service, to, ErrUnauthenticated)
	}
	responder := to
	if to == "" {
		responder = resp.Header.Get(hdrFrom)
	}
	if err := checkMac(t.Secret, resp.Header, responder, t.Self, service, resp.StatusCode, reply, t.Now()); err != nil {
		return nil, fmt.Errorf("rpc %s to %s: reply: %w", service, to, err)
	}
	if resp.StatusCode != http.StatusOK {
		return nil, &RemoteError{Node: to, Service: service, Message: string(reply)}
	}
	return reply, nil
}

// ServeHTTP answers RPC requests from other nodes.
func (t *HTTP) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	service, ok := strings.CutPrefix(r.URL.Path, "/rpc/")
	if !ok || r.Method != http.MethodPost {
		http.Error(w, "not found", http.StatusNotFound)
		return
	}
	from := r.Header.Get(hdrFrom)
	body, err := io.ReadAll(io.LimitReader(r.Body, MaxBodyBytes+1))
	if err != nil || len(body) > MaxBodyBytes {
		http.Error(w, "bad body", http.StatusBadRequest)
		return
	}
	// Admin tools address whichever node they reach ("").
	if to := r.Header.Get(hdrTo); to != t.Self && (to != "" || !strings.HasPrefix(service, "admin.")) {
		http.Error(w, "wrong node", http.StatusMisdirectedRequest)
		return
	}
	if err := checkMac(t.Secret, r.Header, from, r.Header.Get(hdrTo), service, 0, body, t.Now()); err != nil {
		t.Logger.Warn("rpc request refused", "from", from, "remote", r.RemoteAddr, "service", service, "err", err)
		http.Error(w, "unauthenticated", http.StatusUnauthorized)
		return
	}
	reply, err := t.Mux.Serve(r.Context(), from, service, body)
	status := http.StatusOK
	if err != nil {
		status = http.StatusInternalServerError
		reply = []byte(err.Error())
	}
	now := t.Now().UnixNano()
	h := w.Header()
	h.Set(hdrFrom, t.Self)
	h.Set(hdrTo, from)
	h.Set(hdrTime, strconv.FormatInt(now, 10))
	h.Set(hdrMac, mac(t.Secret, t.Self, from, service, status, now, reply))
	h.Set("Content-Length", strconv.Itoa(len(reply)))
	w.WriteHeader(status)
	_, _ = w.Write(reply)
}

// CheckListenAddr refuses a non-loopback address without a secret: an
// unauthenticated node-to-node port must never face a network.
func CheckListenAddr(addr string, secret []byte) error {
	if len(secret) > 0 {
		return nil
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "localhost" {
		return nil
	}
	ip := net.ParseIP(host)
	if ip == nil || !ip.IsLoopback() {
		return fmt.Errorf("refusing to listen on non-loopback %s without a cluster secret (--cluster-secret / RINGSTORE_CLUSTER_SECRET)", addr)
	}
	return nil
}
