package bench

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"crypto/tls"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"fmt"
	"html"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/ringstore/ringstore/auth"
)

// Client is a minimal S3 client for load generation: path-style requests,
// SigV4 with UNSIGNED-PAYLOAD (the client never hashes bodies, so its cost
// per byte is only the copy), requests spread round-robin over endpoints.
// It is safe for concurrent use.
type Client struct {
	endpoints []*url.URL
	next      atomic.Uint64
	creds     auth.Credentials
	region    string
	hc        *http.Client
	// putSSE and readSSE are the encryption headers of object writes and
	// reads (SetSSE).
	putSSE, readSSE http.Header
}

// The server-side encryption modes of a run.
const (
	SSENone = ""
	SSES3   = "AES256" // x-amz-server-side-encryption: AES256
	SSEC    = "SSE-C"  // one customer key for the whole run
)

// SetSSE makes object requests ask for server-side encryption mode (one
// of SSENone, SSES3, SSEC). Call it before any request.
func (c *Client) SetSSE(mode string) error {
	c.putSSE, c.readSSE = nil, nil
	switch mode {
	case SSENone:
	case SSES3:
		c.putSSE = http.Header{"X-Amz-Server-Side-Encryption": {"AES256"}}
	case SSEC:
		key := make([]byte, 32)
		_, _ = rand.Read(key)
		sum := md5.Sum(key)
		c.putSSE = http.Header{
			"X-Amz-Server-Side-Encryption-Customer-Algorithm": {"AES256"},
			"X-Amz-Server-Side-Encryption-Customer-Key":       {base64.StdEncoding.EncodeToString(key)},
			"X-Amz-Server-Side-Encryption-Customer-Key-Md5":   {base64.StdEncoding.EncodeToString(sum[:])},
		}
		c.readSSE = c.putSSE
	default:
		return fmt.Errorf("server-side encryption %q: want %q, %q or none", mode, SSES3, SSEC)
	}
	return nil
}

// withSSE returns a new header holding h's encryption headers.
func withSSE(h http.Header) http.Header {
	if h == nil {
		return nil
	}
	return h.Clone()
}

// S3Error is an error response from the server.
type S3Error struct {
	Method, Path string
	Status       int
	Code         string
	Message      string
}

func (e *S3Error) Error() string {
	code := e.Code
	if code == "" {
		code = http.StatusText(e.Status)
	}
	msg := fmt.Sprintf("%s %s: %d %s", e.Method, e.Path, e.Status, code)
	if e.Message != "" {
		msg += ": " + e.Message
	}
	return msg
}

// ErrVerify marks a read whose bytes or length were not what was written.
var ErrVerify = errors.New("verification failed")

