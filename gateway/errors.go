package gateway

import (
	"encoding/xml"
	"errors"
	"fmt"
	"net/http"
	"syscall"

	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
)

// APIError is an S3 error response.
type APIError struct {
	Code    string
	Status  int
	Message string
	// Extra elements S3 adds to some errors (BucketName, Key, ArgumentName,
	// ...), written after Message in this order.
	Extra []xmlField
	// Hide resource names: set for errors answered before the caller is
	// authenticated.
	anonymous bool
}

type xmlField struct{ Name, Value string }

func (e *APIError) Error() string { return e.Code + ": " + e.Message }

// with returns a copy of e with extra fields.
func (e *APIError) with(kv ...string) *APIError {
	c := *e
	c.Extra = append([]xmlField(nil), e.Extra...)
	for i := 0; i+1 < len(kv); i += 2 {
		c.Extra = append(c.Extra, xmlField{kv[i], kv[i+1]})
	}
	return &c
}

// msg returns a copy of e with another message.
func (e *APIError) msg(format string, args ...any) *APIError {
	c := *e
	c.Message = fmt.Sprintf(format, args...)
	return &c
}

func apiErr(code string, status int, message string) *APIError {
	return &APIError{Code: code, Status: status, Message: message}
}

// The errors S3 documents, with its status codes and messages.
var (
	ErrAccessDenied                = apiErr("AccessDenied", 403, "Access Denied")
	ErrBadDigest                   = apiErr("BadDigest", 400, "The Content-MD5 you specified did not match what we received.")
	ErrBucketAlreadyExists         = apiErr("BucketAlreadyExists", 409, "The requested bucket name is not available. The bucket namespace is shared by all users of the system. Please select a different name and try again.")
	ErrBucketAlreadyOwnedByYou     = apiErr("BucketAlreadyOwnedByYou", 409, "Your previous request to create the named bucket succeeded and you already own it.")
	ErrBucketNotEmpty              = apiErr("BucketNotEmpty", 409, "The bucket you tried to delete is not empty")
	ErrEntityTooLarge              = apiErr("EntityTooLarge", 400, "Your proposed upload exceeds the maximum allowed object size.")
	ErrEntityTooSmall              = apiErr("EntityTooSmall", 400, "Your proposed upload is smaller than the minimum allowed object size.")
	ErrIllegalLocationConstraint   = apiErr("IllegalLocationConstraintException", 400, "The specified location-constraint is not valid for this endpoint.")
	ErrIncompleteBody              = apiErr("IncompleteBody", 400, "You did not provide the number of bytes specified by the Content-Length HTTP header.")
	ErrInternal                    = apiErr("InternalError", 500, "We encountered an internal error. Please try again.")
	ErrInvalidArgument             = apiErr("InvalidArgument", 400, "Invalid Argument")
	ErrInvalidBucketName           = apiErr("InvalidBucketName", 400, "The specified bucket is not valid.")
	ErrInvalidDigest               = apiErr("InvalidDigest", 400, "The Content-MD5 you specified is not valid.")
	ErrInvalidRange                = apiErr("InvalidRange", 416, "The requested range is not satisfiable")
	ErrInvalidRequest              = apiErr("InvalidRequest", 400, "Invalid Request")
	ErrKeyTooLong                  = apiErr("KeyTooLongError", 400, "Your key is too long")
	ErrMalformedXML                = apiErr("MalformedXML", 400, "The XML you provided was not well-formed or did not validate against our published schema.")
	ErrMethodNotAllowed            = apiErr("MethodNotAllowed", 405, "The specified method is not allowed against this resource.")
	ErrMissingContentLength        = apiErr("MissingContentLength", 411, "You must provide the Content-Length HTTP header.")
	ErrNoSuchBucket                = apiErr("NoSuchBucket", 404, "The specified bucket does not exist")
	ErrNoSuchKey                   = apiErr("NoSuchKey", 404, "The specified key does not exist.")
	ErrNoSuchVersion               = apiErr("NoSuchVersion", 404, "The specified version does not exist.")
	ErrNotImplemented              = apiErr("NotImplemented", 501, "A header you provided implies functionality that is not implemented")
	ErrNotModified                 = apiErr("NotModified", 304, "Not Modified")
	ErrPreconditionFailed          = apiErr("PreconditionFailed", 412, "At least one of the pre-conditions you specified did not hold")
	ErrRequestTimeout              = apiErr("RequestTimeout", 400, "Your socket connection to the server was not read from or written to within the timeout period. Idle connections will be closed.")
	ErrSlowDown                    = apiErr("SlowDown", 503, "Please reduce your request rate.")
	ErrServiceUnavailable          = apiErr("ServiceUnavailable", 503, "Service is unable to handle request.")
	ErrUnexpectedContent           = apiErr("UnexpectedContent", 400, "This request does not support content")
	ErrMetadataTooLarge            = apiErr("MetadataTooLarge", 400, "Your metadata headers exceed the maximum allowed metadata size.")
	ErrInvalidObjectState          = apiErr("InvalidObjectState", 403, "The operation is not valid for the current state of the object.")
	ErrInvalidURI                  = apiErr("InvalidURI", 400, "Couldn't parse the specified URI.")
	ErrRequestHeaderSectionTooLarg = apiErr("RequestHeaderSectionTooLarge", 400, "Your request header section exceeds the maximum allowed size.")
	ErrXAmzContentSHA256Mismatch   = apiErr("XAmzContentSHA256Mismatch", 400, "The provided 'x-amz-content-sha256' header does not match what was computed.")
	ErrInvalidEncodingType         = apiErr("InvalidArgument", 400, "Invalid Encoding Method specified in Request")
	ErrInvalidMaxKeys              = apiErr("InvalidArgument", 400, "Argument maxKeys must be an integer between 0 and 2147483647")
	ErrInvalidContinuationToken    = apiErr("InvalidArgument", 400, "The continuation token provided is incorrect")
	ErrInvalidStorageClass         = apiErr("InvalidStorageClass", 400, "The storage class you specified is not valid")
	ErrInvalidBucketState          = apiErr("InvalidBucketState", 409, "The request is not valid with the current state of the bucket.")
	ErrTooManyBuckets              = apiErr("TooManyBuckets", 400, "You have attempted to create more buckets than allowed")
)

