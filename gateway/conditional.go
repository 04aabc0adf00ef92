package gateway

import (
	"net/http"
	"strings"
	"time"
)

// checkConditions evaluates the If-* headers of a GET or HEAD against an
// object's ETag (unquoted) and Last-Modified time, with S3's precedence
// (RFC 9110 §13.2.2): If-Match, else If-Unmodified-Since, decides 412;
// then If-None-Match, else If-Modified-Since, decides 304. Dates that do
// not parse are ignored, as HTTP requires.
func checkConditions(h http.Header, etag string, lastModified time.Time) error {
	lm := lastModified.Truncate(time.Second)
	if im := h.Get("If-Match"); im != "" {
		if !etagMatches(im, etag) {
			return ErrPreconditionFailed.with("Condition", "If-Match")
		}
	} else if t, ok := httpDate(h.Get("If-Unmodified-Since")); ok && lm.After(t) {
		return ErrPreconditionFailed.with("Condition", "If-Unmodified-Since")
	}
	if inm := h.Get("If-None-Match"); inm != "" {
		if etagMatches(inm, etag) {
			return ErrNotModified
		}
	} else if t, ok := httpDate(h.Get("If-Modified-Since")); ok && !lm.After(t) {
		return ErrNotModified
	}
	return nil
}

// etagMatches reports whether a comma-separated If-Match/If-None-Match
// list names etag (or is "*").
func etagMatches(list, etag string) bool {
	for _, c := range strings.Split(list, ",") {
		c = strings.TrimSpace(c)
		if c == "*" {
			return true
		}
		c = strings.TrimPrefix(c, "W/")
		if strings.Trim(c, `"`) == etag {
			return true
		}
	}
	return false
}

func httpDate(v string) (time.Time, bool) {
	if v == "" {
		return time.Time{}, false
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return time.Time{}, false
	}
	return t, true
}
