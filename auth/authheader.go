package auth

import (
	"fmt"
	"strings"
	"time"
)

// credential is the parsed "AK/yyyymmdd/region/service/aws4_request".
type credential struct {
	accessKey string
	date      string // yyyymmdd as sent
	region    string
	service   string
	terminal  string
}

func (c credential) scope() string {
	return c.date + "/" + c.region + "/" + c.service + "/" + c.terminal
}

// parseCredential splits a credential from the right, so the four scope
// fields are fixed and anything before them is the access key. ok is false
// when there are fewer than five fields or any is empty.
func parseCredential(s string) (credential, bool) {
	parts := strings.Split(s, "/")
	n := len(parts)
	if n < 5 {
		return credential{}, false
	}
	c := credential{
		accessKey: strings.Join(parts[:n-4], "/"),
		date:      parts[n-4],
		region:    parts[n-3],
		service:   parts[n-2],
		terminal:  parts[n-1],
	}
	if c.accessKey == "" || c.date == "" || c.region == "" || c.service == "" || c.terminal == "" {
		return credential{}, false
	}
	return c, true
}

// scopeProblem checks a credential scope against this endpoint and returns
// the detail S3 appends to its malformed-credential messages, or "".
// wrongRegion says the region was the problem: S3 then also names the
// expected region in a <Region> element, which SDKs use to redirect.
// region "" accepts any region: the region is still bound into the signing
// key, so a request signed for another region cannot be replayed here with
// a rewritten scope.
func scopeProblem(c credential, region, service string) (detail string, wrongRegion bool) {
	if _, err := time.Parse(scopeDateFormat, c.date); err != nil || len(c.date) != 8 {
		return fmt.Sprintf("incorrect date format %q. This date in the credential must be in the format \"yyyyMMdd\".", c.date), false
	}
	if region != "" && c.region != region {
		return fmt.Sprintf("the region '%s' is wrong; expecting '%s'", c.region, region), true
	}
	if c.service != service {
		return fmt.Sprintf("incorrect service %q. This endpoint belongs to %q.", c.service, service), false
	}
	if c.terminal != scopeTerminator {
		return fmt.Sprintf("incorrect terminal %q. This endpoint uses %q.", c.terminal, scopeTerminator), false
	}
	return "", false
}

// authHeader is a parsed AWS4-HMAC-SHA256 Authorization header.
type authHeader struct {
	cred          credential
	signedHeaders []string
	signature     string
}

const malformedCredential = `the Credential is mal-formed; expecting "<YOUR-AKID>/YYYYMMDD/REGION/SERVICE/aws4_request".`

// parseAuthHeader parses an Authorization header value. The caller has
// already routed "AWS ..." (SigV2) and other schemes away; v starts with
// the algorithm name.
func parseAuthHeader(v string) (*authHeader, *Error) {
	rest, ok := strings.CutPrefix(v, algorithm)
	if !ok || rest == "" || rest[0] != ' ' {
		return nil, errUnsupportedAuthType(v)
	}
	var h authHeader
	var haveCred, haveSigned, haveSig bool
	for part := range strings.SplitSeq(rest, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		k, val, found := strings.Cut(part, "=")
		if !found {
			return nil, errHeaderMalformed(fmt.Sprintf("the authorization component %q is malformed.", part))
		}
		switch k {
		case "Credential":
			c, ok := parseCredential(val)
			if !ok {
				return nil, errHeaderMalformed(malformedCredential)
			}
			h.cred, haveCred = c, true
		case "SignedHeaders":
			h.signedHeaders, haveSigned = splitSignedHeaders(val), true
			if h.signedHeaders == nil {
				return nil, errHeaderMalformed(fmt.Sprintf("the authorization component %q is malformed.", part))
			}
		case "Signature":
			h.signature, haveSig = val, true
		default:
			return nil, errHeaderMalformed(fmt.Sprintf("the authorization component %q is malformed.", part))
		}
	}
	if !haveCred || !haveSigned || !haveSig {
		return nil, errHeaderMalformed("the authorization header requires three components: Credential, SignedHeaders, and Signature.")
	}
	return &h, nil
}

// splitSignedHeaders splits "a;b;c", returning nil when any name is empty
// or repeated. Repeats are refused because each listed name adds its
// header's value to the canonical request again: a header list of "host"
// a hundred thousand times over a long Host header would make an
// unauthenticated request cost gigabytes to check.
func splitSignedHeaders(s string) []string {
	if s == "" {
		return nil
	}
	names := strings.Split(s, ";")
	seen := make(map[string]struct{}, len(names))
	for _, n := range names {
		if n == "" {
			return nil
		}
		lower := strings.ToLower(n)
		if _, dup := seen[lower]; dup {
			return nil
		}
		seen[lower] = struct{}{}
	}
	return names
}
