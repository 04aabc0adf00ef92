package gateway

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/gorilla/mux"

	"github.com/ringstore/ringstore/auth"
	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/sse"
)

// Config configures a Server.
type Config struct {
	// Region is the one region this endpoint serves; "us-east-1" if empty.
	Region string
	// Domain enables virtual-hosted-style requests: Host "bucket.Domain".
	Domain string
	Index  *index.Index
	// Chunks stores and fetches object bytes cluster-wide.
	Chunks Chunks
	Auth   *auth.Verifier
	Logger *slog.Logger
	// ChunkBytes is the size of the chunks object bodies are cut into; 0
	// means 1 MiB.
	ChunkBytes int
	// InlineMax is the largest object stored inside its index record
	// rather than as chunks; 0 means DefaultInlineMax, negative disables.
	InlineMax int
	// FenceEverywhere, if set, tells every other node of the cluster's
	// layout of a delete fence on bucket name set (set) or lifted, by
	// calling their Server.FenceBucket; setting fails unless every one of
	// them answered (see bucketfence.go). Nil for a node alone.
	FenceEverywhere func(ctx context.Context, name string, fence index.Timestamp, set bool) error
	// GCGrace is the garbage collector's grace period (0: 24h): a write
	// in progress records its chunk references again every quarter of it.
	GCGrace time.Duration
	// ChunksInFlight bounds the chunks of one upload being hashed and
	// written at once; 0 means 4.
	ChunksInFlight int
	// Shards is the shard count of new buckets; 0 means 8.
	Shards uint32
	// BucketCacheTTL is how long a bucket record read here is reused; 0
	// means 1s, negative disables the cache.
	BucketCacheTTL time.Duration
	// BucketChanged, if set, is called once a bucket's record changed
	// through this node (deleted, created, a configuration set), before
	// the client is answered: a cluster has the other nodes forget the
	// bucket (ForgetBucket), so a client that saw the change is not
	// served their cached copy for up to BucketCacheTTL.
	BucketChanged func(ctx context.Context, name string)
	// MinPartBytes is the least size of a multipart part other than the
	// last; 0 means S3's 5 MiB. Tests lower it to make many-part uploads
	// cheap.
	MinPartBytes int64
	// Now is the clock for Last-Modified comparisons; nil means time.Now.
	Now func() time.Time
	// Observe, if set, is told of every finished request: its method,
	// whether it failed with an S3 error, and how long the handler ran.
	Observe func(method string, failed bool, d time.Duration)
	// AdmitWrite, if set, is asked before every request that adds data,
	// with the length of its body (0 when not known); false refuses the
	// request with ErrBelowFloor.
	AdmitWrite func(n int64) bool
	// ProgressTimeout bounds how long a request body or a response may
	// stand still: a body the client stops sending ends the request with
	// RequestTimeout, a response it stops reading ends the handler, and
	// either closes the connection. A stall is noticed within two
	// timeouts; a client that moves some bytes every timeout is never cut
	// off, however slow. Responses are bounded on connections accepted
	// through Listener. 0 means DefaultProgressTimeout, negative disables.
	ProgressTimeout time.Duration
	// MasterKeys are the SSE-S3 master keys, the same on every node; nil
	// refuses SSE-S3 and makes plaintext the buckets' default.
	MasterKeys *sse.Keyring
	// SSECOverHTTP takes SSE-C keys over plain HTTP from any client, for
	// a store behind a proxy that ends TLS; otherwise only over TLS or
	// loopback.
	SSECOverHTTP bool
}

// Chunks is what the gateway needs of the chunk store.
type Chunks interface {
	// Put stores c durably (on a write quorum). It must not read c's bytes
	// after it returns: the gateway reuses the buffer at once.
	Put(ctx context.Context, c blobs.Chunk) error
	// Get returns the verified bytes of chunk id, using buf if it fits.
	Get(ctx context.Context, id blobs.ID, buf []byte) ([]byte, error)
	// Has reports whether chunk id is stored.
	Has(ctx context.Context, id blobs.ID) (bool, error)
}

// DefaultInlineMax: objects up to 64 KiB are kept inside their index
// record. Below that size the fixed cost of a chunk file (create, write,
// fsync, rename, directory fsync, and a second lookup on read) dominates,
// while an inline object rides in a pebble write that shares its WAL fsync
// with concurrent requests (group commit). 64 KiB keeps records small
// enough that merges and replication of one record stay cheap.
const DefaultInlineMax = 64 << 10

// Server is the S3 gateway of one node.
type Server struct {
	cfg     Config
	log     *slog.Logger
	router  *mux.Router
	now     func() time.Time
	bufs    *bufferPool
	buckets *bucketCache
	fences  fenceSet // the delete fences this node knows of
	// fenceGen counts the delete fences this node learnt: a request that
	// saw it unchanged from its start to its end learnt of none meanwhile
	// (see bucketfence.go).
	fenceGen atomic.Uint64

	bucketTable, objectTable map[route]handler
}

