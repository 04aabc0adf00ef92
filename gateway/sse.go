package gateway

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"

	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/sse"
)

// Server-side encryption as S3 does it: SSE-C (the customer's key with
// every request) and SSE-S3 (a master key of the store's own). What a
// request asks for is read here; internal/sse holds the cryptography. A
// request for encryption the store cannot do is refused, never stored in
// plain text.

// S3's answers to encryption requests.
var (
	errSSECInsecure          = apiErr("InvalidRequest", 400, "Requests specifying Server Side Encryption with Customer provided keys must be made over a secure connection.")
	errSSEEncryptedObject    = apiErr("InvalidRequest", 400, "The object was stored using a form of Server Side Encryption. The correct parameters must be provided to retrieve the object.")
	errSSENotApplicable      = apiErr("InvalidRequest", 400, "The encryption parameters are not applicable to this object.")
	errSSEMultipartEncrypted = apiErr("InvalidRequest", 400, "The multipart upload initiate requested encryption. Subsequent part requests must include the appropriate encryption parameters.")
	errSSEMismatch           = apiErr("InvalidRequest", 400, "The provided encryption parameters did not match the ones used originally.")
	errSSEAlgorithm          = apiErr("InvalidEncryptionAlgorithmError", 400, "The encryption request that you specified is not valid. The valid value is AES256.")
	errSSECMissingKey        = apiErr("InvalidArgument", 400, "Requests specifying Server Side Encryption with Customer provided keys must provide an appropriate secret key.")
	errSSECMissingAlgorithm  = apiErr("InvalidArgument", 400, "Requests specifying Server Side Encryption with Customer provided keys must provide a valid encryption algorithm.")
	errSSECMissingMD5        = apiErr("InvalidArgument", 400, "Requests specifying Server Side Encryption with Customer provided keys must provide the client calculated MD5 of the secret key.")
	errSSECBadKey            = apiErr("InvalidArgument", 400, "The secret key was invalid for the specified algorithm.")
	errSSECBadMD5            = apiErr("InvalidArgument", 400, "The calculated MD5 hash of the key did not match the hash that was provided.")
	errSSEIncompatible       = apiErr("InvalidArgument", 400, "Server Side Encryption with Customer provided key is incompatible with the encryption method specified")
	errSSEMethod             = apiErr("InvalidArgument", 400, "The encryption method specified is not supported")
	errSSEKMSHeader          = apiErr("InvalidArgument", 400, "Server Side Encryption with AWS KMS managed key requires HTTP header x-amz-server-side-encryption : aws:kms")
	errSSEOnRead             = apiErr("InvalidArgument", 400, "The x-amz-server-side-encryption header is not supported for this operation: an object is read without naming its encryption.")
	errSSEKMS                = apiErr("NotImplemented", 501, "Server-side encryption with KMS keys (aws:kms, aws:kms:dsse) is not implemented here: use AES256 (SSE-S3) or SSE-C. Nothing was stored.")
	errSSEBucketKey          = apiErr("NotImplemented", 501, "S3 Bucket Keys are a feature of SSE-KMS, which is not implemented here. Nothing was stored.")
	errSSENoMasterKey        = apiErr("NotImplemented", 501, "Server-side encryption with S3 managed keys (SSE-S3) needs a master key, and this server has none: start it with --sse-master-key-file or RINGSTORE_SSE_MASTER_KEY. Nothing was stored.")
)

const (
	sseHeader        = "X-Amz-Server-Side-Encryption"
	customerPrefix   = "X-Amz-Server-Side-Encryption-Customer-"
	copySourcePrefix = "X-Amz-Copy-Source-Server-Side-Encryption-Customer-"
	sseAES256        = "AES256"
)

// customerKey is an SSE-C key a request carried, checked against its MD5.
type customerKey struct {
	key []byte
	md5 string // base64, as sent: responses echo it
}

