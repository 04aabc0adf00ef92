package gateway

import (
	"net/http"
	"strings"
)

// A request header the store cannot honour is refused with the error S3
// gives, never stored and ignored: a client that asked for object lock,
// an ACL or an append and got a plain write would believe in a guarantee
// it does not have. (Encryption headers are read in sse.go.)

var (
	errNoObjectLock  = apiErr("InvalidRequest", 400, "Bucket is missing Object Lock Configuration")
	errACLsDisabled  = apiErr("AccessControlListNotSupported", 400, "The bucket does not allow ACLs")
	errBucketACL     = apiErr("InvalidBucketAclWithObjectOwnership", 400, "Bucket cannot have ACLs set with ObjectOwnership's BucketOwnerEnforced setting")
	errObjectLockOff = ErrNotImplemented.msg("Object Lock is not implemented: a bucket cannot be created with it. Nothing was created.")
	errWriteOffset   = ErrNotImplemented.msg("Appending to an object (x-amz-write-offset-bytes) is not implemented. Nothing was written.")
	errOwnership     = ErrNotImplemented.msg("Object ownership other than BucketOwnerEnforced needs ACLs, which are not implemented. Nothing was created.")
	errDeleteCond    = ErrNotImplemented.msg("Deleting on a last-modified time or size condition is not implemented (S3 has it for directory buckets only). Nothing was deleted.")
)

// The canned ACLs that say nothing beyond what bucket-owner-enforced
// ownership, the only ownership here, already gives: S3 accepts them on a
// bucket whose ACLs are disabled.
var ownerOnlyACLs = map[string]bool{"": true, "private": true, "bucket-owner-full-control": true}

var grantHeaders = []string{
	"X-Amz-Grant-Full-Control", "X-Amz-Grant-Read", "X-Amz-Grant-Read-Acp", "X-Amz-Grant-Write", "X-Amz-Grant-Write-Acp",
}

// refuseObjectWriteHeaders checks the headers of a request that writes an
// object (PutObject, CopyObject, CreateMultipartUpload).
func refuseObjectWriteHeaders(h http.Header) error {
	for _, name := range []string{"X-Amz-Object-Lock-Mode", "X-Amz-Object-Lock-Retain-Until-Date", "X-Amz-Object-Lock-Legal-Hold"} {
		if h.Get(name) != "" {
			// No bucket here has an Object Lock configuration, which is
			// what S3 says to such a request on a bucket without one.
			return errNoObjectLock
		}
	}
	if h.Get("X-Amz-Write-Offset-Bytes") != "" {
		return errWriteOffset.with("Header", "x-amz-write-offset-bytes")
	}
	if err := refuseACLs(h, errACLsDisabled); err != nil {
		return err
	}
	return nil
}

// refuseACLs refuses a canned ACL that grants more than the owner has, and
// any grant header: ACLs are disabled, as in a new S3 bucket.
func refuseACLs(h http.Header, refusal *APIError) error {
	if acl := strings.ToLower(h.Get("X-Amz-Acl")); !ownerOnlyACLs[acl] {
		return refusal
	}
	for _, name := range grantHeaders {
		if h.Get(name) != "" {
			return refusal
		}
	}
	return nil
}

// refuseCreateBucketHeaders checks the headers of CreateBucket.
func refuseCreateBucketHeaders(h http.Header) error {
	if strings.EqualFold(h.Get("X-Amz-Bucket-Object-Lock-Enabled"), "true") {
		return errObjectLockOff.with("Header", "x-amz-bucket-object-lock-enabled")
	}
	if o := h.Get("X-Amz-Object-Ownership"); o != "" && o != "BucketOwnerEnforced" {
		return errOwnership.with("Header", "x-amz-object-ownership")
	}
	return refuseACLs(h, errBucketACL)
}

// refuseDeleteConditions refuses the delete conditions S3 has for
// directory buckets only: a delete that cannot check its condition must
// not run unconditionally.
func refuseDeleteConditions(h http.Header) error {
	for _, name := range []string{"X-Amz-If-Match-Last-Modified-Time", "X-Amz-If-Match-Size"} {
		if h.Get(name) != "" {
			return errDeleteCond.with("Header", strings.ToLower(name))
		}
	}
	return nil
}
