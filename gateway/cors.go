package gateway

import (
	"encoding/xml"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ringstore/ringstore/index"
)

// Bucket CORS: the configuration is stored as a bucket config register;
// OPTIONS preflights are answered from it without authentication (browsers
// cannot sign them), and actual requests carrying Origin get the matching
// rule's headers.

type corsConfiguration struct {
	XMLName xml.Name   `xml:"CORSConfiguration"`
	NS      string     `xml:"xmlns,attr,omitempty"`
	Rules   []corsRule `xml:"CORSRule"`
}

type corsRule struct {
	ID             string   `xml:"ID,omitempty"`
	AllowedHeaders []string `xml:"AllowedHeader"`
	AllowedMethods []string `xml:"AllowedMethod"`
	AllowedOrigins []string `xml:"AllowedOrigin"`
	ExposeHeaders  []string `xml:"ExposeHeader"`
	MaxAgeSeconds  *int     `xml:"MaxAgeSeconds"`
}

var (
	errNoSuchCORS    = apiErr("NoSuchCORSConfiguration", 404, "The CORS configuration does not exist")
	errCORSForbidden = apiErr("AccessForbidden", 403, "CORSResponse: This CORS request is not allowed. This is usually because the evalution of Origin, request method / Access-Control-Request-Method or Access-Control-Request-Headers are not whitelisted by the resource's CORS spec.")
	errCORSDisabled  = apiErr("AccessForbidden", 403, "CORSResponse: CORS is not enabled for this bucket.")
)

var corsMethods = []string{"GET", "PUT", "POST", "DELETE", "HEAD"}

func validateCORS(c *corsConfiguration) error {
	if len(c.Rules) == 0 || len(c.Rules) > 100 {
		return ErrMalformedXML
	}
	for _, r := range c.Rules {
		if len(r.AllowedMethods) == 0 || len(r.AllowedOrigins) == 0 || len(r.ID) > 255 {
			return ErrMalformedXML
		}
		for _, m := range r.AllowedMethods {
			if !slices.Contains(corsMethods, m) {
				return ErrInvalidRequest.msg("Found unsupported HTTP method in CORS config. Unsupported method is %s", m)
			}
		}
		for _, o := range r.AllowedOrigins {
			if strings.Count(o, "*") > 1 {
				return ErrInvalidRequest.msg("AllowedOrigin %q can not have more than one wildcard.", o)
			}
		}
		for _, h := range r.AllowedHeaders {
			if strings.Count(h, "*") > 1 {
				return ErrInvalidRequest.msg("AllowedHeader %q can not have more than one wildcard.", h)
			}
		}
		if r.MaxAgeSeconds != nil && *r.MaxAgeSeconds < 0 {
			return ErrMalformedXML
		}
	}
	return nil
}