// New returns a Server.
func New(cfg Config) *Server {
	if cfg.Region == "" {
		cfg.Region = "us-east-1"
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.ChunkBytes <= 0 {
		cfg.ChunkBytes = 1 << 20
	}
	if cfg.InlineMax == 0 {
		cfg.InlineMax = DefaultInlineMax
	}
	if cfg.ChunksInFlight <= 0 {
		cfg.ChunksInFlight = 4
	}
	if cfg.GCGrace <= 0 {
		cfg.GCGrace = 24 * time.Hour
	}
	if cfg.Shards == 0 {
		cfg.Shards = 8
	}
	if cfg.MinPartBytes == 0 {
		cfg.MinPartBytes = minPartBytes
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.BucketCacheTTL == 0 {
		cfg.BucketCacheTTL = time.Second
	}
	if cfg.ProgressTimeout == 0 {
		cfg.ProgressTimeout = DefaultProgressTimeout
	}
	s := &Server{cfg: cfg, log: cfg.Logger, now: cfg.Now, bufs: newBufferPool(cfg.ChunkBytes), buckets: newBucketCache(cfg.BucketCacheTTL, time.Now)}
	s.buckets.gen = s.fenceGen.Load
	s.bucketTable, s.objectTable = s.bucketRoutes(), s.objectRoutes()
	s.router = s.routes()
	return s
}

func (s *Server) routes() *mux.Router {
	r := mux.NewRouter().SkipClean(true).UseEncodedPath()
	if s.cfg.Domain != "" {
		vh := r.MatcherFunc(s.virtualHost).Subrouter()
		vh.MatcherFunc(rootPath).HandlerFunc(s.bucketOp)
		vh.MatcherFunc(anyPath).HandlerFunc(s.objectOp)
	}
	r.MatcherFunc(rootPath).HandlerFunc(s.serviceOp)
	r.MatcherFunc(bucketPath).HandlerFunc(s.bucketOp)
	r.MatcherFunc(objectPath).HandlerFunc(s.objectOp)
	r.NotFoundHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		s.writeError(w, r, ErrInvalidURI)
	})
	return r
}

// The routes match the escaped path by its shape: "/", "/bucket" or
// "/bucket/", "/bucket/key…", where a bucket is one or more characters
// other than "/" (the "[^/]+" of a "{bucket}" pattern). Matched with
// regular expressions, as path templates are, the routing took 5.8% of a
// single node's CPU under 4 KiB GETs, and 4 KiB GETs gained 4.5% without
// them (six interleaved pairs); the handlers parse the path themselves
// (resolve), so nothing needs the template's variables.
func rootPath(r *http.Request, _ *mux.RouteMatch) bool { return r.URL.EscapedPath() == "/" }

func anyPath(r *http.Request, _ *mux.RouteMatch) bool {
	return strings.HasPrefix(r.URL.EscapedPath(), "/")
}

func bucketPath(r *http.Request, _ *mux.RouteMatch) bool {
	p := r.URL.EscapedPath()
	if len(p) < 2 || p[0] != '/' {
		return false
	}
	i := strings.IndexByte(p[1:], '/')
	return i < 0 || (i > 0 && i == len(p)-2)
}

func objectPath(r *http.Request, _ *mux.RouteMatch) bool {
	p := r.URL.EscapedPath()
	return len(p) > 2 && p[0] == '/' && strings.IndexByte(p[1:], '/') > 0
}

// virtualHost matches Host "bucket.Domain" and records the bucket.
func (s *Server) virtualHost(r *http.Request, _ *mux.RouteMatch) bool {
	host := hostOnly(r.Host)
	suffix := "." + s.cfg.Domain
	if !strings.HasSuffix(host, suffix) || len(host) == len(suffix) {
		return false
	}
	reqCtx(r).virtualBucket = host[:len(host)-len(suffix)]
	return true
}

func hostOnly(h string) string {
	if i := strings.LastIndexByte(h, ':'); i >= 0 && !strings.Contains(h[i:], "]") {
		h = h[:i]
	}
	return strings.ToLower(h)
}

// requestContext is the per-request state shared by the layers of a
// request.
type requestContext struct {
	id, hostID    string
	start         time.Time
	virtualBucket string
	bucket, key   string
	authenticated bool
	accessKey     string
	auth          *auth.Result
	errCode       string
	body          progressBody
	// fenceGen is Server.fenceGen when the request came in.
	fenceGen uint64
}

type ctxKey struct{}

func reqCtx(r *http.Request) *requestContext {
	rc, _ := r.Context().Value(ctxKey{}).(*requestContext)
	if rc == nil {
		rc = &requestContext{}
	}
	return rc
}

