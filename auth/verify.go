package auth

import (
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
)

// KeyLookup returns the secret access key for an access key ID, or ok false
// when the ID is unknown.
type KeyLookup func(accessKeyID string) (secretAccessKey string, ok bool)

// Verifier checks AWS Signature Version 4 requests the way Amazon S3 does.
// It is safe for concurrent use once configured.
type Verifier struct {
	// Region is the region credential scopes must name, e.g. "us-east-1".
	// Empty accepts any region (the signature still binds the region the
	// client chose).
	Region string
	// Lookup resolves access keys to secrets.
	Lookup KeyLookup
	// Now is the clock for skew and expiry checks; nil means time.Now.
	Now func() time.Time

	// service is the scope service; "" means "s3". Only the AWS SigV4 test
	// suite, which signs for "service", sets it.
	service string

	// keys caches derived signing keys: deriving one is four HMACs, and a
	// client signs every request of a day with the same one.
	keys keyCache
}

// Payload modes: the x-amz-content-sha256 form a request used.
const (
	// ModeSignedPayload: a hex SHA-256 of the body, checked as it is read.
	ModeSignedPayload = "SIGNED-PAYLOAD"
	// ModeUnsignedPayload: the body is not covered by the signature.
	ModeUnsignedPayload = "UNSIGNED-PAYLOAD"
	// ModeStreamingSigned: aws-chunked body, every chunk signed.
	ModeStreamingSigned = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD"
	// ModeStreamingSignedTrailer: signed chunks followed by signed trailers.
	ModeStreamingSignedTrailer = "STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER"
	// ModeStreamingUnsignedTrailer: unsigned chunks followed by trailers.
	ModeStreamingUnsignedTrailer = "STREAMING-UNSIGNED-PAYLOAD-TRAILER"
)

// Result is what a verified request carries on to the gateway.
type Result struct {
	// AccessKeyID is the verified identity.
	AccessKeyID string
	// Body replaces r.Body. It yields the payload with any aws-chunked
	// framing removed and enforces what the signature promised about it.
	//
	// Contract: bytes are handed out as they arrive, before the check that
	// covers them has run (a chunk's signature is verified when the chunk
	// ends, a body's SHA-256 at its end). Body reports a failed check as an
	// error (an *Error: XAmzContentSHA256Mismatch, SignatureDoesNotMatch,
	// IncompleteBody, InvalidChunkSizeError, MalformedTrailerError) in place
	// of io.EOF. So the caller may stream the bytes to storage but must
	// commit them only after Read has returned io.EOF, and must discard
	// them on any other error.
	Body io.ReadCloser
	// DecodedLength is the payload length: x-amz-decoded-content-length for
	// aws-chunked bodies, else r.ContentLength; -1 when unknown.
	DecodedLength int64
	// Trailer returns the trailing headers (lowercase names, such as
	// "x-amz-checksum-crc32") once Body has returned io.EOF; nil before
	// that or when the request had none. Checksum values are not verified
	// here: that is the gateway's job, against the decoded bytes.
	Trailer func() http.Header
	// PayloadMode is one of the Mode constants.
	PayloadMode string
}

// signedRequest gathers what either auth form yields before the signature
// check, so both forms share that check.
type signedRequest struct {
	cred          credential
	t             time.Time
	signedHeaders []string
	signature     string
	payloadHash   string
	presigned     bool
}

func (v *Verifier) now() time.Time {
	if v.Now != nil {
		return v.Now()
	}
	return time.Now()
}

func (v *Verifier) serviceName() string {
	if v.service != "" {
		return v.service
	}
	return serviceS3
}

// IsAnonymous reports whether r carries no authentication at all, neither
// an Authorization header nor query-string credentials. Verify rejects such
// requests with AccessDenied; a gateway serving public buckets asks this
// first.
func IsAnonymous(r *http.Request) bool {
	if r.Header.Get("Authorization") != "" {
		return false
	}
	q := r.URL.Query()
	return !q.Has("X-Amz-Algorithm") && !q.Has("X-Amz-Credential") && !q.Has("X-Amz-Signature") &&
		!q.Has("AWSAccessKeyId") && !q.Has("Signature")
}

