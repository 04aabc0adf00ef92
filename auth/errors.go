package auth

import (
	"errors"
	"net/http"
	"strconv"
)

// S3 error codes this package returns. The gateway renders them into S3's
// XML error body unchanged, so they must be spelled exactly as S3 spells
// them (note InvalidAccessKeyId's lowercase "d").
const (
	CodeAccessDenied                      = "AccessDenied"
	CodeAuthorizationHeaderMalformed      = "AuthorizationHeaderMalformed"
	CodeAuthorizationQueryParametersError = "AuthorizationQueryParametersError"
	CodeIncompleteBody                    = "IncompleteBody"
	CodeInvalidAccessKeyID                = "InvalidAccessKeyId"
	CodeInvalidArgument                   = "InvalidArgument"
	CodeInvalidChunkSizeError             = "InvalidChunkSizeError"
	CodeInvalidRequest                    = "InvalidRequest"
	CodeMalformedTrailerError             = "MalformedTrailerError"
	CodeMissingContentLength              = "MissingContentLength"
	CodeRequestTimeTooSkewed              = "RequestTimeTooSkewed"
	CodeSignatureDoesNotMatch             = "SignatureDoesNotMatch"
	CodeXAmzContentSHA256Mismatch         = "XAmzContentSHA256Mismatch"
)

// Error is an S3 error response: the code, HTTP status and message S3 would
// send, plus the extra XML elements S3 adds for some codes (for example
// <Region> on a wrong-region AuthorizationHeaderMalformed, or
// <HeadersNotSigned>). Find it in an error chain with errors.As.
type Error struct {
	Code    string
	Status  int
	Message string
	// Fields are extra elements of S3's <Error> body, in the order S3 emits
	// them. They never carry secrets, so the gateway may render them as is.
	Fields []Field
}

// Field is one extra element of an S3 XML error body.
type Field struct {
	Name  string
	Value string
}

// Error returns "Code: Message", the form logs and test failures want.
func (e *Error) Error() string { return e.Code + ": " + e.Message }

// Field returns the value of the named extra field, or "" if absent.
func (e *Error) Field(name string) string {
	for _, f := range e.Fields {
		if f.Name == name {
			return f.Value
		}
	}
	return ""
}

