package auth

import (
	"bufio"
	"bytes"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"net/http"
	"time"
)

// MinChunkSize is S3's floor on the size of every aws-chunked chunk except
// the last data chunk; S3 answers smaller ones with InvalidChunkSizeError.
const MinChunkSize = 8192

// maxChunkLine bounds a chunk header or trailer line, CRLF included. A
// signed chunk header is about 90 bytes, so 4 KiB leaves room for odd but
// legal extensions while keeping a hostile client from making the decoder
// buffer without limit.
const maxChunkLine = 4096

// ChunkedOptions configures a ChunkedReader.
type ChunkedOptions struct {
	// Signed says every chunk carries ";chunk-signature=<hex>" and each is
	// verified against the rolling chain that starts at SeedSignature.
	Signed bool
	// Trailer says trailing headers follow the final zero-size chunk.
	Trailer bool
	// SigningKey, Time and Scope are the request's SigV4 signing key,
	// timestamp and credential scope ("20130524/us-east-1/s3/aws4_request");
	// SeedSignature is the request's own signature. Used only when Signed.
	SigningKey    []byte
	Time          time.Time
	Scope         string
	SeedSignature string
	// ExpectedTrailers are the lowercase trailer names the request
	// announced in x-amz-trailer. Trailers must match them exactly.
	ExpectedTrailers []string
	// DecodedLength is the declared payload length
	// (x-amz-decoded-content-length); the decoded total must equal it.
	// Negative means unknown and unchecked.
	DecodedLength int64
	// MinChunkSize is the least size of every data chunk but the last;
	// 0 disables the check. Verify uses the package MinChunkSize.
	MinChunkSize int64
}

// ChunkedReader decodes an aws-chunked body: it strips the framing, yields
// the payload, and verifies chunk signatures, the declared length and the
// trailers. See Result.Body for when its bytes may be trusted: a chunk's
// bytes are returned before the chunk's signature is checked, and the
// reader returns io.EOF only once everything has been verified.
//
// Memory use is bounded: besides the chunk being hashed, it holds at most
// one header line (maxChunkLine) and the trailer section.
type ChunkedReader struct {
	br   *bufio.Reader
	opts ChunkedOptions

	inData     bool  // between a chunk header and that chunk's CRLF
	remaining  int64 // data bytes left in the current chunk
	chunks     int   // chunk headers seen, for InvalidChunkSizeError
	prevSize   int64 // size of the previous data chunk, -1 before the first
	total      int64 // payload bytes returned so far
	emptyReads int   // consecutive (0, nil) reads from the source

	chunkSig  [2 * sha256.Size]byte // signature the current chunk claims
	prevSig   []byte                // chain so far: the seed, then each chunk's
	prevBuf   [2 * sha256.Size]byte // backs prevSig after the first chunk
	chunkHash hash.Hash             // SHA-256 of the current chunk's data
	mac       hash.Hash             // HMAC-SHA256 under the signing key, reused
	amzDate   string                // opts.Time in the string-to-sign form
	stsPrefix []byte                // shared head of every chunk string-to-sign
	sum       [sha256.Size]byte     // scratch: digests
	dataHex   [2 * sha256.Size]byte // scratch: hex of the chunk digest
	want      [2 * sha256.Size]byte // scratch: the expected signature

	trailer http.Header
	err     error // sticky; io.EOF after clean, verified completion
}

// NewChunkedReader returns a reader decoding the aws-chunked stream r.
func NewChunkedReader(r io.Reader, opts ChunkedOptions) *ChunkedReader {
	c := &ChunkedReader{
		br:       bufio.NewReaderSize(r, maxChunkLine),
		opts:     opts,
		prevSize: -1,
		prevSig:  []byte(opts.SeedSignature),
	}
	if opts.Signed {
		c.chunkHash = sha256.New()
		c.mac = hmac.New(sha256.New, opts.SigningKey)
		c.amzDate = opts.Time.UTC().Format(amzDateFormat)
		c.stsPrefix = chunkSTSPrefix(c.amzDate, opts.Scope)
	}
	return c
}

// Trailer returns the trailing headers, keyed by lowercase name, once Read
// has returned io.EOF; nil before then or when there were none. It must not
// be called concurrently with Read.
func (c *ChunkedReader) Trailer() http.Header {
	if c.err != io.EOF || len(c.trailer) == 0 {
		return nil
	}
	return c.trailer
}