// ParseEndpoints splits repeated and comma-separated endpoint flags into
// base URLs, defaulting the scheme to http.
func ParseEndpoints(flags []string) ([]string, error) {
	var out []string
	for _, f := range flags {
		for _, e := range strings.Split(f, ",") {
			e = strings.TrimSpace(e)
			if e == "" {
				continue
			}
			if !strings.Contains(e, "://") {
				e = "http://" + e
			}
			u, err := url.Parse(e)
			if err != nil {
				return nil, fmt.Errorf("endpoint %q: %w", e, err)
			}
			if u.Scheme != "http" && u.Scheme != "https" || u.Host == "" {
				return nil, fmt.Errorf("endpoint %q: want http(s)://host[:port]", e)
			}
			if u.Path != "" && u.Path != "/" {
				return nil, fmt.Errorf("endpoint %q: a base path is not supported", e)
			}
			out = append(out, u.Scheme+"://"+u.Host)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("no endpoint given")
	}
	return out, nil
}

// NewClient returns a client for endpoints that keeps up to conns idle
// connections per endpoint, so that conns concurrent workers never
// reconnect.
func NewClient(endpoints []string, creds auth.Credentials, region string, conns int) (*Client, error) {
	eps, err := ParseEndpoints(endpoints)
	if err != nil {
		return nil, err
	}
	c := &Client{creds: creds, region: region}
	for _, e := range eps {
		u, _ := url.Parse(e)
		c.endpoints = append(c.endpoints, u)
	}
	tr := &http.Transport{
		// No proxy: the figures are for the direct path to the server.
		Proxy: nil,
		DialContext: (&net.Dialer{
			Timeout:   10 * time.Second,
			KeepAlive: 30 * time.Second,
		}).DialContext,
		MaxIdleConns:        0, // no global cap; per host below
		MaxIdleConnsPerHost: max(conns, 1) * 2,
		IdleConnTimeout:     90 * time.Second,
		TLSHandshakeTimeout: 10 * time.Second,
		// Compression would cost client CPU and change what is measured.
		DisableCompression: true,
		// HTTP/1.1 only, as S3 clients use it: one request per connection
		// at a time, like warp.
		ForceAttemptHTTP2: false,
		TLSNextProto:      map[string]func(string, *tls.Conn) http.RoundTripper{},
		// Large buffers: a 4 KiB PUT goes out in one write, and large
		// bodies move in 64 KiB syscalls.
		WriteBufferSize: 64 << 10,
		ReadBufferSize:  64 << 10,
	}
	c.hc = &http.Client{
		Transport: tr,
		// S3 does not redirect path-style requests on a single endpoint;
		// following one would hide a misconfiguration.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
	return c, nil
}

// Close drops idle connections.
func (c *Client) Close() { c.hc.CloseIdleConnections() }

// do signs and sends one request. key may be empty (bucket requests);
// rawQuery is already encoded. body may be nil.
func (c *Client) do(ctx context.Context, method, bucket, key, rawQuery string, hdr http.Header, body io.ReadCloser, length int64) (*http.Response, error) {
	ep := c.endpoints[0]
	if len(c.endpoints) > 1 {
		ep = c.endpoints[(c.next.Add(1)-1)%uint64(len(c.endpoints))]
	}
	path := "/" + bucket
	if key != "" {
		path += "/" + key
	}
	if hdr == nil {
		hdr = make(http.Header, 4)
	}
	if body == nil {
		body = http.NoBody
	}
	r := (&http.Request{
		Method:        method,
		URL:           &url.URL{Scheme: ep.Scheme, Host: ep.Host, Path: path, RawQuery: rawQuery},
		Proto:         "HTTP/1.1",
		ProtoMajor:    1,
		ProtoMinor:    1,
		Header:        hdr,
		Body:          body,
		ContentLength: length,
		Host:          ep.Host,
	}).WithContext(ctx)
	if length == 0 {
		r.Body = http.NoBody
	}
	hdr.Set("User-Agent", "ringstore-bench")
	auth.SignRequest(r, c.creds, c.region, time.Now(), auth.ModeUnsignedPayload)
	resp, err := c.hc.Do(r)
	if err != nil {
		return nil, fmt.Errorf("%s %s: %w", method, path, err)
	}
	return resp, nil
}

// finish drains and closes a response body so the connection is reused,
// and turns a non-2xx status into an *S3Error.
func finish(resp *http.Response, method string) error {
	defer resp.Body.Close()
	if resp.StatusCode/100 == 2 {
		_, err := io.Copy(io.Discard, resp.Body)
		if err != nil {
			return fmt.Errorf("%s %s: read response: %w", method, resp.Request.URL.Path, err)
		}
		return nil
	}
	return errorFrom(resp, method)
}

// errorFrom builds an *S3Error from a failed response, reading at most a
// few KiB of its body.
func errorFrom(resp *http.Response, method string) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 8<<10))
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<20))
	return &S3Error{
		Method:  method,
		Path:    resp.Request.URL.Path,
		Status:  resp.StatusCode,
		Code:    xmlField(b, "Code"),
		Message: xmlField(b, "Message"),
	}
}

// xmlField returns the unescaped text of the first <name> element in b.
// The responses parsed here are flat and known, so a byte scan replaces a
// full XML decoder at a fraction of the CPU.
func xmlField(b []byte, name string) string {
	v, _ := xmlFieldBytes(b, name)
	return xmlText(v)
}

func xmlFieldBytes(b []byte, name string) ([]byte, bool) {
	open, closing := "<"+name+">", "</"+name+">"
	i := bytes.Index(b, []byte(open))
	if i < 0 {
		return nil, false
	}
	b = b[i+len(open):]
	j := bytes.Index(b, []byte(closing))
	if j < 0 {
		return nil, false
	}
	return b[:j], true
}

// xmlText unescapes XML character data (the predefined entities and
// character references, which html's unescaper also covers).
func xmlText(b []byte) string {
	if bytes.IndexByte(b, '&') < 0 {
		return string(b)
	}
	return html.UnescapeString(string(b))
}

// PutObject uploads body (exactly size bytes) as bucket/key.
func (c *Client) PutObject(ctx context.Context, bucket, key string, body io.ReadCloser, size int64) error {
	resp, err := c.do(ctx, http.MethodPut, bucket, key, "", withSSE(c.putSSE), body, size)
	if err != nil {
		return err
	}
	return finish(resp, http.MethodPut)
}