// parseCustomerKey reads the SSE-C headers with prefix (the object's, or
// the copy source's); nil when there are none.
func parseCustomerKey(h http.Header, prefix string) (*customerKey, error) {
	alg, keyB64, md5B64 := h.Get(prefix+"Algorithm"), h.Get(prefix+"Key"), h.Get(prefix+"Key-Md5")
	if alg == "" && keyB64 == "" && md5B64 == "" {
		return nil, nil
	}
	arg := strings.ToLower(prefix) + "key"
	switch {
	case alg == "":
		return nil, errSSECMissingAlgorithm.with("ArgumentName", strings.ToLower(prefix)+"algorithm")
	case alg != sseAES256:
		return nil, errSSEAlgorithm.with("ArgumentName", strings.ToLower(prefix)+"algorithm", "ArgumentValue", alg)
	case keyB64 == "":
		return nil, errSSECMissingKey.with("ArgumentName", arg)
	case md5B64 == "":
		return nil, errSSECMissingMD5.with("ArgumentName", arg+"-MD5")
	}
	key, err := base64.StdEncoding.DecodeString(keyB64)
	if err != nil || len(key) != sse.KeySize {
		return nil, errSSECBadKey.with("ArgumentName", arg)
	}
	sum := md5.Sum(key)
	if given, err := base64.StdEncoding.DecodeString(md5B64); err != nil || !bytes.Equal(given, sum[:]) {
		return nil, errSSECBadMD5.with("ArgumentName", arg+"-MD5")
	}
	return &customerKey{key: key, md5: md5B64}, nil
}

// customerKeyOf returns the request's SSE-C key (the copy source's when
// copySource is set), refused if it came over a connection that let
// others read it.
func (s *Server) customerKeyOf(r *http.Request, copySource bool) (*customerKey, error) {
	prefix := customerPrefix
	if copySource {
		prefix = copySourcePrefix
	}
	ck, err := parseCustomerKey(r.Header, prefix)
	if ck == nil || err != nil {
		return ck, err
	}
	if !s.privateTransport(r) {
		return nil, errSSECInsecure
	}
	return ck, nil
}

