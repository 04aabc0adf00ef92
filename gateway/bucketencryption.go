package gateway

import (
	"encoding/xml"
	"fmt"
	"net/http"
	"slices"
	"strings"

	"github.com/ringstore/ringstore/index"
)

// Bucket default encryption (PutBucketEncryption and friends). The
// configuration is a bucket config register, "encryption", holding a
// compact form that every write reads: the algorithm, then the blocked
// encryption types as given ("AES256", "AES256 blocked=SSE-C").
//
// S3 encrypts every new object with SSE-S3 unless told otherwise, and
// GetBucketEncryption answers that default for a bucket that has no
// configuration. The store does the same when it has master keys; without
// them it stores plaintext by default and says so: GetBucketEncryption
// answers ServerSideEncryptionConfigurationNotFoundError, as S3 did before
// it encrypted by default.

var errNoSuchEncryptionConfig = apiErr("ServerSideEncryptionConfigurationNotFoundError", 404, "The server side encryption configuration was not found")

type sseConfiguration struct {
	XMLName xml.Name  `xml:"ServerSideEncryptionConfiguration"`
	NS      string    `xml:"xmlns,attr,omitempty"`
	Rules   []sseRule `xml:"Rule"`
}

type sseRule struct {
	Apply            *sseDefault      `xml:"ApplyServerSideEncryptionByDefault"`
	BucketKeyEnabled *bool            `xml:"BucketKeyEnabled"`
	Blocked          *sseBlockedTypes `xml:"BlockedEncryptionTypes"`
}

type sseDefault struct {
	SSEAlgorithm   string `xml:"SSEAlgorithm"`
	KMSMasterKeyID string `xml:"KMSMasterKeyID,omitempty"`
}

type sseBlockedTypes struct {
	Types []string `xml:"EncryptionType"`
}

// bucketDefault is a bucket's default encryption.
type bucketDefault struct {
	algorithm string   // "AES256", or "" for plaintext
	blocked   []string // BlockedEncryptionTypes as given: "NONE", "SSE-C"
	blockSSEC bool
	explicit  bool // set by PutBucketEncryption, not the store's default
}

// parseSSEConfig checks a PutBucketEncryption document and returns the
// register value that stores it.
func parseSSEConfig(body []byte, haveMasterKeys bool) (string, error) {
	var c sseConfiguration
	if err := parseXML(body, &c); err != nil {
		return "", err
	}
	if len(c.Rules) != 1 {
		return "", ErrMalformedXML.msg("The XML you provided was not well-formed or did not validate against our published schema: a configuration has exactly one Rule.")
	}
	rule := c.Rules[0]
	if rule.Apply == nil {
		return "", ErrMalformedXML
	}
	switch alg := rule.Apply.SSEAlgorithm; alg {
	case sseAES256:
		if rule.Apply.KMSMasterKeyID != "" {
			return "", ErrInvalidArgument.msg("a KMSMasterKeyID is allowed only with SSEAlgorithm aws:kms").with("ArgumentName", "ApplyServerSideEncryptionByDefault")
		}
	case "aws:kms", "aws:kms:dsse":
		return "", errSSEKMS.with("AdditionalMessage", "SSEAlgorithm "+alg)
	default:
		return "", ErrMalformedXML
	}
	if !haveMasterKeys {
		return "", errSSENoMasterKey.msg("Default encryption with S3 managed keys (SSE-S3) needs a master key, and this server has none: start it with --sse-master-key-file or RINGSTORE_SSE_MASTER_KEY. The configuration was not stored.")
	}
	if rule.BucketKeyEnabled != nil && *rule.BucketKeyEnabled {
		return "", errSSEBucketKey
	}
	val := sseAES256
	if rule.Blocked != nil {
		if len(rule.Blocked.Types) == 0 {
			return "", ErrMalformedXML
		}
		for _, t := range rule.Blocked.Types {
			if t != "NONE" && t != "SSE-C" {
				return "", ErrMalformedXML
			}
			val += " blocked=" + t
		}
		if slices.Contains(rule.Blocked.Types, "NONE") && len(rule.Blocked.Types) > 1 {
			return "", ErrInvalidArgument.msg("BlockedEncryptionTypes cannot list NONE with another type").with("ArgumentName", "EncryptionType")
		}
	}
	return val, nil
}

// decodeBucketDefault reads the register value parseSSEConfig made.
func decodeBucketDefault(val string) (bucketDefault, error) {
	f := strings.Fields(val)
	if len(f) == 0 || f[0] != sseAES256 {
		return bucketDefault{}, fmt.Errorf("bucket encryption register %q", val)
	}
	d := bucketDefault{algorithm: f[0], explicit: true}
	for _, t := range f[1:] {
		typ, ok := strings.CutPrefix(t, "blocked=")
		if !ok {
			return bucketDefault{}, fmt.Errorf("bucket encryption register %q", val)
		}
		d.blocked = append(d.blocked, typ)
		d.blockSSEC = d.blockSSEC || typ == "SSE-C"
	}
	return d, nil
}

// bucketSSE returns b's default encryption.
func (s *Server) bucketSSE(b *index.Bucket) (bucketDefault, error) {
	if raw := b.Config("encryption"); len(raw) > 0 {
		return decodeBucketDefault(string(raw))
	}
	if s.cfg.MasterKeys != nil {
		return bucketDefault{algorithm: sseAES256}, nil
	}
	return bucketDefault{}, nil
}

func (s *Server) putBucketEncryption(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	if err := requireIntegrityHeader(r); err != nil {
		return err
	}
	body, err := readBody(r, 64<<10)
	if err != nil {
		return err
	}
	val, err := parseSSEConfig(body, s.cfg.MasterKeys != nil)
	if err != nil {
		return err
	}
	if err := s.setBucketConfig(r, bucket, "encryption", []byte(val)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) getBucketEncryption(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	b, err := s.bucket(r.Context(), bucket)
	if err != nil {
		return err
	}
	d, err := s.bucketSSE(b)
	if err != nil {
		return err
	}
	if d.algorithm == "" {
		return errNoSuchEncryptionConfig.with("BucketName", bucket)
	}
	off := false
	rule := sseRule{Apply: &sseDefault{SSEAlgorithm: d.algorithm}, BucketKeyEnabled: &off}
	if len(d.blocked) > 0 {
		rule.Blocked = &sseBlockedTypes{Types: d.blocked}
	}
	return writeXML(w, http.StatusOK, sseConfiguration{NS: s3NS, Rules: []sseRule{rule}})
}

func (s *Server) deleteBucketEncryption(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	if err := s.setBucketConfig(r, bucket, "encryption", nil); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