// GetObject reads bucket/key to the end through buf and returns its
// length. A length other than wantSize (when >= 0) is an ErrVerify error;
// with v non-nil every byte is also checked against v's expected content.
func (c *Client) GetObject(ctx context.Context, bucket, key string, wantSize int64, buf []byte, v *Verifier) (int64, error) {
	resp, err := c.do(ctx, http.MethodGet, bucket, key, "", withSSE(c.readSSE), nil, 0)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, errorFrom(resp, http.MethodGet)
	}
	var n int64
	for {
		k, rerr := resp.Body.Read(buf)
		if k > 0 {
			n += int64(k)
			if v != nil {
				_, _ = v.Write(buf[:k])
			}
		}
		if rerr == io.EOF {
			break
		}
		if rerr != nil {
			return n, fmt.Errorf("GET %s: read body after %d bytes: %w", resp.Request.URL.Path, n, rerr)
		}
	}
	if wantSize >= 0 && n != wantSize {
		return n, fmt.Errorf("GET %s: %w: got %d bytes, want %d", resp.Request.URL.Path, ErrVerify, n, wantSize)
	}
	if v != nil {
		if ok, at := v.Result(); !ok {
			return n, fmt.Errorf("GET %s: %w: content differs from what was written at byte %d", resp.Request.URL.Path, ErrVerify, at)
		}
	}
	return n, nil
}

// HeadObject returns bucket/key's Content-Length.
func (c *Client) HeadObject(ctx context.Context, bucket, key string) (int64, error) {
	resp, err := c.do(ctx, http.MethodHead, bucket, key, "", withSSE(c.readSSE), nil, 0)
	if err != nil {
		return 0, err
	}
	if err := finish(resp, http.MethodHead); err != nil {
		return 0, err
	}
	return resp.ContentLength, nil
}

// DeleteObject deletes bucket/key.
func (c *Client) DeleteObject(ctx context.Context, bucket, key string) error {
	resp, err := c.do(ctx, http.MethodDelete, bucket, key, "", nil, nil, 0)
	if err != nil {
		return err
	}
	return finish(resp, http.MethodDelete)
}

// CreateBucket creates bucket (with a location constraint outside
// us-east-1, as S3 requires).
func (c *Client) CreateBucket(ctx context.Context, bucket string) error {
	var body []byte
	hdr := make(http.Header, 4)
	if c.region != "" && c.region != "us-east-1" {
		body = []byte(`<CreateBucketConfiguration xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><LocationConstraint>` +
			html.EscapeString(c.region) + `</LocationConstraint></CreateBucketConfiguration>`)
	}
	resp, err := c.do(ctx, http.MethodPut, bucket, "", "", hdr, io.NopCloser(bytes.NewReader(body)), int64(len(body)))
	if err != nil {
		return err
	}
	return finish(resp, http.MethodPut)
}

// DeleteBucket deletes an empty bucket.
func (c *Client) DeleteBucket(ctx context.Context, bucket string) error {
	resp, err := c.do(ctx, http.MethodDelete, bucket, "", "", nil, nil, 0)
	if err != nil {
		return err
	}
	return finish(resp, http.MethodDelete)
}

// DeleteObjects deletes up to 1000 keys in one request (quiet mode) and
// returns how many the server reported as failed, with the first failure.
func (c *Client) DeleteObjects(ctx context.Context, bucket string, keys []string) (int, error) {
	var b bytes.Buffer
	b.WriteString(`<Delete xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Quiet>true</Quiet>`)
	for _, k := range keys {
		b.WriteString("<Object><Key>")
		_ = xmlEscape(&b, k)
		b.WriteString("</Key></Object>")
	}
	b.WriteString("</Delete>")
	sum := md5.Sum(b.Bytes())
	hdr := make(http.Header, 4)
	hdr.Set("Content-Md5", base64.StdEncoding.EncodeToString(sum[:]))
	hdr.Set("Content-Type", "application/xml")
	n := int64(b.Len())
	resp, err := c.do(ctx, http.MethodPost, bucket, "", "delete=", hdr, io.NopCloser(&b), n)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, errorFrom(resp, http.MethodPost)
	}
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		return 0, fmt.Errorf("POST /%s?delete: read response: %w", bucket, err)
	}
	failed := bytes.Count(body, []byte("<Error>"))
	if failed > 0 {
		first, _ := xmlFieldBytes(body, "Error")
		return failed, fmt.Errorf("POST /%s?delete: %d of %d keys not deleted, first: %s %s", bucket, failed, len(keys),
			xmlField(first, "Key"), xmlField(first, "Code"))
	}
	return 0, nil
}

