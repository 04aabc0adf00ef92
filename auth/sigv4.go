package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

const (
	algorithm       = "AWS4-HMAC-SHA256"
	amzDateFormat   = "20060102T150405Z"
	scopeDateFormat = "20060102"
	scopeTerminator = "aws4_request"
	serviceS3       = "s3"

	// emptySHA256 is hex(SHA-256("")): the payload hash every chunk
	// string-to-sign carries in place of the (absent) chunk headers.
	emptySHA256 = "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"

	// maxSkew is S3's allowed distance between request time and server time.
	maxSkew = 15 * time.Minute
)

// SigningKey derives the SigV4 signing key for secret on the UTC day of t,
// in region and service: HMAC chains over "AWS4"+secret, date, region,
// service and "aws4_request". Tools that produce signed aws-chunked bodies
// need it to sign chunks.
func SigningKey(secret string, t time.Time, region, service string) []byte {
	k := hmacSHA256([]byte("AWS4"+secret), t.UTC().Format(scopeDateFormat))
	k = hmacSHA256(k, region)
	k = hmacSHA256(k, service)
	return hmacSHA256(k, scopeTerminator)
}

func hmacSHA256(key []byte, data string) []byte {
	m := hmac.New(sha256.New, key)
	m.Write([]byte(data))
	return m.Sum(nil)
}

// scopeString is "<yyyymmdd>/<region>/<service>/aws4_request".
func scopeString(t time.Time, region, service string) string {
	return t.UTC().Format(scopeDateFormat) + "/" + region + "/" + service + "/" + scopeTerminator
}

// stringToSign is the SigV4 string to sign for a canonical request.
func stringToSign(t time.Time, scope, canonicalRequest string) string {
	sum := sha256.Sum256([]byte(canonicalRequest))
	return algorithm + "\n" + t.UTC().Format(amzDateFormat) + "\n" + scope + "\n" + hex.EncodeToString(sum[:])
}

// signHex returns hex(HMAC-SHA256(key, s)), the form signatures travel in.
func signHex(key []byte, s string) string {
	return hex.EncodeToString(hmacSHA256(key, s))
}

// canonicalRequest builds the SigV4 canonical request for r as S3 computes
// it. signedHeaders are the names exactly as the client listed them;
// payloadHash is the value that stands for the body. presigned drops
// X-Amz-Signature from the canonical query, as the signature cannot sign
// itself.
func canonicalRequest(r *http.Request, signedHeaders []string, payloadHash string, presigned bool) string {
	var b strings.Builder
	b.Grow(256 + len(r.URL.Path) + len(r.URL.RawQuery))
	b.WriteString(r.Method)
	b.WriteByte('\n')
	writeCanonicalURI(&b, r.URL.Path)
	b.WriteByte('\n')
	writeCanonicalQuery(&b, r.URL.RawQuery, presigned)
	b.WriteByte('\n')
	hdr := newHeaderIndex(r.Header)
	for _, name := range signedHeaders {
		b.WriteString(name)
		b.WriteByte(':')
		writeCanonicalHeaderValue(&b, r, hdr, name)
		b.WriteByte('\n')
	}
	b.WriteByte('\n')
	for i, name := range signedHeaders {
		if i > 0 {
			b.WriteByte(';')
		}
		b.WriteString(name)
	}
	b.WriteByte('\n')
	b.WriteString(payloadHash)
	return b.String()
}

// writeCanonicalURI writes the decoded path re-encoded once with the AWS
// rules. S3 neither normalises ("." and ".." are object-key characters) nor
// double-encodes, unlike the other AWS services; starting from the decoded
// path means a client that sent "%7E" and one that sent "~" canonicalise
// alike, as they do at S3.
func writeCanonicalURI(b *strings.Builder, path string) {
	if path == "" {
		b.WriteByte('/')
		return
	}
	writeURIEncoded(b, path, false)
}

// unreserved reports the bytes AWS's UriEncode leaves alone.
func unreserved(c byte) bool {
	return 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' ||
		c == '-' || c == '_' || c == '.' || c == '~'
}

const upperHex = "0123456789ABCDEF"

// writeURIEncoded is AWS's UriEncode: every byte but the unreserved ones
// (and '/' when encodeSlash is false) becomes %XX with uppercase hex.
func writeURIEncoded(b *strings.Builder, s string, encodeSlash bool) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if unreserved(c) || c == '/' && !encodeSlash {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(upperHex[c>>4])
		b.WriteByte(upperHex[c&15])
	}
}

func uriEncode(s string, encodeSlash bool) string {
	var b strings.Builder
	b.Grow(len(s))
	writeURIEncoded(&b, s, encodeSlash)
	return b.String()
}

type queryPair struct{ key, value string }

// writeCanonicalQuery writes the canonical query string: every parameter
// decoded, then AWS-encoded (with '/' encoded), sorted by key then value.
// A parameter without '=' has an empty value ("?lifecycle" -> "lifecycle=").
// '+' decodes to a space, as form encoding and S3 agree; an undecodable
// component is kept raw so the request fails on its signature, not here.
func writeCanonicalQuery(b *strings.Builder, rawQuery string, presigned bool) {
	if rawQuery == "" {
		return
	}
	pairs := make([]queryPair, 0, strings.Count(rawQuery, "&")+1)
	for part := range strings.SplitSeq(rawQuery, "&") {
		if part == "" {
			continue
		}
		k, v, _ := strings.Cut(part, "=")
		k, v = queryDecode(k), queryDecode(v)
		if presigned && k == "X-Amz-Signature" {
			continue
		}
		pairs = append(pairs, queryPair{uriEncode(k, true), uriEncode(v, true)})
	}
	slices.SortFunc(pairs, func(a, b queryPair) int {
		if c := strings.Compare(a.key, b.key); c != 0 {
			return c
		}
		return strings.Compare(a.value, b.value)
	})
	for i, p := range pairs {
		if i > 0 {
			b.WriteByte('&')
		}
		b.WriteString(p.key)
		b.WriteByte('=')
		b.WriteString(p.value)
	}
}

