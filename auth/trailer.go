package auth

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"slices"
	"strings"
)

const (
	// maxTrailerBytes bounds the whole trailer section. Real trailers are
	// one checksum plus a signature, under 200 bytes.
	maxTrailerBytes = 16 << 10
	// maxTrailers bounds how many trailing headers one request may carry.
	maxTrailers = 16

	trailerSignatureName = "x-amz-trailer-signature"
)

// readTrailers parses the trailer section: "name:value\r\n" lines ended by
// an empty line. S3 answers a line without a colon with IncompleteBody and
// any mismatch with the announced x-amz-trailer names with
// MalformedTrailerError; in signed mode the section must end in a valid
// x-amz-trailer-signature.
func (c *ChunkedReader) readTrailers() error {
	var (
		trailers  http.Header
		signature string
		size      int
	)
	for {
		line, err := c.readLine()
		if err != nil {
			return err
		}
		if size += len(line) + 2; size > maxTrailerBytes {
			return fmt.Errorf("section longer than %d bytes: %w", maxTrailerBytes, errMalformedTrailer())
		}
		if len(line) == 0 {
			break
		}
		rawName, rawValue, ok := bytes.Cut(line, []byte(":"))
		if !ok {
			return fmt.Errorf("line without a colon: %w", errIncompleteBody())
		}
		name := strings.ToLower(string(bytes.TrimSpace(rawName)))
		value := string(bytes.TrimSpace(rawValue))
		if name == "" {
			return fmt.Errorf("empty trailer name: %w", errIncompleteBody())
		}
		if name == trailerSignatureName {
			if !c.opts.Signed || signature != "" {
				return fmt.Errorf("unexpected %s: %w", trailerSignatureName, errMalformedTrailer())
			}
			signature = value
			continue
		}
		if !slices.Contains(c.opts.ExpectedTrailers, name) {
			return fmt.Errorf("%q was not announced in x-amz-trailer: %w", name, errMalformedTrailer())
		}
		if trailers[name] != nil {
			return fmt.Errorf("%q sent twice: %w", name, errMalformedTrailer())
		}
		if trailers == nil {
			trailers = make(http.Header, len(c.opts.ExpectedTrailers))
		}
		if len(trailers) == maxTrailers {
			return fmt.Errorf("more than %d trailers: %w", maxTrailers, errMalformedTrailer())
		}
		// Keys stay lowercase, as sent; http.Header's canonical form would
		// hide them from a plain map lookup by the x-amz-trailer name.
		trailers[name] = []string{value}
	}
	for _, name := range c.opts.ExpectedTrailers {
		if trailers[name] == nil {
			return fmt.Errorf("announced trailer %q missing: %w", name, errMalformedTrailer())
		}
	}
	if c.opts.Signed {
		if signature == "" {
			return fmt.Errorf("missing %s: %w", trailerSignatureName, errMalformedTrailer())
		}
		want := trailerSignature(c.opts.SigningKey, c.amzDate, c.opts.Scope, string(c.prevSig), trailers)
		if !signaturesEqual(signature, want) {
			return fmt.Errorf("%s: %w", trailerSignatureName, errSignatureMismatch(""))
		}
	}
	c.trailer = trailers
	return nil
}

// canonicalTrailers is the form trailer signatures cover: "name:value\n"
// for each trailer, names lowercase and sorted.
func canonicalTrailers(h http.Header) string {
	names := make([]string, 0, len(h))
	for k := range h {
		names = append(names, k)
	}
	slices.Sort(names)
	var b strings.Builder
	for _, k := range names {
		for _, v := range h[k] {
			b.WriteString(strings.ToLower(k))
			b.WriteByte(':')
			b.WriteString(strings.TrimSpace(v))
			b.WriteByte('\n')
		}
	}
	return b.String()
}

// trailerSignature computes HMAC(key, "AWS4-HMAC-SHA256-TRAILER\n<date>\n
// <scope>\n<final chunk sig>\n<hex sha256 of canonical trailers>").
func trailerSignature(key []byte, amzDate, scope, prevSig string, trailers http.Header) string {
	sum := sha256.Sum256([]byte(canonicalTrailers(trailers)))
	sts := "AWS4-HMAC-SHA256-TRAILER\n" + amzDate + "\n" + scope + "\n" + prevSig + "\n" + hex.EncodeToString(sum[:])
	return signHex(key, sts)
}