// Verify authenticates r (header or presigned form) and returns the caller
// identity and a body reader that enforces the payload's signature. The
// returned error is an *Error for every authentication failure.
func (v *Verifier) Verify(r *http.Request) (*Result, error) {
	if v.Lookup == nil {
		return nil, fmt.Errorf("auth: Verifier has no Lookup")
	}
	now := v.now()
	authz := r.Header.Get("Authorization")
	query := r.URL.Query()
	presign := query.Has("X-Amz-Algorithm") || query.Has("X-Amz-Credential") || query.Has("X-Amz-Signature")

	var sr *signedRequest
	var e *Error
	switch {
	case authz != "" && (presign || query.Has("Signature")):
		return nil, errTwoAuthMechanisms()
	case authz != "":
		sr, e = v.parseHeaderAuth(r, authz, now)
	case presign:
		sr, e = v.parsePresigned(query, now)
	case query.Has("AWSAccessKeyId") || query.Has("Signature"):
		return nil, errSignatureV2()
	default:
		return nil, errAnonymous()
	}
	if e != nil {
		return nil, e
	}

	secret, ok := v.Lookup(sr.cred.accessKey)
	if !ok {
		return nil, errInvalidAccessKey(sr.cred.accessKey)
	}
	if e := checkHeadersSigned(r, sr.signedHeaders); e != nil {
		return nil, e
	}
	key := v.signingKey(secret, sr.t, sr.cred.region, sr.cred.service)
	creq := canonicalRequest(r, sr.signedHeaders, sr.payloadHash, sr.presigned)
	sts := stringToSign(sr.t, sr.cred.scope(), creq)
	if !signaturesEqual(sr.signature, signHex(key, sts)) {
		return nil, errSignatureMismatch(sr.cred.accessKey)
	}
	return v.result(r, sr, key)
}

// parseHeaderAuth handles the Authorization-header form.
func (v *Verifier) parseHeaderAuth(r *http.Request, authz string, now time.Time) (*signedRequest, *Error) {
	if strings.HasPrefix(authz, "AWS ") {
		return nil, errSignatureV2()
	}
	h, e := parseAuthHeader(authz)
	if e != nil {
		return nil, e
	}
	if p, wrongRegion := scopeProblem(h.cred, v.Region, v.serviceName()); p != "" {
		e := errHeaderMalformed(p)
		if wrongRegion {
			e.Fields = append(e.Fields, Field{"Region", v.Region})
		}
		return nil, e
	}
	t, ok := requestTime(r)
	if !ok {
		return nil, errMissingDate()
	}
	if t.Format(scopeDateFormat) != h.cred.date {
		return nil, errHeaderMalformed("Invalid credential date. Date is not the same as X-Amz-Date.")
	}
	if d := now.Sub(t); d > maxSkew || d < -maxSkew {
		return nil, errSkewed(t.Format(amzDateFormat), now.UTC().Format(amzDateFormat))
	}
	payload := r.Header.Get("X-Amz-Content-Sha256")
	if payload == "" {
		return nil, errMissingContentSHA256()
	}
	if e := checkPayloadHash(payload); e != nil {
		return nil, e
	}
	return &signedRequest{
		cred:          h.cred,
		t:             t,
		signedHeaders: h.signedHeaders,
		signature:     h.signature,
		payloadHash:   payload,
	}, nil
}

// requestTime reads x-amz-date, falling back to Date. x-amz-date must be
// ISO 8601 basic; Date may also be any HTTP date form. The string to sign
// always carries the ISO form, whichever header supplied the time.
func requestTime(r *http.Request) (time.Time, bool) {
	if v := r.Header.Get("X-Amz-Date"); v != "" {
		t, err := time.Parse(amzDateFormat, v)
		return t, err == nil
	}
	v := r.Header.Get("Date")
	if v == "" {
		return time.Time{}, false
	}
	if t, err := time.Parse(amzDateFormat, v); err == nil {
		return t, true
	}
	t, err := http.ParseTime(v)
	return t.UTC(), err == nil
}

// checkPayloadHash accepts a hex SHA-256 or one of the tokens S3 knows.
// The legacy STREAMING-UNSIGNED-PAYLOAD (no trailer) is refused, as S3
// refuses it.
func checkPayloadHash(v string) *Error {
	switch v {
	case ModeUnsignedPayload, ModeStreamingSigned, ModeStreamingSignedTrailer, ModeStreamingUnsignedTrailer:
		return nil
	}
	if isHexSHA256(v) {
		return nil
	}
	return errBadContentSHA256(v)
}