func xmlEscape(b *bytes.Buffer, s string) error {
	if !strings.ContainsAny(s, `<>&'"`) && isPrintableASCII(s) {
		b.WriteString(s)
		return nil
	}
	// Keys with markup or non-ASCII characters are rare here; they take
	// the standard escaper.
	if err := xml.EscapeText(b, []byte(s)); err != nil {
		return fmt.Errorf("escape key %q: %w", s, err)
	}
	return nil
}

func isPrintableASCII(s string) bool {
	for i := 0; i < len(s); i++ {
		if s[i] < 0x20 || s[i] >= 0x7f {
			return false
		}
	}
	return true
}

// ListPage is what one ListObjectsV2 page told.
type ListPage struct {
	Keys      int    // keys on the page
	Truncated bool   // more pages follow
	NextToken string // continuation token for the next page
	LastKey   string // greatest key on the page ("" if none)
}

// ListObjects fetches one ListObjectsV2 page of keys under prefix. It
// checks, as a side effect of parsing, that the keys are in strictly
// ascending order, start after `after` and carry the prefix: a violation is
// an ErrVerify error. buf is reused for the response body.
func (c *Client) ListObjects(ctx context.Context, bucket, prefix, token, after string, maxKeys int, buf *bytes.Buffer) (ListPage, error) {
	return c.listPage(ctx, bucket, prefix, token, after, maxKeys, buf, nil)
}

// listPage is ListObjects that also hands each key to onKey (when not
// nil); the slice is only valid during the call.
func (c *Client) listPage(ctx context.Context, bucket, prefix, token, after string, maxKeys int, buf *bytes.Buffer, onKey func([]byte)) (ListPage, error) {
	q := "list-type=2&max-keys=" + strconv.Itoa(maxKeys) + "&prefix=" + url.QueryEscape(prefix)
	if token != "" {
		q += "&continuation-token=" + url.QueryEscape(token)
	}
	resp, err := c.do(ctx, http.MethodGet, bucket, "", q, nil, nil, 0)
	if err != nil {
		return ListPage{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ListPage{}, errorFrom(resp, http.MethodGet)
	}
	buf.Reset()
	if _, err := buf.ReadFrom(resp.Body); err != nil {
		return ListPage{}, fmt.Errorf("list /%s: read body: %w", bucket, err)
	}
	p, err := parseListPage(buf.Bytes(), prefix, after, onKey)
	if err != nil {
		return p, fmt.Errorf("list /%s prefix %q: %w", bucket, prefix, err)
	}
	if p.Truncated && p.NextToken == "" {
		return p, fmt.Errorf("list /%s: truncated page without NextContinuationToken", bucket)
	}
	return p, nil
}

// parseListPage scans a ListBucketResult for its keys, IsTruncated and
// NextContinuationToken.
func parseListPage(body []byte, prefix, after string, onKey func([]byte)) (ListPage, error) {
	var p ListPage
	if !bytes.Contains(body, []byte("<ListBucketResult")) {
		return p, errors.New("response is not a ListBucketResult")
	}
	if v, ok := xmlFieldBytes(body, "IsTruncated"); ok {
		p.Truncated = string(v) == "true"
	}
	if v, ok := xmlFieldBytes(body, "NextContinuationToken"); ok {
		p.NextToken = xmlText(v)
	}
	prev := []byte(after)
	rest := body
	for {
		i := bytes.Index(rest, []byte("<Key>"))
		if i < 0 {
			break
		}
		rest = rest[i+len("<Key>"):]
		j := bytes.Index(rest, []byte("</Key>"))
		if j < 0 {
			return p, errors.New("unterminated <Key>")
		}
		k := rest[:j]
		rest = rest[j:]
		if bytes.IndexByte(k, '&') >= 0 {
			k = []byte(html.UnescapeString(string(k)))
		}
		if !bytes.HasPrefix(k, []byte(prefix)) {
			return p, fmt.Errorf("%w: key %q lacks prefix %q", ErrVerify, k, prefix)
		}
		if (p.Keys > 0 || len(prev) > 0) && bytes.Compare(k, prev) <= 0 {
			return p, fmt.Errorf("%w: key %q listed after %q", ErrVerify, k, prev)
		}
		if onKey != nil {
			onKey(k)
		}
		prev = k
		p.Keys++
	}
	if v, ok := xmlFieldBytes(body, "KeyCount"); ok {
		if n, err := strconv.Atoi(string(v)); err == nil && n != p.Keys {
			return p, fmt.Errorf("%w: KeyCount %d but %d keys listed", ErrVerify, n, p.Keys)
		}
	}
	if p.Keys > 0 {
		p.LastKey = string(prev)
	}
	return p, nil
}