// The errors of a full disk. S3 has no code for it; HTTP has 507, which
// SDKs do not retry: a full disk does not empty itself within a retry's
// backoff.
var (
	ErrBelowFloor = apiErr("InsufficientStorage", 507, "The disk of this node is nearly full: its free space is below the node's --min-free floor, so it takes no new data. "+
		"Reads and deletes still work. Delete objects or abort multipart uploads (garbage collection then frees their space), or add disk space; writes resume by themselves.")
	ErrDiskFull = apiErr("InsufficientStorage", 507, "The disk of this node is full. Reads still work. "+
		"Free space on the node's disk (delete objects, abort multipart uploads, or remove other files) or add disk space; writes resume by themselves.")
)

type errorResponse struct {
	XMLName   xml.Name `xml:"Error"`
	Code      string   `xml:"Code"`
	Message   string   `xml:"Message"`
	Extra     []xmlElem
	Resource  string `xml:"Resource,omitempty"`
	RequestID string `xml:"RequestId"`
	HostID    string `xml:"HostId"`
}

type xmlElem struct {
	XMLName xml.Name
	Value   string `xml:",chardata"`
}

// writeError answers r with err as an S3 error document, mapped by
// asAPIError; the text of an error that becomes InternalError or
// ServiceUnavailable is logged, not sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	rc := reqCtx(r)
	ae := asAPIError(err)
	switch ae {
	case ErrServiceUnavailable:
		s.log.Warn("request failed: service unavailable", "request_id", rc.id, "method", r.Method, "path", r.URL.Path, "err", err)
	case ErrInternal:
		s.log.Error("request failed", "request_id", rc.id, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	rc.errCode = ae.Code
	h := w.Header()
	if ae.Code == ErrRequestTimeout.Code {
		// The connection stands mid-body: it cannot carry another request.
		h.Set("Connection", "close")
	}
	// A body-less status or a HEAD request carries no error document: S3
	// answers HEAD errors with just the status.
	if ae.Status == http.StatusNotModified || r.Method == http.MethodHead {
		if ae.Status != http.StatusNotModified {
			h.Set("x-amz-error-code", ae.Code)
		}
		w.WriteHeader(ae.Status)
		return
	}
	doc := errorResponse{Code: ae.Code, Message: ae.Message, RequestID: rc.id, HostID: rc.hostID}
	if !ae.anonymous && rc.authenticated {
		for _, f := range ae.Extra {
			doc.Extra = append(doc.Extra, xmlElem{XMLName: xml.Name{Local: f.Name}, Value: f.Value})
		}
		doc.Resource = r.URL.Path
	}
	body, merr := xml.Marshal(doc)
	if merr != nil {
		s.log.Error("marshal error document", "err", merr)
	}
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", fmt.Sprint(len(xml.Header)+len(body)))
	w.WriteHeader(ae.Status)
	_, _ = w.Write([]byte(xml.Header))
	_, _ = w.Write(body)
}

// asAPIError returns err as an S3 error; anything else is InternalError.
func asAPIError(err error) *APIError {
	var ae *APIError
	if errors.As(err, &ae) {
		return ae
	}
	if a := asAuthError(err); a != nil {
		return a
	}
	if errors.Is(err, index.ErrDiskFull) || errors.Is(err, syscall.ENOSPC) || errors.Is(err, blobs.ErrBelowFloor) {
		// Before the quorum: in a one-node store (or when this node's own
		// replica was the one short of space) the quorum failed because
		// the disk is full, which is what the client can act on.
		return ErrDiskFull
	}
	if errors.Is(err, index.ErrStoreFailed) {
		return ErrServiceUnavailable
	}
	if errors.Is(err, index.ErrQuorum) {
		// Too few owners answered in time: down, cut off, or stalled.
		// The request may succeed later, which S3 says with a 503 that
		// every SDK retries with backoff.
		return ErrServiceUnavailable
	}
	return ErrInternal
}