// Read implements io.Reader. Errors are sticky.
func (c *ChunkedReader) Read(p []byte) (int, error) {
	for c.err == nil {
		if c.inData && c.remaining > 0 {
			if len(p) == 0 {
				return 0, nil
			}
			if int64(len(p)) > c.remaining {
				p = p[:c.remaining]
			}
			n, err := c.br.Read(p)
			c.remaining -= int64(n)
			c.total += int64(n)
			if c.chunkHash != nil {
				c.chunkHash.Write(p[:n])
			}
			if err != nil {
				// Even io.EOF is a failure here: at least the chunk's CRLF
				// and the final chunk are still owed.
				c.fail(fmt.Errorf("auth: aws-chunked: inside chunk %d: %w", c.chunks, c.readErr(err)))
			}
			if n > 0 {
				c.emptyReads = 0
				return n, c.err
			}
			// bufio guards its own fills against a source that keeps
			// returning (0, nil), but not reads that bypass its buffer.
			if c.emptyReads++; c.emptyReads >= 100 {
				c.fail(fmt.Errorf("auth: aws-chunked: inside chunk %d: %w", c.chunks, io.ErrNoProgress))
			}
			continue
		}
		if c.inData {
			c.endChunk()
			continue
		}
		c.readChunkHeader()
	}
	return 0, c.err
}

func (c *ChunkedReader) fail(err error) {
	if c.err == nil {
		c.err = err
	}
}

// readErr maps an error from the underlying stream: running out of bytes
// means the client sent too few, anything else is passed on.
func (c *ChunkedReader) readErr(err error) error {
	if err == io.EOF || errors.Is(err, io.ErrUnexpectedEOF) {
		return errIncompleteBody()
	}
	return err
}

// readLine returns the next CRLF-terminated line without its CRLF. The
// slice is only valid until the next read.
func (c *ChunkedReader) readLine() ([]byte, error) {
	line, err := c.br.ReadSlice('\n')
	switch {
	case errors.Is(err, bufio.ErrBufferFull):
		return nil, fmt.Errorf("line longer than %d bytes: %w", maxChunkLine, errIncompleteBody())
	case err != nil:
		return nil, c.readErr(err)
	}
	body, ok := bytes.CutSuffix(line, []byte("\r\n"))
	if !ok {
		return nil, fmt.Errorf("line not terminated by CRLF: %w", errIncompleteBody())
	}
	return body, nil
}

// readChunkHeader reads "<hex-size>[;chunk-signature=<sig>]" and sets up
// the chunk, or finishes the stream at the zero-size chunk.
func (c *ChunkedReader) readChunkHeader() {
	line, err := c.readLine()
	if err != nil {
		c.fail(fmt.Errorf("auth: aws-chunked: chunk %d header: %w", c.chunks+1, err))
		return
	}
	c.chunks++
	size, sig, err := c.parseChunkHeader(line)
	if err != nil {
		c.fail(fmt.Errorf("auth: aws-chunked: chunk %d header: %w", c.chunks, err))
		return
	}
	if size > 0 && c.prevSize >= 0 && c.prevSize < c.opts.MinChunkSize {
		c.fail(fmt.Errorf("auth: aws-chunked: chunk %d follows a short chunk: %w", c.chunks, errChunkSize(c.chunks, c.prevSize)))
		return
	}
	if d := c.opts.DecodedLength; d >= 0 && size > d-c.total {
		c.fail(fmt.Errorf("auth: aws-chunked: chunk %d overruns x-amz-decoded-content-length: %w",
			c.chunks, errLengthMismatch(d, c.total+size)))
		return
	}
	if c.opts.Signed {
		copy(c.chunkSig[:], sig)
	}
	if size == 0 {
		c.finish()
		return
	}
	c.inData, c.remaining, c.prevSize = true, size, size
}

