package auth

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"hash"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Credentials is an access key pair, for the signing helpers.
type Credentials struct {
	AccessKeyID     string
	SecretAccessKey string
}

// unsignedHeaders are left out by SignRequest because proxies and HTTP
// stacks add, drop or rewrite them in flight (the AWS SDKs skip the same).
var unsignedHeaders = []string{"authorization", "user-agent", "expect", "transfer-encoding", "x-amzn-trace-id", "accept-encoding", "connection"}

// SignRequest signs r in place for S3 in region at time t, using the
// Authorization header form. It sets X-Amz-Date and X-Amz-Content-Sha256
// (payloadHash is a hex SHA-256 of the body or one of the Mode tokens) and
// signs Host plus every other header present except hop-by-hop ones. It
// returns the signature, which is the seed for a signed aws-chunked body.
//
// It shares canonicalisation code with Verify, so tests of Verify use an
// independent signer; this one serves ringstore's own tools.
func SignRequest(r *http.Request, c Credentials, region string, t time.Time, payloadHash string) string {
	t = t.UTC()
	r.Header.Set("X-Amz-Date", t.Format(amzDateFormat))
	r.Header.Set("X-Amz-Content-Sha256", payloadHash)
	names := []string{"host"}
	if r.ContentLength > 0 {
		names = append(names, "content-length")
	}
	for k := range r.Header {
		lk := strings.ToLower(k)
		if !slices.Contains(unsignedHeaders, lk) && !slices.Contains(names, lk) {
			names = append(names, lk)
		}
	}
	slices.Sort(names)
	scope := scopeString(t, region, serviceS3)
	sig := signHex(SigningKey(c.SecretAccessKey, t, region, serviceS3),
		stringToSign(t, scope, canonicalRequest(r, names, payloadHash, false)))
	r.Header.Set("Authorization", algorithm+" Credential="+c.AccessKeyID+"/"+scope+
		", SignedHeaders="+strings.Join(names, ";")+", Signature="+sig)
	return sig
}

// Presign returns a presigned URL for r, signed for S3 in region at time t
// and valid for expires. Only the Host header is signed and the payload is
// UNSIGNED-PAYLOAD, the form browsers and curl can use as is.
func Presign(r *http.Request, c Credentials, region string, t time.Time, expires time.Duration) (string, error) {
	if expires < 0 || expires > maxPresignExpiry {
		return "", fmt.Errorf("auth: presign: expiry %v outside 0..%v", expires, maxPresignExpiry)
	}
	t = t.UTC()
	scope := scopeString(t, region, serviceS3)
	u := *r.URL
	q := u.Query()
	q.Set("X-Amz-Algorithm", algorithm)
	q.Set("X-Amz-Credential", c.AccessKeyID+"/"+scope)
	q.Set("X-Amz-Date", t.Format(amzDateFormat))
	q.Set("X-Amz-Expires", strconv.FormatInt(int64(expires/time.Second), 10))
	q.Set("X-Amz-SignedHeaders", "host")
	u.RawQuery = q.Encode()
	rr := *r
	rr.URL = &u
	sig := signHex(SigningKey(c.SecretAccessKey, t, region, serviceS3),
		stringToSign(t, scope, canonicalRequest(&rr, []string{"host"}, ModeUnsignedPayload, true)))
	u.RawQuery += "&X-Amz-Signature=" + url.QueryEscape(sig)
	if u.Host == "" {
		u.Host = r.Host
	}
	return u.String(), nil
}

// ChunkSigner produces the signature chain of a signed aws-chunked body.
type ChunkSigner struct {
	key     []byte
	amzDate string
	scope   string
	prefix  []byte
	prev    string
	mac     hash.Hash
}

// NewChunkSigner starts a chain for a request signed at t in region whose
// own (seed) signature is seed, as returned by SignRequest with payload
// hash ModeStreamingSigned or ModeStreamingSignedTrailer.
func NewChunkSigner(c Credentials, region string, t time.Time, seed string) *ChunkSigner {
	key := SigningKey(c.SecretAccessKey, t, region, serviceS3)
	return &ChunkSigner{
		key:     key,
		amzDate: t.UTC().Format(amzDateFormat),
		scope:   scopeString(t, region, serviceS3),
		prefix:  chunkSTSPrefix(t.UTC().Format(amzDateFormat), scopeString(t, region, serviceS3)),
		prev:    seed,
		mac:     hmac.New(sha256.New, key),
	}
}

// Sign returns the signature of the next chunk (sign an empty chunk last).
func (s *ChunkSigner) Sign(chunk []byte) string {
	sum := sha256.Sum256(chunk)
	var dataHex [2 * sha256.Size]byte
	hex.Encode(dataHex[:], sum[:])
	var sig [2 * sha256.Size]byte
	var scratch [sha256.Size]byte
	signChunk(&sig, &scratch, s.mac, s.prefix, []byte(s.prev), dataHex[:])
	s.prev = string(sig[:])
	return s.prev
}

// SignTrailer returns the x-amz-trailer-signature for trailers, which
// follow the final (empty) chunk that Sign has already signed.
func (s *ChunkSigner) SignTrailer(trailers http.Header) string {
	return trailerSignature(s.key, s.amzDate, s.scope, s.prev, trailers)
}
