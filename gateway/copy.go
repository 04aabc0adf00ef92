package gateway

import (
	"context"
	"encoding/base64"
	"encoding/xml"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/ringstore/ringstore/blobs"
	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/sse"
)

// Copies move no bytes when they keep the source's data key (both
// plaintext, both SSE-S3, or both SSE-C under one customer key): the new
// version points at the source's chunks (recording a blob reference for
// each, and copying extent rows when the chunk list is long), or repeats
// its inline bytes. A copy that changes the key reads the source and
// seals its bytes anew (recrypt).

// copySource is a parsed x-amz-copy-source header.
type copySource struct {
	bucket, key, versionID string
}

func parseCopySource(v string) (copySource, error) {
	bad := ErrInvalidArgument.msg("Invalid copy source object key").with("ArgumentName", "x-amz-copy-source", "ArgumentValue", v)
	path, query, _ := strings.Cut(v, "?")
	p, err := url.PathUnescape(path)
	if err != nil {
		return copySource{}, bad
	}
	p = strings.TrimPrefix(p, "/")
	bucket, key, ok := strings.Cut(p, "/")
	if !ok || key == "" {
		return copySource{}, bad
	}
	src := copySource{bucket: bucket, key: key}
	if query != "" {
		q, err := url.ParseQuery(query)
		if err != nil {
			return copySource{}, bad
		}
		src.versionID = q.Get("versionId")
		if src.versionID == "" || !validVersionID(src.versionID) {
			return copySource{}, ErrInvalidArgument.msg("Invalid version id specified").with("ArgumentName", "x-amz-copy-source", "ArgumentValue", v)
		}
	}
	if err := checkBucketName(bucket); err != nil {
		return copySource{}, err
	}
	if err := checkKey(key); err != nil {
		return copySource{}, err
	}
	return src, nil
}

// checkCopyConditions evaluates x-amz-copy-source-if-*; a failed condition
// is 412 for copies, whichever header it was.
func checkCopyConditions(h http.Header, etag string, lastModified time.Time) error {
	lm := lastModified.Truncate(time.Second)
	if im := h.Get("X-Amz-Copy-Source-If-Match"); im != "" {
		if !etagMatches(im, etag) {
			return ErrPreconditionFailed.with("Condition", "x-amz-copy-source-If-Match")
		}
	} else if t, ok := httpDate(h.Get("X-Amz-Copy-Source-If-Unmodified-Since")); ok && lm.After(t) {
		return ErrPreconditionFailed.with("Condition", "x-amz-copy-source-If-Unmodified-Since")
	}
	if inm := h.Get("X-Amz-Copy-Source-If-None-Match"); inm != "" {
		if etagMatches(inm, etag) {
			return ErrPreconditionFailed.with("Condition", "x-amz-copy-source-If-None-Match")
		}
	} else if t, ok := httpDate(h.Get("X-Amz-Copy-Source-If-Modified-Since")); ok && !lm.After(t) {
		return ErrPreconditionFailed.with("Condition", "x-amz-copy-source-If-Modified-Since")
	}
	return nil
}

// copySourceVersion resolves and checks the source of a copy.
func (s *Server) copySourceVersion(ctx context.Context, r *http.Request) (*index.Bucket, *index.Version, copySource, error) {
	src, err := parseCopySource(r.Header.Get("X-Amz-Copy-Source"))
	if err != nil {
		return nil, nil, src, err
	}
	sb, err := s.bucket(ctx, src.bucket)
	if err != nil {
		return nil, nil, src, err
	}
	v, err := s.objectVersion(ctx, sb, src.key, src.versionID)
	if err != nil {
		if v != nil && v.DeleteMarker && src.versionID != "" {
			return nil, nil, src, ErrInvalidRequest.msg("The source of a copy request may not specifically refer to a delete marker by version id.")
		}
		return nil, nil, src, err
	}
	if err := checkCopyConditions(r.Header, v.ETag, lastModified(v)); err != nil {
		return nil, nil, src, err
	}
	return sb, v, src, nil
}

type copyObjectResult struct {
	XMLName        xml.Name `xml:"CopyObjectResult"`
	NS             string   `xml:"xmlns,attr"`
	ETag           string   `xml:"ETag"`
	LastModified   string   `xml:"LastModified"`
	ChecksumType   string   `xml:"ChecksumType,omitempty"`
	ChecksumCRC32  string   `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C string   `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64  string   `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1   string   `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256 string   `xml:"ChecksumSHA256,omitempty"`
}

