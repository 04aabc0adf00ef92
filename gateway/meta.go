package gateway

import (
	"crypto/rand"
	"encoding/hex"
	"net/http"
	"slices"
	"strconv"
	"strings"

	"github.com/ringstore/ringstore/index"
)

// storedHeaders are the request headers kept with an object and returned
// by GET and HEAD, besides x-amz-meta-*.
var storedHeaders = []string{
	"Cache-Control", "Content-Disposition", "Content-Encoding", "Content-Language",
	"Content-Type", "Expires", "X-Amz-Website-Redirect-Location",
}

// userMetaMaxBytes is S3's limit on the user-defined metadata of an object
// (names and values of x-amz-meta-* headers).
const userMetaMaxBytes = 2 << 10

var storageClasses = []string{
	"STANDARD", "REDUCED_REDUNDANCY", "STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING",
	"GLACIER", "DEEP_ARCHIVE", "OUTPOSTS", "GLACIER_IR", "SNOW", "EXPRESS_ONEZONE",
}

// objectHeaders collects the headers of a write request that are stored
// with the object, sorted by name.
func objectHeaders(h http.Header) ([]index.KV, error) {
	var out []index.KV
	metaBytes := 0
	for name, vs := range h {
		lower := strings.ToLower(name)
		if strings.HasPrefix(lower, "x-amz-meta-") {
			v := strings.Join(vs, ",")
			metaBytes += len(lower) - len("x-amz-meta-") + len(v)
			out = append(out, index.KV{Name: lower, Value: v})
		}
	}
	if metaBytes > userMetaMaxBytes {
		return nil, ErrMetadataTooLarge.with("Size", itoa(metaBytes), "MaxSizeAllowed", itoa(userMetaMaxBytes))
	}
	for _, name := range storedHeaders {
		v := h.Get(name)
		if name == "Content-Encoding" {
			v = stripAWSChunked(v)
		}
		if v != "" {
			out = append(out, index.KV{Name: strings.ToLower(name), Value: v})
		}
	}
	if h.Get("Content-Type") == "" {
		out = append(out, index.KV{Name: "content-type", Value: "binary/octet-stream"})
	}
	slices.SortFunc(out, func(a, b index.KV) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// stripAWSChunked removes the aws-chunked token that SDKs add to
// Content-Encoding for streaming uploads; it describes the transfer, not
// the object.
func stripAWSChunked(v string) string {
	if !strings.Contains(v, "aws-chunked") {
		return v
	}
	var keep []string
	for _, p := range strings.Split(v, ",") {
		if p = strings.TrimSpace(p); p != "" && !strings.EqualFold(p, "aws-chunked") {
			keep = append(keep, p)
		}
	}
	return strings.Join(keep, ",")
}

func storageClass(h http.Header) (string, error) {
	sc := h.Get("X-Amz-Storage-Class")
	if sc == "" || sc == "STANDARD" {
		return "", nil
	}
	if !slices.Contains(storageClasses, sc) {
		return "", ErrInvalidStorageClass
	}
	return sc, nil
}

// newVersionID returns a fresh S3 version id: 32 url-safe characters.
func newVersionID(ts index.Timestamp) string {
	var b [16]byte
	for i := 0; i < 8; i++ {
		b[i] = byte(ts >> (56 - 8*i))
	}
	_, _ = rand.Read(b[8:])
	return hex.EncodeToString(b[:])
}

// validVersionID reports whether id could have been issued by
// newVersionID, or is "null".
func validVersionID(id string) bool {
	if id == "null" {
		return true
	}
	if len(id) != 32 {
		return false
	}
	_, err := hex.DecodeString(id)
	return err == nil
}

func itoa(n int) string { return strconv.Itoa(n) }