// parseChunkHeader splits a chunk header line into size and signature; the
// signature aliases line.
func (c *ChunkedReader) parseChunkHeader(line []byte) (int64, []byte, error) {
	sizePart, ext, hasExt := bytes.Cut(line, []byte(";"))
	size, ok := parseHexSize(sizePart)
	if !ok {
		return 0, nil, fmt.Errorf("bad chunk size %q: %w", truncateForLog(sizePart), errIncompleteBody())
	}
	if !c.opts.Signed {
		// Unsigned chunks may carry HTTP chunk extensions; none mean
		// anything here.
		return size, nil, nil
	}
	sig, ok := bytes.CutPrefix(ext, []byte("chunk-signature="))
	if !hasExt || !ok {
		return 0, nil, fmt.Errorf("missing chunk-signature: %w", errIncompleteBody())
	}
	if !isHexSHA256(sig) {
		return 0, nil, fmt.Errorf("malformed chunk-signature: %w", errSignatureMismatch(""))
	}
	return size, sig, nil
}

// parseHexSize parses 1 to 15 hex digits; 15 keeps the value below 2^60,
// far above any real chunk and safe from overflow in later sums.
func parseHexSize(b []byte) (int64, bool) {
	if len(b) == 0 || len(b) > 15 {
		return 0, false
	}
	var n int64
	for _, ch := range b {
		var d byte
		switch {
		case '0' <= ch && ch <= '9':
			d = ch - '0'
		case 'a' <= ch && ch <= 'f':
			d = ch - 'a' + 10
		case 'A' <= ch && ch <= 'F':
			d = ch - 'A' + 10
		default:
			return 0, false
		}
		n = n<<4 | int64(d)
	}
	return n, true
}

func truncateForLog(b []byte) string {
	if len(b) > 32 {
		return string(b[:32]) + "..."
	}
	return string(b)
}

// endChunk consumes the CRLF closing a chunk's data and checks the chunk's
// signature.
func (c *ChunkedReader) endChunk() {
	c.inData = false
	for _, want := range []byte("\r\n") {
		b, err := c.br.ReadByte()
		if err != nil {
			c.fail(fmt.Errorf("auth: aws-chunked: end of chunk %d: %w", c.chunks, c.readErr(err)))
			return
		}
		if b != want {
			c.fail(fmt.Errorf("auth: aws-chunked: chunk %d data not followed by CRLF: %w", c.chunks, errIncompleteBody()))
			return
		}
	}
	if c.opts.Signed {
		c.verifyChunk()
	}
}

// verifyChunk checks the current chunk's signature and advances the chain:
// HMAC(key, "AWS4-HMAC-SHA256-PAYLOAD\n<date>\n<scope>\n<prev sig>\n
// <hex sha256 of empty chunk headers>\n<hex sha256 of chunk data>").
func (c *ChunkedReader) verifyChunk() {
	hex.Encode(c.dataHex[:], c.chunkHash.Sum(c.sum[:0]))
	c.chunkHash.Reset()
	signChunk(&c.want, &c.sum, c.mac, c.stsPrefix, c.prevSig, c.dataHex[:])
	if !hmac.Equal(c.chunkSig[:], c.want[:]) {
		c.fail(fmt.Errorf("auth: aws-chunked: chunk %d signature: %w", c.chunks, errSignatureMismatch("")))
		return
	}
	c.prevBuf = c.want
	c.prevSig = c.prevBuf[:]
}

// finish handles everything after the zero-size chunk header: its
// signature, the trailer section (or the bare CRLF that ends a stream
// without one), the declared length and the end of the stream.
func (c *ChunkedReader) finish() {
	if c.opts.Signed {
		c.verifyChunk()
		if c.err != nil {
			return
		}
	}
	if c.opts.Trailer {
		if err := c.readTrailers(); err != nil {
			c.fail(fmt.Errorf("auth: aws-chunked: trailer: %w", err))
			return
		}
	} else {
		line, err := c.readLine()
		if err == nil && len(line) != 0 {
			err = fmt.Errorf("data after the final chunk: %w", errIncompleteBody())
		}
		if err != nil {
			c.fail(fmt.Errorf("auth: aws-chunked: end of stream: %w", err))
			return
		}
	}
	if d := c.opts.DecodedLength; d >= 0 && c.total != d {
		c.fail(fmt.Errorf("auth: aws-chunked: decoded %d bytes: %w", c.total, errLengthMismatch(d, c.total)))
		return
	}
	// Bytes after the terminating line are not part of any chunk; a body
	// that carries them was not framed as signed.
	if _, err := c.br.ReadByte(); err != io.EOF {
		if err == nil {
			err = errIncompleteBody()
		}
		c.fail(fmt.Errorf("auth: aws-chunked: data after the end of the stream: %w", err))
		return
	}
	c.err = io.EOF
}