func (s *Server) copyObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	ctx := r.Context()
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	sb, src, cs, err := s.copySourceVersion(ctx, r)
	if err != nil {
		return err
	}
	if src.Size > maxPutBytes {
		return ErrInvalidRequest.msg("The specified copy source is larger than the maximum allowable size for a copy source: %d", int64(maxPutBytes))
	}
	directive := r.Header.Get("X-Amz-Metadata-Directive")
	if directive != "" && directive != "COPY" && directive != "REPLACE" {
		return ErrInvalidArgument.msg("Unknown metadata directive.").with("ArgumentName", "x-amz-metadata-directive", "ArgumentValue", directive)
	}
	tagDirective := r.Header.Get("X-Amz-Tagging-Directive")
	if tagDirective != "" && tagDirective != "COPY" && tagDirective != "REPLACE" {
		return ErrInvalidArgument.msg("Unknown tagging directive.").with("ArgumentName", "x-amz-tagging-directive", "ArgumentValue", tagDirective)
	}
	sc, err := storageClass(r.Header)
	if err != nil {
		return err
	}
	srcCK, err := s.customerKeyOf(r, true)
	if err != nil {
		return err
	}
	srcKey, err := s.readKey(src, srcCK, true)
	if err != nil {
		return err
	}
	dreq, err := s.parseWriteSSE(r)
	if err != nil {
		return err
	}
	kind, err := s.writeEncryption(b, dreq)
	if err != nil {
		return err
	}
	self := sb.ID == b.ID && cs.key == key
	if self && directive != "REPLACE" && sc == src.StorageClass && r.Header.Get("X-Amz-Website-Redirect-Location") == "" && tagDirective != "REPLACE" && !dreq.any() {
		return ErrInvalidRequest.msg("This copy request is illegal because it is trying to copy an object to itself without changing the object's metadata, storage class, website redirect location or encryption attributes.")
	}
	// A copy keeps its source's chunks only when it keeps its data key
	// too: both plaintext, both SSE-S3 (the key is wrapped again, with
	// the newest master key), or both SSE-C under one customer key. Any
	// other copy changes the key, and its bytes are sealed anew.
	share := kind == src.Encryption.KindOf()
	if share && kind == index.EncryptionC {
		share = sameCustomerKey(srcCK, dreq.customer)
	}
	var dk *sse.DataKey
	if share && srcKey != nil {
		k := srcKey.Key()
		dk = &k
	}
	wk, err := s.newWriteKey(kind, dreq.customer, dk)
	if err != nil {
		return err
	}
	v := index.Version{
		WriteID: index.NewWriteID(), Size: src.Size, ETag: src.ETag, StorageClass: sc,
		Owner: reqCtx(r).accessKey, Headers: src.Headers, Checksum: src.Checksum,
		Parts: src.Parts, PartCount: src.PartCount,
	}
	if wk != nil {
		v.Encryption = wk.rec
	}
	if directive == "REPLACE" {
		if v.Headers, err = objectHeaders(r.Header); err != nil {
			return err
		}
	}
	if tagDirective == "REPLACE" {
		if v.Tags, err = parseTagHeader(r.Header.Get("X-Amz-Tagging")); err != nil {
			return err
		}
	} else {
		v.Tags = src.Tags
	}
	var spec *checksumSpec
	if alg := strings.ToUpper(r.Header.Get("X-Amz-Checksum-Algorithm")); alg != "" {
		if !validAlgorithm(alg) {
			return ErrInvalidRequest.msg("Value for x-amz-checksum-algorithm header is invalid.")
		}
		if alg != src.Checksum.Algorithm || src.Checksum.Type != "FULL_OBJECT" {
			spec = &checksumSpec{alg: alg}
		}
	}
	cond, err := parseWriteConditions(r.Header)
	if err != nil {
		return err
	}
	keep := s.keepRefs(index.ObjectHolder(b, key, v.WriteID))
	defer keep.stop()
	if share {
		if spec != nil {
			sum, err := s.checksumOf(ctx, src, srcKey, spec.alg)
			if err != nil {
				return err
			}
			v.Checksum = index.Checksum{Algorithm: spec.alg, Value: sum, Type: "FULL_OBJECT"}
		}
		v.Inline = src.Inline
		if err := s.shareChunks(ctx, src, &v, keep); err != nil {
			return err
		}
	} else {
		body, err := s.recrypt(ctx, src, srcKey, 0, src.Size, maxPutBytes, keep, spec, true, wk.sealer())
		if err != nil {
			return err
		}
		if spec != nil {
			v.Checksum = index.Checksum{Algorithm: spec.alg, Value: body.checksum, Type: "FULL_OBJECT"}
		}
		// The ETag of an SSE-C object is its own; any other keeps the
		// source's, or takes the MD5 of the bytes when the source's was
		// an SSE-C one.
		if wk.kind() == index.EncryptionC || src.Encryption.KindOf() == index.EncryptionC {
			v.ETag = wk.etag(body.md5)
		}
		v.Inline = body.inline
		if err := s.placeChunks(ctx, &v, body.chunks); err != nil {
			return err
		}
	}
	if err := s.copyPartRows(ctx, src, &v); err != nil {
		return err
	}
	if err := keep.check(); err != nil {
		return err
	}
	if err := s.commitVersion(ctx, b, key, &v, cond); err != nil {
		return err
	}
	h := w.Header()
	if v.ID != "null" {
		h.Set("x-amz-version-id", v.ID)
	}
	if versioningState(sb) != "" {
		h.Set("x-amz-copy-source-version-id", src.ID)
	}
	setSSEHeaders(h, v.Encryption, dreq.customer)
	res := copyObjectResult{NS: s3NS, ETag: `"` + v.ETag + `"`, LastModified: xmlTime(lastModified(&v))}
	setResultChecksum(&res, v.Checksum)
	return writeXML(w, http.StatusOK, res)
}