// ServeHTTP answers one S3 request.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var idb [8]byte
	_, _ = rand.Read(idb[:])
	rc := &requestContext{id: strings.ToUpper(hex.EncodeToString(idb[:])), start: time.Now()}
	var hb [24]byte
	_, _ = rand.Read(hb[:])
	rc.hostID = base64.StdEncoding.EncodeToString(hb[:])
	rc.fenceGen = s.fenceGen.Load()
	r = r.WithContext(context.WithValue(r.Context(), ctxKey{}, rc))
	rc.body.wrapBody(w, r, s.cfg.ProgressTimeout)
	h := w.Header()
	h.Set("x-amz-request-id", rc.id)
	h.Set("x-amz-id-2", rc.hostID)
	h.Set("Server", "RingStore")
	if r.ContentLength == 0 && strings.EqualFold(r.Header.Get("Expect"), "100-continue") {
		// net/http sends "100 Continue" only when a handler reads a body;
		// with an empty one it never does, and some clients (botocore)
		// then misread the final response. S3 always sends it.
		w.WriteHeader(http.StatusContinue)
	}
	defer func() {
		if p := recover(); p != nil {
			if p == http.ErrAbortHandler {
				panic(p)
			}
			s.log.Error("handler panic", "request_id", rc.id, "method", r.Method, "path", r.URL.Path, "panic", p)
			s.writeError(w, r, ErrInternal)
		}
		d := time.Since(rc.start)
		if s.cfg.Observe != nil {
			s.cfg.Observe(r.Method, rc.errCode != "", d)
		}
		if s.log.Enabled(r.Context(), slog.LevelDebug) {
			s.log.Debug("request", "request_id", rc.id, "method", r.Method, "uri", loggedURI(r.RequestURI),
				"error", rc.errCode, "duration", d)
		}
		rc.body.finish()
	}()
	s.router.ServeHTTP(w, r)
}

// authenticate verifies the request's signature and replaces its body with
// the verified body. It fails closed.
func (s *Server) authenticate(r *http.Request) error {
	rc := reqCtx(r)
	if headerBytes(r) > maxHeaderSectionBytes {
		return anonymous(ErrRequestHeaderSectionTooLarg)
	}
	res, err := s.cfg.Auth.Verify(r)
	if err != nil {
		var ae *auth.Error
		if errors.As(err, &ae) {
			return anonymous(&APIError{Code: ae.Code, Status: ae.Status, Message: ae.Message})
		}
		return err
	}
	rc.authenticated = true
	rc.accessKey = res.AccessKeyID
	rc.auth = res
	r.Body = res.Body
	return nil
}

// maxHeaderSectionBytes is S3's limit on the request header section.
const maxHeaderSectionBytes = 8 << 10

func headerBytes(r *http.Request) int {
	n := 0
	for k, vs := range r.Header {
		for _, v := range vs {
			n += len(k) + len(v) + 4
		}
	}
	return n
}

func anonymous(e *APIError) *APIError {
	c := *e
	c.anonymous = true
	return &c
}

// resolve decodes the bucket and key of the request.
func (s *Server) resolve(r *http.Request, wantKey bool) (bucket, key string, err error) {
	rc := reqCtx(r)
	p := r.URL.EscapedPath()
	if rc.virtualBucket != "" {
		bucket = rc.virtualBucket
		p = strings.TrimPrefix(p, "/")
	} else {
		p = strings.TrimPrefix(p, "/")
		i := strings.IndexByte(p, '/')
		if i < 0 {
			i = len(p)
		}
		if bucket, err = url.PathUnescape(p[:i]); err != nil {
			return "", "", ErrInvalidURI
		}
		p = strings.TrimPrefix(p[i:], "/")
	}
	if wantKey {
		if key, err = url.PathUnescape(p); err != nil {
			return "", "", ErrInvalidURI
		}
	}
	rc.bucket, rc.key = bucket, key
	return bucket, key, nil
}

func checkKey(key string) error {
	if len(key) > 1024 {
		return ErrKeyTooLong
	}
	if key == "" || !utf8.ValidString(key) {
		return ErrInvalidArgument.msg("Object key is not valid.")
	}
	return nil
}

// asAuthError converts an error from package auth (such as a payload that
// did not match its signature) to the S3 error, or returns nil.
func asAuthError(err error) *APIError {
	var ae *auth.Error
	if errors.As(err, &ae) {
		return &APIError{Code: ae.Code, Status: ae.Status, Message: ae.Message}
	}
	return nil
}

// loggedURI is uri with the signature of a presigned URL left out: until
// it expires the URL is as good as the key that signed it, and a log has
// more readers than the keys have holders.
func loggedURI(uri string) string {
	path, query, ok := strings.Cut(uri, "?")
	if !ok || !strings.Contains(query, "Signature=") {
		return uri
	}
	params := strings.Split(query, "&")
	for i, p := range params {
		if name, _, _ := strings.Cut(p, "="); name == "X-Amz-Signature" || name == "Signature" {
			params[i] = name + "=REDACTED"
		}
	}
	return path + "?" + strings.Join(params, "&")
}
