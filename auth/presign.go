package auth

import (
	"fmt"
	"net/url"
	"strconv"
	"time"
)

// maxPresignExpiry is SigV4's one-week ceiling on X-Amz-Expires.
const maxPresignExpiry = 7 * 24 * time.Hour

const (
	credentialParseError = "Error parsing the X-Amz-Credential parameter; "
	missingQueryParams   = "Query-string authentication version 4 requires the X-Amz-Algorithm, X-Amz-Credential, X-Amz-Signature, X-Amz-Date, X-Amz-SignedHeaders, and X-Amz-Expires parameters."
)

// parsePresigned handles the query-string (presigned URL) form. Unlike the
// header form it has no skew window into the past: X-Amz-Expires bounds
// it. A date more than the skew window in the future is "not valid yet".
func (v *Verifier) parsePresigned(q url.Values, now time.Time) (*signedRequest, *Error) {
	if alg := queryFirst(q, "X-Amz-Algorithm"); alg != "" && alg != algorithm {
		return nil, errQueryParams(`X-Amz-Algorithm only supports "AWS4-HMAC-SHA256"`)
	}
	for _, k := range []string{"X-Amz-Algorithm", "X-Amz-Credential", "X-Amz-Signature", "X-Amz-Date", "X-Amz-SignedHeaders", "X-Amz-Expires"} {
		if queryFirst(q, k) == "" {
			return nil, errQueryParams(missingQueryParams)
		}
	}
	cred, ok := parseCredential(queryFirst(q, "X-Amz-Credential"))
	if !ok {
		return nil, errQueryParams(credentialParseError + malformedCredential)
	}
	if p, wrongRegion := scopeProblem(cred, v.Region, v.serviceName()); p != "" {
		e := errQueryParams(credentialParseError + p)
		if wrongRegion {
			e.Fields = append(e.Fields, Field{"Region", v.Region})
		}
		return nil, e
	}
	amzDate := queryFirst(q, "X-Amz-Date")
	t, err := time.Parse(amzDateFormat, amzDate)
	if err != nil {
		return nil, errQueryParams(`X-Amz-Date must be in the ISO8601 Long Format "yyyyMMdd'T'HHmmss'Z'"`)
	}
	if day := t.Format(scopeDateFormat); day != cred.date {
		return nil, errQueryParams(fmt.Sprintf("Invalid credential date %q. This date is not the same as X-Amz-Date: %q.", cred.date, day))
	}
	expiresRaw := queryFirst(q, "X-Amz-Expires")
	expires, err := strconv.ParseInt(expiresRaw, 10, 64)
	switch {
	case err != nil:
		return nil, errQueryParams("X-Amz-Expires should be a number")
	case expires < 0:
		return nil, errQueryParams("X-Amz-Expires must be non-negative")
	case expires > int64(maxPresignExpiry/time.Second):
		return nil, errQueryParams("X-Amz-Expires must be less than a week (in seconds); that is, the given X-Amz-Expires must be less than 604800 seconds")
	}
	serverTime := now.UTC().Format(time.RFC3339)
	if t.Sub(now) > maxSkew {
		return nil, errNotYetValid(amzDate, serverTime)
	}
	// Valid while now < date+expires: X-Amz-Expires=0 is never valid,
	// which is what S3 (and the Ceph s3-tests run against it) expect.
	expiry := t.Add(time.Duration(expires) * time.Second)
	if !now.Before(expiry) {
		return nil, errExpired(expiresRaw, expiry.Format(time.RFC3339), serverTime)
	}
	signed := splitSignedHeaders(queryFirst(q, "X-Amz-SignedHeaders"))
	if signed == nil {
		return nil, errQueryParams(missingQueryParams)
	}
	// A presigned URL does not sign its body unless the signer pinned a
	// payload hash in the query.
	payload := queryFirst(q, "X-Amz-Content-Sha256")
	if payload == "" {
		payload = ModeUnsignedPayload
	} else if e := checkPayloadHash(payload); e != nil {
		return nil, e
	}
	return &signedRequest{
		cred:          cred,
		t:             t,
		signedHeaders: signed,
		signature:     queryFirst(q, "X-Amz-Signature"),
		payloadHash:   payload,
		presigned:     true,
	}, nil
}