// checkHeadersSigned enforces S3's rules that host is always signed and
// that every x-amz-* header the request carries is signed. Without host a
// signature does not name the endpoint or, for virtual-hosted requests,
// the bucket, so a captured request could be replayed against another
// host or bucket that trusts the same key. The x-amz-* rule keeps anybody
// from adding, say, x-amz-copy-source or x-amz-acl to a captured request.
// x-amz-content-sha256 is exempt, as at S3: its value is already bound
// into the canonical request as the payload hash. S3 reports an unsigned
// host as it reports an unsigned x-amz-* header.
func checkHeadersSigned(r *http.Request, signed []string) *Error {
	var missing []string
	if !slices.ContainsFunc(signed, func(s string) bool { return strings.EqualFold(s, "host") }) {
		missing = append(missing, "host")
	}
	var set map[string]bool // built only when a linear scan could be slow
	for k := range r.Header {
		lk := strings.ToLower(k)
		if !strings.HasPrefix(lk, "x-amz-") || lk == "x-amz-content-sha256" {
			continue
		}
		var ok bool
		if len(signed) <= 16 {
			ok = slices.ContainsFunc(signed, func(s string) bool { return strings.EqualFold(s, lk) })
		} else {
			if set == nil {
				set = make(map[string]bool, len(signed))
				for _, s := range signed {
					set[strings.ToLower(s)] = true
				}
			}
			ok = set[lk]
		}
		if !ok {
			missing = append(missing, lk)
		}
	}
	if missing == nil {
		return nil
	}
	slices.Sort(missing)
	return errHeadersNotSigned(strings.Join(missing, ", "))
}

// result builds the Result for a request whose signature checked out.
func (v *Verifier) result(r *http.Request, sr *signedRequest, key []byte) (*Result, error) {
	body := r.Body
	if body == nil {
		body = http.NoBody
	}
	res := &Result{
		AccessKeyID:   sr.cred.accessKey,
		DecodedLength: r.ContentLength,
		Trailer:       func() http.Header { return nil },
	}
	switch sr.payloadHash {
	case ModeUnsignedPayload:
		res.PayloadMode = ModeUnsignedPayload
		res.Body = &plainBody{rc: body}
		return res, nil
	case ModeStreamingSigned, ModeStreamingSignedTrailer, ModeStreamingUnsignedTrailer:
	default:
		res.PayloadMode = ModeSignedPayload
		res.Body = newSHA256Body(body, sr.payloadHash)
		return res, nil
	}

	res.PayloadMode = sr.payloadHash
	decoded, err := strconv.ParseInt(r.Header.Get("X-Amz-Decoded-Content-Length"), 10, 64)
	if err != nil || decoded < 0 {
		return nil, errMissingDecodedLength()
	}
	opts := ChunkedOptions{
		Signed:        sr.payloadHash != ModeStreamingUnsignedTrailer,
		Trailer:       sr.payloadHash != ModeStreamingSigned,
		SigningKey:    key,
		Time:          sr.t,
		Scope:         sr.cred.scope(),
		SeedSignature: sr.signature,
		DecodedLength: decoded,
		MinChunkSize:  MinChunkSize,
	}
	if opts.Trailer {
		opts.ExpectedTrailers = parseTrailerNames(r.Header.Values("X-Amz-Trailer"))
	}
	cr := NewChunkedReader(body, opts)
	res.DecodedLength = decoded
	res.Body = &chunkedBody{ChunkedReader: cr, closer: body}
	res.Trailer = cr.Trailer
	return res, nil
}

// parseTrailerNames splits x-amz-trailer values into lowercase names.
func parseTrailerNames(values []string) []string {
	var names []string
	for _, v := range values {
		for n := range strings.SplitSeq(v, ",") {
			if n = strings.ToLower(strings.TrimSpace(n)); n != "" {
				names = append(names, n)
			}
		}
	}
	return names
}

// queryFirst returns the first value of a query parameter.
func queryFirst(q url.Values, k string) string {
	if vs := q[k]; len(vs) > 0 {
		return vs[0]
	}
	return ""
}
