package gateway

import (
	"strconv"
	"strings"
)

// byteRange is a resolved, satisfiable range [start, start+length).
type byteRange struct {
	start, length int64
}

// parseRange interprets a Range header for an object of size bytes the way
// S3 does: one "bytes=" range of the forms a-b, a- and -n. It returns
// nil (serve the whole object) for an absent header, for a header that is
// not a single well-formed byte range (S3 ignores those, as HTTP allows),
// and ErrInvalidRange when the range is well-formed but no byte of the
// object is in it.
func parseRange(h string, size int64) (*byteRange, error) {
	if h == "" {
		return nil, nil
	}
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok || strings.Contains(spec, ",") {
		return nil, nil
	}
	first, last, ok := strings.Cut(strings.TrimSpace(spec), "-")
	if !ok {
		return nil, nil
	}
	if first == "" {
		n, ok := parseDigits(last)
		if !ok {
			return nil, nil
		}
		if n == 0 {
			return nil, ErrInvalidRange
		}
		if size == 0 {
			// A tail read of an empty object is the whole (empty) object.
			return nil, nil
		}
		n = min(n, size)
		return &byteRange{start: size - n, length: n}, nil
	}
	start, ok := parseDigits(first)
	if !ok {
		return nil, nil
	}
	end := size - 1
	if last != "" {
		e, ok := parseDigits(last)
		if !ok || e < start {
			return nil, nil
		}
		end = min(e, size-1)
	}
	if start >= size {
		return nil, ErrInvalidRange
	}
	return &byteRange{start: start, length: end - start + 1}, nil
}

// parseDigits parses a non-negative decimal without sign or spaces.
func parseDigits(s string) (int64, bool) {
	if s == "" || len(s) > 19 {
		return 0, false
	}
	for i := 0; i < len(s); i++ {
		if s[i] < '0' || s[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}
