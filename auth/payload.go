package auth

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"strings"
)

// mapBodyError turns a truncated body into S3's IncompleteBody and passes
// any other read failure (a reset connection, a size limit) through with
// context, so callers can tell "client sent garbage" from "network broke".
func mapBodyError(err error) error {
	if errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("auth: body ended before its declared length: %w", errIncompleteBody())
	}
	return fmt.Errorf("auth: reading body: %w", err)
}

// plainBody serves UNSIGNED-PAYLOAD bodies: nothing to verify beyond
// reporting truncation the S3 way.
type plainBody struct {
	rc  io.ReadCloser
	err error
}

func (b *plainBody) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	if err != nil && err != io.EOF {
		b.err = mapBodyError(err)
		err = b.err
	}
	return n, err
}

func (b *plainBody) Close() error { return b.rc.Close() }

// sha256Body hashes a body as it streams and, at its end, reports
// XAmzContentSHA256Mismatch instead of io.EOF if the digest differs from
// the signed x-amz-content-sha256.
type sha256Body struct {
	rc   io.ReadCloser
	h    hash.Hash
	want string // lowercase hex
	err  error  // sticky: io.EOF once verified, or the failure
}

func newSHA256Body(rc io.ReadCloser, wantHex string) *sha256Body {
	return &sha256Body{rc: rc, h: sha256.New(), want: strings.ToLower(wantHex)}
}

func (b *sha256Body) Read(p []byte) (int, error) {
	if b.err != nil {
		return 0, b.err
	}
	n, err := b.rc.Read(p)
	b.h.Write(p[:n])
	switch {
	case err == io.EOF:
		got := hex.EncodeToString(b.h.Sum(nil))
		if !signaturesEqual(got, b.want) {
			b.err = fmt.Errorf("auth: body digest: %w", errContentSHA256Mismatch(b.want, got))
		} else {
			b.err = io.EOF
		}
		return n, b.err
	case err != nil:
		b.err = mapBodyError(err)
		return n, b.err
	}
	return n, nil
}

func (b *sha256Body) Close() error { return b.rc.Close() }

// chunkedBody pairs a ChunkedReader with the request body it decodes, so
// closing the Result body closes the connection's body.
type chunkedBody struct {
	*ChunkedReader
	closer io.Closer
}

func (b *chunkedBody) Close() error { return b.closer.Close() }
