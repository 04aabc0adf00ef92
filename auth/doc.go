// Package auth verifies AWS Signature Version 4 requests as S3 receives them:
// the Authorization header, presigned query strings, and streaming
// aws-chunked bodies (signed and unsigned, with or without trailers).
//
// auth knows nothing of storage. A Verifier checks a request against a key
// lookup function and hands back a body reader that enforces whatever the
// signature promised about the payload (its SHA-256, each chunk's
// signature, the trailer's signature). Callers must read that body to EOF
// and treat any error from it as "the request is invalid": only then has
// the payload been verified.
//
// Rules that differ from other AWS services, and which this package
// therefore follows S3 on: the path is URI-encoded once and never
// normalised ("//", "." and ".." are key characters); x-amz-content-sha256
// is mandatory on header-signed requests; every x-amz-* header present must
// be signed, except x-amz-content-sha256; presigned URLs live at most a week
// and sign UNSIGNED-PAYLOAD unless they pin a hash; every aws-chunked chunk
// but the last must be at least 8 KiB. As everywhere in SigV4, host must
// be among the signed headers. Errors are *Error values carrying S3's code,
// HTTP status and message, ready for the gateway to render.
//
// Requests are verified as Go's HTTP server delivers them: Host is read
// from r.Host, Transfer-Encoding from r.TransferEncoding, and
// Content-Length from the header or r.ContentLength, so clients that
// signed those headers verify although the server moved them.
package auth