func queryDecode(s string) string {
	if !strings.ContainsAny(s, "%+") {
		return s
	}
	d, err := url.QueryUnescape(s)
	if err != nil {
		return s
	}
	return d
}

// writeCanonicalHeaderValue writes the canonical value of one signed header:
// every value trimmed with inner runs of spaces collapsed, joined with ','.
func writeCanonicalHeaderValue(b *strings.Builder, r *http.Request, hdr headerIndex, name string) {
	for i, v := range headerValues(r, hdr, name) {
		if i > 0 {
			b.WriteByte(',')
		}
		writeTrimmed(b, v)
	}
}

// headerValues returns what the client sent for a header, undoing the
// moves Go's server makes: Host lives in r.Host, Transfer-Encoding in
// r.TransferEncoding, and Content-Length in r.ContentLength when the
// request was built client-side (a server keeps it in r.Header too).
func headerValues(r *http.Request, hdr headerIndex, name string) []string {
	lower := strings.ToLower(name)
	if lower == "host" {
		host := r.Host
		if host == "" {
			host = r.URL.Host
		}
		return []string{host}
	}
	if vs := hdr.get(lower); len(vs) > 0 {
		return vs
	}
	switch lower {
	case "content-length":
		if r.ContentLength >= 0 {
			return []string{strconv.FormatInt(r.ContentLength, 10)}
		}
	case "transfer-encoding":
		if len(r.TransferEncoding) > 0 {
			return []string{strings.Join(r.TransferEncoding, ",")}
		}
	case "expect":
		// Proxies in front of the gateway may consume "Expect:
		// 100-continue"; it is the only value a client sends, so restore it
		// rather than fail the signature of an otherwise intact request.
		return []string{"100-continue"}
	}
	return nil
}

// headerIndex looks headers up case-insensitively. A server's r.Header has
// canonical keys only, so the common case is a plain map lookup; a
// hand-built header map with other spellings gets a lowercase index,
// built once so that lookups stay constant-time whatever the request's
// size.
type headerIndex struct {
	h     http.Header
	lower map[string][]string // nil when every key is canonical
}

func newHeaderIndex(h http.Header) headerIndex {
	for k := range h {
		if k != http.CanonicalHeaderKey(k) {
			lower := make(map[string][]string, len(h))
			for k, vs := range h {
				lk := strings.ToLower(k)
				lower[lk] = append(lower[lk], vs...)
			}
			return headerIndex{h: h, lower: lower}
		}
	}
	return headerIndex{h: h}
}

func (x headerIndex) get(lower string) []string {
	if x.lower != nil {
		return x.lower[lower]
	}
	return x.h[http.CanonicalHeaderKey(lower)]
}

// writeTrimmed writes v without leading and trailing whitespace and with
// each inner run of spaces reduced to one (SigV4's "Trimall").
func writeTrimmed(b *strings.Builder, v string) {
	v = strings.TrimSpace(v)
	if !strings.Contains(v, "  ") {
		b.WriteString(v)
		return
	}
	space := false
	for i := 0; i < len(v); i++ {
		c := v[i]
		if c == ' ' {
			if space {
				continue
			}
			space = true
		} else {
			space = false
		}
		b.WriteByte(c)
	}
}

// isHexSHA256 reports whether s is 64 hex digits.
func isHexSHA256[T string | []byte](s T) bool {
	if len(s) != 64 {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if !('0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F') {
			return false
		}
	}
	return true
}

// signaturesEqual compares a provided hex signature with a computed one in
// constant time, so response timing leaks nothing about the expected value.
func signaturesEqual(provided, computed string) bool {
	return hmac.Equal([]byte(provided), []byte(computed))
}

// chunkSTSPrefix is the head every chunk string-to-sign of one request
// shares: "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n".
func chunkSTSPrefix(amzDate, scope string) []byte {
	return []byte("AWS4-HMAC-SHA256-PAYLOAD\n" + amzDate + "\n" + scope + "\n")
}

// chunkSTSMiddle follows the previous signature: the hash of the (always
// empty) chunk headers.
var chunkSTSMiddle = []byte("\n" + emptySHA256 + "\n")

// signChunk writes to sig the signature of a chunk: hex(HMAC(key, prefix
// + prevSig + "\n" + hex(sha256("")) + "\n" + dataHex)), where dataHex is
// the hex SHA-256 of the chunk's data. mac is an HMAC under the signing
// key and scratch a work buffer; callers keep both (buffers passed to
// hash.Hash escape, so locals would cost an allocation per chunk).
func signChunk(sig *[2 * sha256.Size]byte, scratch *[sha256.Size]byte, mac hash.Hash, prefix, prevSig, dataHex []byte) {
	mac.Reset()
	mac.Write(prefix)
	mac.Write(prevSig)
	mac.Write(chunkSTSMiddle)
	mac.Write(dataHex)
	hex.Encode(sig[:], mac.Sum(scratch[:0]))
}