func (s *Server) putBucketCors(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	if err := requireIntegrityHeader(r); err != nil {
		return err
	}
	var c corsConfiguration
	if err := readXML(r, &c, 64<<10, false); err != nil {
		return err
	}
	if err := validateCORS(&c); err != nil {
		return err
	}
	c.NS = s3NS
	val, err := xml.Marshal(c)
	if err != nil {
		return err
	}
	if err := s.setBucketConfig(r, bucket, "cors", val); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getBucketCors(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	b, err := s.bucket(r.Context(), bucket)
	if err != nil {
		return err
	}
	c, err := bucketCORS(b)
	if err != nil {
		return err
	}
	if c == nil {
		return errNoSuchCORS.with("BucketName", bucket)
	}
	return writeXML(w, http.StatusOK, c)
}

func (s *Server) deleteBucketCors(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	if err := s.setBucketConfig(r, bucket, "cors", nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func bucketCORS(b *index.Bucket) (*corsConfiguration, error) {
	raw := b.Config("cors")
	if len(raw) == 0 {
		return nil, nil
	}
	var c corsConfiguration
	if err := xml.Unmarshal(raw, &c); err != nil {
		return nil, err
	}
	return &c, nil
}

// requireIntegrityHeader enforces S3's rule that some configuration
// requests carry Content-MD5 or an additional checksum.
func requireIntegrityHeader(r *http.Request) error {
	if _, ok := r.Header["Content-Md5"]; ok {
		return nil
	}
	spec, err := parseChecksum(r.Header)
	if err != nil {
		return err
	}
	if spec == nil {
		return ErrInvalidRequest.msg("Missing required header for this request: Content-MD5")
	}
	return nil
}

// wildcardMatch matches s against a pattern with at most one '*'.
func wildcardMatch(pattern, s string) bool {
	i := strings.IndexByte(pattern, '*')
	if i < 0 {
		return pattern == s
	}
	pre, suf := pattern[:i], pattern[i+1:]
	return len(s) >= len(pre)+len(suf) && strings.HasPrefix(s, pre) && strings.HasSuffix(s, suf)
}

// matchCORS returns the first rule allowing origin, method and every
// requested header, or nil.
func matchCORS(c *corsConfiguration, origin, method string, headers []string) *corsRule {
	for i := range c.Rules {
		rule := &c.Rules[i]
		if !slices.ContainsFunc(rule.AllowedOrigins, func(o string) bool { return wildcardMatch(o, origin) }) {
			continue
		}
		if !slices.Contains(rule.AllowedMethods, method) {
			continue
		}
		ok := true
		for _, h := range headers {
			if !slices.ContainsFunc(rule.AllowedHeaders, func(p string) bool { return wildcardMatch(strings.ToLower(p), h) }) {
				ok = false
				break
			}
		}
		if ok {
			return rule
		}
	}
	return nil
}

func setCORSHeaders(h http.Header, rule *corsRule, origin string) {
	allowOrigin := origin
	if slices.Contains(rule.AllowedOrigins, "*") {
		allowOrigin = "*"
	}
	h.Set("Access-Control-Allow-Origin", allowOrigin)
	h.Set("Access-Control-Allow-Methods", strings.Join(rule.AllowedMethods, ", "))
	if len(rule.ExposeHeaders) > 0 {
		h.Set("Access-Control-Expose-Headers", strings.Join(rule.ExposeHeaders, ", "))
	}
	if rule.MaxAgeSeconds != nil {
		h.Set("Access-Control-Max-Age", strconv.Itoa(*rule.MaxAgeSeconds))
	}
	if allowOrigin != "*" {
		h.Set("Access-Control-Allow-Credentials", "true")
	}
	h.Add("Vary", "Origin, Access-Control-Request-Headers, Access-Control-Request-Method")
}

// preflight answers an OPTIONS request from the bucket's CORS rules.
func (s *Server) preflight(w http.ResponseWriter, r *http.Request) {
	bucket, _, err := s.resolve(r, false)
	if err == nil {
		err = checkBucketName(bucket)
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	origin := r.Header.Get("Origin")
	method := r.Header.Get("Access-Control-Request-Method")
	if origin == "" {
		s.writeError(w, r, apiErr("BadRequest", 400, "Insufficient information. Origin request header needed."))
		return
	}
	if method == "" {
		s.writeError(w, r, apiErr("BadRequest", 400, "Invalid Access-Control-Request-Method: null"))
		return
	}
	b, err := s.cfg.Index.GetBucket(r.Context(), bucket)
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	var c *corsConfiguration
	if b.Live() {
		if c, err = bucketCORS(b); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	if c == nil {
		s.writeError(w, r, anonymous(errCORSDisabled))
		return
	}
	var headers []string
	for _, v := range r.Header.Values("Access-Control-Request-Headers") {
		for _, h := range strings.Split(v, ",") {
			if h = strings.ToLower(strings.TrimSpace(h)); h != "" {
				headers = append(headers, h)
			}
		}
	}
	rule := matchCORS(c, origin, method, headers)
	if rule == nil {
		s.writeError(w, r, anonymous(errCORSForbidden))
		return
	}
	setCORSHeaders(w.Header(), rule, origin)
	if len(headers) > 0 {
		w.Header().Set("Access-Control-Allow-Headers", strings.Join(headers, ", "))
	}
	w.WriteHeader(http.StatusOK)
}

// addCORS sets the CORS headers of an actual (non-preflight) request that
// carries Origin, when a rule of the bucket allows it.
func (s *Server) addCORS(w http.ResponseWriter, r *http.Request, bucket string) {
	origin := r.Header.Get("Origin")
	if origin == "" {
		return
	}
	b, err := s.cfg.Index.GetBucket(r.Context(), bucket)
	if err != nil || !b.Live() {
		return
	}
	c, err := bucketCORS(b)
	if err != nil || c == nil {
		return
	}
	if rule := matchCORS(c, origin, r.Method, nil); rule != nil {
		setCORSHeaders(w.Header(), rule, origin)
	}
}
