package gateway

import "testing"

func TestLoggedURILeavesOutSignatures(t *testing.T) {
	for in, want := range map[string]string{
		"/b/k":                   "/b/k",
		"/b/k?uploads":           "/b/k?uploads",
		"/b?list-type=2&prefix=": "/b?list-type=2&prefix=",
		"/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=abc123&X-Amz-SignedHeaders=host": "/b/k?X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Signature=REDACTED&X-Amz-SignedHeaders=host",
		"/b/k?AWSAccessKeyId=AK&Signature=xyz%3D&Expires=1":                                     "/b/k?AWSAccessKeyId=AK&Signature=REDACTED&Expires=1",
		"/b/k?prefix=X-Amz-Signature=1":                                                         "/b/k?prefix=X-Amz-Signature=1",
	} {
		if got := loggedURI(in); got != want {
			t.Errorf("loggedURI(%q) = %q, want %q", in, got, want)
		}
	}
}