// ErrorCode returns the S3 code of the first *Error in err's chain, or ""
// when err carries none (a network error while reading a body, say).
func ErrorCode(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

func newError(code string, status int, msg string, fields ...Field) *Error {
	return &Error{Code: code, Status: status, Message: msg, Fields: fields}
}

// The messages below copy S3's wording, which SDKs show to users verbatim,
// so users can search for them.

func errAnonymous() *Error {
	return newError(CodeAccessDenied, http.StatusForbidden, "Access Denied")
}

func errSignatureV2() *Error {
	return newError(CodeInvalidRequest, http.StatusBadRequest,
		"The authorization mechanism you have provided is not supported. Please use AWS4-HMAC-SHA256.")
}

func errUnsupportedAuthType(value string) *Error {
	return newError(CodeInvalidArgument, http.StatusBadRequest, "Unsupported Authorization Type",
		Field{"ArgumentName", "Authorization"}, Field{"ArgumentValue", value})
}

func errTwoAuthMechanisms() *Error {
	return newError(CodeInvalidArgument, http.StatusBadRequest,
		"Only one auth mechanism allowed; only the X-Amz-Algorithm query parameter, Signature query string parameter or the Authorization header should be specified",
		Field{"ArgumentName", "Authorization"})
}

func errHeaderMalformed(detail string) *Error {
	return newError(CodeAuthorizationHeaderMalformed, http.StatusBadRequest,
		"The authorization header is malformed; "+detail)
}

func errQueryParams(msg string) *Error {
	return newError(CodeAuthorizationQueryParametersError, http.StatusBadRequest, msg)
}

func errMissingDate() *Error {
	return newError(CodeAccessDenied, http.StatusForbidden,
		"AWS authentication requires a valid Date or x-amz-date header")
}

func errSkewed(requestTime, serverTime string) *Error {
	return newError(CodeRequestTimeTooSkewed, http.StatusForbidden,
		"The difference between the request time and the current time is too large.",
		Field{"RequestTime", requestTime}, Field{"ServerTime", serverTime},
		Field{"MaxAllowedSkewMilliseconds", strconv.FormatInt(maxSkew.Milliseconds(), 10)})
}

func errExpired(expires, expiry, serverTime string) *Error {
	return newError(CodeAccessDenied, http.StatusForbidden, "Request has expired",
		Field{"X-Amz-Expires", expires}, Field{"Expires", expiry}, Field{"ServerTime", serverTime})
}

func errNotYetValid(date, serverTime string) *Error {
	return newError(CodeAccessDenied, http.StatusForbidden, "Request is not valid yet",
		Field{"X-Amz-Date", date}, Field{"ServerTime", serverTime})
}

func errInvalidAccessKey(ak string) *Error {
	return newError(CodeInvalidAccessKeyID, http.StatusForbidden,
		"The AWS Access Key Id you provided does not exist in our records.",
		Field{"AWSAccessKeyId", ak})
}

// errSignatureMismatch names the access key when the request's own
// signature failed; chunk and trailer failures leave it out.
func errSignatureMismatch(ak string) *Error {
	e := newError(CodeSignatureDoesNotMatch, http.StatusForbidden,
		"The request signature we calculated does not match the signature you provided. Check your key and signing method.")
	if ak != "" {
		e.Fields = []Field{{"AWSAccessKeyId", ak}}
	}
	return e
}

func errHeadersNotSigned(names string) *Error {
	return newError(CodeAccessDenied, http.StatusForbidden,
		"There were headers present in the request which were not signed",
		Field{"HeadersNotSigned", names})
}

func errMissingContentSHA256() *Error {
	return newError(CodeInvalidRequest, http.StatusBadRequest,
		"Missing required header for this request: x-amz-content-sha256")
}

func errBadContentSHA256(value string) *Error {
	return newError(CodeInvalidArgument, http.StatusBadRequest,
		"x-amz-content-sha256 must be UNSIGNED-PAYLOAD, STREAMING-UNSIGNED-PAYLOAD-TRAILER, STREAMING-AWS4-HMAC-SHA256-PAYLOAD, STREAMING-AWS4-HMAC-SHA256-PAYLOAD-TRAILER or a valid sha256 value.",
		Field{"ArgumentName", "x-amz-content-sha256"}, Field{"ArgumentValue", value})
}

func errContentSHA256Mismatch(client, computed string) *Error {
	return newError(CodeXAmzContentSHA256Mismatch, http.StatusBadRequest,
		"The provided 'x-amz-content-sha256' header does not match what was computed.",
		Field{"ClientComputedContentSHA256", client}, Field{"S3ComputedContentSHA256", computed})
}

func errMissingDecodedLength() *Error {
	return newError(CodeMissingContentLength, http.StatusLengthRequired,
		"You must provide the Content-Length HTTP header.")
}

func errIncompleteBody() *Error {
	return newError(CodeIncompleteBody, http.StatusBadRequest,
		"The request body terminated unexpectedly")
}

func errLengthMismatch(expected, provided int64) *Error {
	return newError(CodeIncompleteBody, http.StatusBadRequest,
		"You did not provide the number of bytes specified by the Content-Length HTTP header",
		Field{"NumberBytesExpected", strconv.FormatInt(expected, 10)},
		Field{"NumberBytesProvided", strconv.FormatInt(provided, 10)})
}

func errChunkSize(chunk int, badSize int64) *Error {
	return newError(CodeInvalidChunkSizeError, http.StatusForbidden,
		"Only the last chunk is allowed to have a size less than 8192 bytes",
		Field{"Chunk", strconv.Itoa(chunk)}, Field{"BadChunkSize", strconv.FormatInt(badSize, 10)})
}

func errMalformedTrailer() *Error {
	return newError(CodeMalformedTrailerError, http.StatusBadRequest,
		"The request contained trailing data that was not well-formed or did not conform to our published schema.")
}
