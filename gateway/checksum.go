package gateway

import (
	"crypto/sha1"
	"crypto/sha256"
	"encoding/base64"
	"hash"
	"hash/crc32"
	"net/http"
	"strings"

	"github.com/minio/crc64nvme"
)

// The additional checksum algorithms S3 supports, by the upper-case name
// used in x-amz-checksum-algorithm; the header carrying a value is
// "x-amz-checksum-" + lower-case name.
var checksumAlgorithms = []string{"CRC32", "CRC32C", "CRC64NVME", "SHA1", "SHA256"}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func newChecksum(alg string) hash.Hash {
	switch alg {
	case "CRC32":
		return crc32.NewIEEE()
	case "CRC32C":
		return crc32.New(castagnoli)
	case "CRC64NVME":
		return crc64nvme.New()
	case "SHA1":
		return sha1.New()
	case "SHA256":
		return sha256.New()
	}
	return nil
}

func checksumHeader(alg string) string { return "x-amz-checksum-" + strings.ToLower(alg) }

func validAlgorithm(alg string) bool { return newChecksum(alg) != nil }

// checksumSpec is what a request asks of an additional checksum: which
// algorithm, and the value to verify (from a header now, or from the
// trailer once the body is read).
type checksumSpec struct {
	alg         string
	value       string // base64; empty when only the algorithm is named
	fromTrailer bool
}

// parseChecksum reads the checksum headers of a write request. It returns
// nil when the request names no checksum.
func parseChecksum(h http.Header) (*checksumSpec, error) {
	var spec *checksumSpec
	for _, alg := range checksumAlgorithms {
		v := h.Get(checksumHeader(alg))
		if v == "" {
			continue
		}
		if spec != nil {
			return nil, ErrInvalidRequest.msg("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		if !validChecksumValue(alg, v) {
			return nil, ErrInvalidRequest.msg("Value for %s header is invalid.", checksumHeader(alg))
		}
		spec = &checksumSpec{alg: alg, value: v}
	}
	if t := h.Get("x-amz-trailer"); t != "" {
		name := strings.ToLower(strings.TrimSpace(t))
		alg := strings.ToUpper(strings.TrimPrefix(name, "x-amz-checksum-"))
		if !strings.HasPrefix(name, "x-amz-checksum-") || !validAlgorithm(alg) {
			return nil, ErrInvalidRequest.msg("The value specified in the x-amz-trailer header is not supported")
		}
		if spec != nil {
			return nil, ErrInvalidRequest.msg("Expecting a single x-amz-checksum- header. Multiple checksum Types are not allowed.")
		}
		spec = &checksumSpec{alg: alg, fromTrailer: true}
	}
	for _, name := range []string{"x-amz-sdk-checksum-algorithm", "x-amz-checksum-algorithm"} {
		v := strings.ToUpper(h.Get(name))
		if v == "" {
			continue
		}
		if !validAlgorithm(v) {
			return nil, ErrInvalidRequest.msg("Value for %s header is invalid.", name)
		}
		if spec == nil {
			spec = &checksumSpec{alg: v}
		} else if spec.alg != v {
			return nil, ErrInvalidRequest.msg("Value for %s header is invalid.", name)
		}
	}
	return spec, nil
}

func validChecksumValue(alg, v string) bool {
	b, err := base64.StdEncoding.DecodeString(v)
	return err == nil && len(b) == newChecksum(alg).Size()
}

func encodeB64(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