// recrypt stores bytes [start, start+length) of src anew, sealed with
// seal (plaintext when nil): the copies that change the data key. The
// source is opened with srcKey as it streams into the write path, so
// memory stays one write's buffers.
func (s *Server) recrypt(ctx context.Context, src *index.Version, srcKey *sse.Sealer, start, length, maxSize int64, keep *refKeeper, spec *checksumSpec, allowInline bool, seal *sse.Sealer) (*ingested, error) {
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	readErr := make(chan error, 1)
	go func() {
		err := s.streamVersion(ctx, pw, src, srcKey, start, length)
		pw.CloseWithError(err)
		readErr <- err
	}()
	body, err := s.ingest(ctx, pr, length, maxSize, keep, spec, allowInline, seal)
	// Stop the reader if the write ended first, and wait for it: it
	// holds buffers of the pool until it returns.
	cancel()
	pr.CloseWithError(errCopyEnded)
	rerr := <-readErr
	if err != nil && rerr != nil && !errors.Is(rerr, errCopyEnded) && !errors.Is(rerr, context.Canceled) {
		// The write failed because the source could not be read: that is
		// the error to answer, not the short body the write saw.
		return nil, rerr
	}
	return body, err
}

var errCopyEnded = errors.New("copy ended")

func setResultChecksum(res *copyObjectResult, c index.Checksum) {
	if c.Value == "" {
		return
	}
	res.ChecksumType = c.Type
	switch c.Algorithm {
	case "CRC32":
		res.ChecksumCRC32 = c.Value
	case "CRC32C":
		res.ChecksumCRC32C = c.Value
	case "CRC64NVME":
		res.ChecksumCRC64 = c.Value
	case "SHA1":
		res.ChecksumSHA1 = c.Value
	case "SHA256":
		res.ChecksumSHA256 = c.Value
	}
}

// shareChunks makes v hold the same bytes as src without copying them: it
// records a reference from the new write to each chunk (before anything
// points at the chunks, so garbage collection can't take them), checks
// the chunks are still there, and places the chunk list.
func (s *Server) shareChunks(ctx context.Context, src, v *index.Version, keep *refKeeper) error {
	if src.Inline != nil || src.Size == 0 {
		return nil
	}
	var chunks []index.ChunkRef
	if err := s.chunksOf(ctx, src, 0, src.Size, func(c chunkAt) bool {
		chunks = append(chunks, c.ref)
		return true
	}); err != nil {
		return err
	}
	if err := s.refChunks(ctx, chunks, keep); err != nil {
		return err
	}
	return s.placeChunks(ctx, v, chunks)
}

// refChunks records the keeper's write as a reference of each chunk and
// then checks every chunk is present.
func (s *Server) refChunks(ctx context.Context, chunks []index.ChunkRef, keep *refKeeper) error {
	seen := make(map[index.BlobID]bool, len(chunks))
	var ids []index.BlobID
	for _, c := range chunks {
		if seen[c.ID] {
			continue
		}
		seen[c.ID] = true
		ids = append(ids, c.ID)
	}
	if err := keep.record(ctx, ids...); err != nil {
		return err
	}
	for id := range seen {
		ok, err := s.cfg.Chunks.Has(ctx, blobs.ID(id))
		if err != nil {
			return err
		}
		if !ok {
			return ErrNoSuchKey.msg("The source object's data is no longer available.")
		}
	}
	return nil
}

// checksumOf computes a full-object checksum of v by reading it.
func (s *Server) checksumOf(ctx context.Context, v *index.Version, key *sse.Sealer, alg string) (string, error) {
	h := newChecksum(alg)
	if err := s.streamVersion(ctx, h, v, key, 0, v.Size); err != nil {
		return "", err
	}
	return base64.StdEncoding.EncodeToString(h.Sum(nil)), nil
}

// copyPartRows gives a copy the part list of its multipart source when the
// source keeps it in rows.
func (s *Server) copyPartRows(ctx context.Context, src, v *index.Version) error {
	if src.PartCount == 0 || len(src.Parts) > 0 {
		return nil
	}
	var after uint32
	for {
		parts, more, err := s.cfg.Index.ListVersionParts(ctx, src.WriteID, after, 256)
		if err != nil {
			return err
		}
		recs := make([]index.Record, 0, len(parts))
		for _, p := range parts {
			recs = append(recs, index.Record{Table: index.TableVersionParts, PK: v.WriteID[:], SK: index.PartSK(p.Number), Value: index.EncodePartInfo(p)})
			after = p.Number
		}
		if len(recs) > 0 {
			if err := s.cfg.Index.Put(ctx, recs...); err != nil {
				return err
			}
		}
		if !more || len(parts) == 0 {
			return nil
		}
	}
}