// privateTransport reports whether a key sent with r stayed private on
// its way: over TLS (--tls-cert), from this machine (clients on the same
// host, or a TLS proxy in front of a store serving plain HTTP, reach it
// over loopback), or anywhere when the operator says TLS ends before the
// store (Config.SSECOverHTTP). S3 refuses SSE-C over plain HTTP, since a key
// that crossed a network in the clear must be taken as known.
func (s *Server) privateTransport(r *http.Request) bool {
	if r.TLS != nil || s.cfg.SSECOverHTTP {
		return true
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return false
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// writeSSE is the encryption a write asked for in its headers.
type writeSSE struct {
	s3       bool // x-amz-server-side-encryption: AES256
	customer *customerKey
}

func (w writeSSE) any() bool { return w.s3 || w.customer != nil }

// parseWriteSSE reads the encryption headers of a request that writes an
// object (PutObject, CopyObject's destination, CreateMultipartUpload).
func (s *Server) parseWriteSSE(r *http.Request) (writeSSE, error) {
	h := r.Header
	var out writeSSE
	method := h.Get(sseHeader)
	switch method {
	case "":
	case sseAES256:
		out.s3 = true
	case "aws:kms", "aws:kms:dsse":
		return out, errSSEKMS.with("Header", "x-amz-server-side-encryption", "AdditionalMessage", method)
	default:
		return out, errSSEMethod.with("ArgumentName", "x-amz-server-side-encryption", "ArgumentValue", method)
	}
	for _, name := range []string{"X-Amz-Server-Side-Encryption-Aws-Kms-Key-Id", "X-Amz-Server-Side-Encryption-Context"} {
		if h.Get(name) != "" {
			return out, errSSEKMSHeader.with("ArgumentName", strings.ToLower(name))
		}
	}
	switch v := h.Get("X-Amz-Server-Side-Encryption-Bucket-Key-Enabled"); strings.ToLower(v) {
	case "", "false":
	case "true":
		return out, errSSEBucketKey.with("Header", "x-amz-server-side-encryption-bucket-key-enabled")
	default:
		return out, ErrInvalidArgument.msg("x-amz-server-side-encryption-bucket-key-enabled must be true or false").with("ArgumentName", "x-amz-server-side-encryption-bucket-key-enabled", "ArgumentValue", v)
	}
	ck, err := s.customerKeyOf(r, false)
	if err != nil {
		return out, err
	}
	if ck != nil && out.s3 {
		return out, errSSEIncompatible.with("ArgumentName", "x-amz-server-side-encryption", "ArgumentValue", method)
	}
	out.customer = ck
	return out, nil
}

// checkReadSSE refuses x-amz-server-side-encryption on a read: S3 answers
// it 400, and a client that sends it expects something of the read the
// store would not check.
func checkReadSSE(h http.Header) error {
	if h.Get(sseHeader) != "" {
		return errSSEOnRead.with("ArgumentName", "x-amz-server-side-encryption")
	}
	return nil
}

// writeKey is the data key a new version (or upload) is sealed with, and
// what its record keeps of it.
type writeKey struct {
	seal     *sse.Sealer
	rec      *index.Encryption
	customer *customerKey // SSE-C: echoed in responses
}

// kind returns the encryption kind, 0 for plaintext.
func (k *writeKey) kind() uint8 {
	if k == nil {
		return 0
	}
	return k.rec.Kind
}

func (k *writeKey) sealer() *sse.Sealer {
	if k == nil {
		return nil
	}
	return k.seal
}

// etag is the ETag of bytes with MD5 md: the MD5 itself, as S3 gives for
// plaintext and SSE-S3, or for SSE-C a value derived from the data key.
func (k *writeKey) etag(md []byte) string {
	if k.kind() == index.EncryptionC {
		return k.seal.ETag(md)
	}
	return fmt.Sprintf("%x", md)
}

// writeEncryption decides how a new object of bucket b is stored: as the
// request asks, or else as the bucket's default says.
func (s *Server) writeEncryption(b *index.Bucket, req writeSSE) (kind uint8, err error) {
	def, err := s.bucketSSE(b)
	if err != nil {
		return 0, err
	}
	switch {
	case req.customer != nil:
		if def.blockSSEC {
			return 0, ErrAccessDenied.msg("The bucket's default encryption configuration blocks SSE-C (BlockedEncryptionTypes).")
		}
		return index.EncryptionC, nil
	case req.s3:
		if s.cfg.MasterKeys == nil {
			return 0, errSSENoMasterKey.with("Header", "x-amz-server-side-encryption")
		}
		return index.EncryptionS3, nil
	case def.algorithm == sseAES256:
		if s.cfg.MasterKeys == nil {
			// The configuration was set while the store had master keys.
			return 0, errSSENoMasterKey.msg("The bucket's default encryption is SSE-S3, and this server has no master key: start it with --sse-master-key-file or RINGSTORE_SSE_MASTER_KEY. Nothing was stored.")
		}
		return index.EncryptionS3, nil
	}
	return 0, nil
}

// newWriteKey makes the key of a new version or upload: a fresh data key,
// or dk when given (a copy that keeps its source's chunks), wrapped as
// kind says. It returns nil for plaintext.
func (s *Server) newWriteKey(kind uint8, customer *customerKey, dk *sse.DataKey) (*writeKey, error) {
	if kind == 0 {
		return nil, nil
	}
	k := sse.NewDataKey()
	if dk != nil {
		k = *dk
	}
	wk := &writeKey{seal: sse.NewSealer(k), customer: customer}
	switch kind {
	case index.EncryptionS3:
		id, wrapped := s.cfg.MasterKeys.Wrap(k)
		wk.rec = &index.Encryption{Kind: kind, KeyID: id, DataKey: wrapped}
	case index.EncryptionC:
		w, err := sse.WrapCustomer(customer.key, k)
		if err != nil {
			return nil, err
		}
		wk.rec = &index.Encryption{Kind: kind, Salt: w.Salt, KeyCheck: w.KeyCheck, DataKey: w.Wrapped}
	default:
		return nil, fmt.Errorf("encryption kind %d", kind)
	}
	return wk, nil
}

// openKey returns the sealer of a stored version (or upload) for a
// request that carried customer key ck (nil if none); nil for plaintext.
// A wrong SSE-C key is wrongKey: S3 answers a read 403, a part of an
// upload 400.
func (s *Server) openKey(enc *index.Encryption, ck *customerKey, missing, wrongKey *APIError) (*sse.Sealer, error) {
	if enc == nil || enc.Kind != index.EncryptionC {
		if ck != nil {
			return nil, errSSENotApplicable
		}
	}
	if enc == nil {
		return nil, nil
	}
	var k sse.DataKey
	var err error
	switch enc.Kind {
	case index.EncryptionS3:
		if s.cfg.MasterKeys == nil {
			return nil, fmt.Errorf("an SSE-S3 object (master key %q) and this node has no master keys: give every node the same --sse-master-key-file", enc.KeyID)
		}
		k, err = s.cfg.MasterKeys.Unwrap(enc.KeyID, enc.DataKey)
		if errors.Is(err, sse.ErrUnknownKeyID) {
			return nil, fmt.Errorf("%w: every node needs every master key that wrapped a stored object", err)
		}
	case index.EncryptionC:
		if ck == nil {
			return nil, missing
		}
		k, err = sse.UnwrapCustomer(ck.key, sse.CustomerWrap{Salt: enc.Salt, KeyCheck: enc.KeyCheck, Wrapped: enc.DataKey})
		if errors.Is(err, sse.ErrWrongKey) {
			return nil, wrongKey
		}
	default:
		return nil, fmt.Errorf("unknown encryption kind %d: written by a newer version of ringstore", enc.Kind)
	}
	if err != nil {
		return nil, fmt.Errorf("unwrapping a data key: %w", err)
	}
	return sse.NewSealer(k), nil
}

// readKey opens the key of a version a GET, HEAD or copy reads. A read
// that needs no bytes (HEAD) checks an SSE-C key, as S3 does, but leaves
// an SSE-S3 key wrapped.
func (s *Server) readKey(v *index.Version, ck *customerKey, needBytes bool) (*sse.Sealer, error) {
	if !needBytes && v.Encryption.KindOf() == index.EncryptionS3 {
		if ck != nil {
			return nil, errSSENotApplicable
		}
		return nil, nil
	}
	return s.openKey(v.Encryption, ck, errSSEEncryptedObject, ErrAccessDenied)
}

// uploadKey opens the key of a multipart upload for one of its parts.
func (s *Server) uploadKey(u *index.Upload, ck *customerKey) (*sse.Sealer, error) {
	return s.openKey(u.Encryption, ck, errSSEMultipartEncrypted, errSSEMismatch)
}

// setSSEHeaders adds the response headers S3 gives for an object (or
// upload) stored with enc; ck is the request's customer key.
func setSSEHeaders(h http.Header, enc *index.Encryption, ck *customerKey) {
	if enc == nil {
		return
	}
	switch enc.Kind {
	case index.EncryptionS3:
		h.Set("x-amz-server-side-encryption", sseAES256)
	case index.EncryptionC:
		h.Set("x-amz-server-side-encryption-customer-algorithm", sseAES256)
		if ck != nil {
			h.Set("x-amz-server-side-encryption-customer-key-MD5", ck.md5)
		}
	}
}

// sameCustomerKey reports whether two requests' customer keys are one.
func sameCustomerKey(a, b *customerKey) bool {
	return a != nil && b != nil && bytes.Equal(a.key, b.key)
}
