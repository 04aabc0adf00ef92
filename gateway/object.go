package gateway

import (
	"context"
	"encoding/hex"
	"errors"
	"net/http"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/ringstore/ringstore/index"
)

// maxPutBytes is S3's limit on a single PUT.
const maxPutBytes = 5 << 30

const (
	// inlineChunksMax is the longest chunk list kept inside the version
	// record (128 MiB of data in 4.5 KiB of list); longer lists go to
	// extent rows so the object record stays small.
	inlineChunksMax = 128
	// extentRowChunks is the number of chunks per extent row (18 KiB).
	extentRowChunks = 512
)

func versioningState(b *index.Bucket) string { return string(b.Config("versioning")) }

// putVersionID returns the version id a new write gets in bucket b.
func putVersionID(b *index.Bucket, ts index.Timestamp) string {
	if versioningState(b) == "Enabled" {
		return newVersionID(ts)
	}
	return "null"
}

// declaredLength is the payload length the request declared, -1 if none.
func declaredLength(r *http.Request) int64 {
	if rc := reqCtx(r); rc.auth != nil && rc.auth.DecodedLength >= 0 {
		return rc.auth.DecodedLength
	}
	return r.ContentLength
}

// trailerChecksum returns the checksum value the request carried in its
// trailer, once the body has been read.
func trailerChecksum(r *http.Request, spec *checksumSpec) string {
	rc := reqCtx(r)
	if rc.auth == nil || rc.auth.Trailer == nil {
		return ""
	}
	want := checksumHeader(spec.alg)
	// Trailer names come as sent (lower case on the wire), not in Go's
	// canonical form, so look them up without regard to case.
	for name, vs := range rc.auth.Trailer() {
		if strings.EqualFold(name, want) && len(vs) > 0 {
			return vs[0]
		}
	}
	return ""
}

func (s *Server) putObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	if err := refuseObjectWriteHeaders(r.Header); err != nil {
		return err
	}
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		return s.copyObject(w, r, bucket, key)
	}
	ctx := r.Context()
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	declared := declaredLength(r)
	if declared > maxPutBytes {
		return ErrEntityTooLarge.with("ProposedSize", strconv.FormatInt(declared, 10), "MaxSizeAllowed", strconv.FormatInt(maxPutBytes, 10))
	}
	headers, err := objectHeaders(r.Header)
	if err != nil {
		return err
	}
	sc, err := storageClass(r.Header)
	if err != nil {
		return err
	}
	spec, err := parseChecksum(r.Header)
	if err != nil {
		return err
	}
	wantMD5, _, err := contentMD5(r.Header)
	if err != nil {
		return err
	}
	tags, err := parseTagHeader(r.Header.Get("X-Amz-Tagging"))
	if err != nil {
		return err
	}
	cond, err := parseWriteConditions(r.Header)
	if err != nil {
		return err
	}
	sreq, err := s.parseWriteSSE(r)
	if err != nil {
		return err
	}
	kind, err := s.writeEncryption(b, sreq)
	if err != nil {
		return err
	}
	wk, err := s.newWriteKey(kind, sreq.customer, nil)
	if err != nil {
		return err
	}
	if err := cond.precheck(ctx, s, b, key); err != nil {
		return err
	}

	writeID := index.NewWriteID()
	keep := s.keepRefs(index.ObjectHolder(b, key, writeID))
	defer keep.stop()
	body, err := s.ingest(ctx, r.Body, declared, maxPutBytes, keep, spec, true, wk.sealer())
	if err != nil {
		return err
	}
	if wantMD5 != nil && hex.EncodeToString(wantMD5) != hex.EncodeToString(body.md5) {
		return ErrBadDigest
	}
	if spec != nil && spec.fromTrailer {
		got := trailerChecksum(r, spec)
		if got == "" {
			return ErrInvalidRequest.msg("The trailer checksum %s was declared but not sent.", checksumHeader(spec.alg))
		}
		if got != body.checksum {
			return ErrBadDigest.msg("The %s you specified did not match the calculated checksum.", spec.alg)
		}
	}

	v := index.Version{
		WriteID: writeID, Size: body.size, ETag: wk.etag(body.md5),
		StorageClass: sc, Owner: reqCtx(r).accessKey, Headers: headers, Inline: body.inline,
		Tags: tags,
	}
	if wk != nil {
		v.Encryption = wk.rec
	}
	if spec != nil {
		v.Checksum = index.Checksum{Algorithm: spec.alg, Value: body.checksum, Type: "FULL_OBJECT"}
	}
	if err := s.placeChunks(ctx, &v, body.chunks); err != nil {
		return err
	}
	if err := keep.check(); err != nil {
		return err
	}
	if err := s.commitVersion(ctx, b, key, &v, cond); err != nil {
		return err
	}
	h := w.Header()
	h.Set("ETag", `"`+v.ETag+`"`)
	if v.ID != "null" {
		h.Set("x-amz-version-id", v.ID)
	}
	setSSEHeaders(h, v.Encryption, sreq.customer)
	if v.Checksum.Value != "" {
		h.Set(checksumHeader(v.Checksum.Algorithm), v.Checksum.Value)
		h.Set("x-amz-checksum-type", v.Checksum.Type)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// placeChunks puts a version's chunk list inline or, when long, into
// extent rows written now (before the version that points at them).
func (s *Server) placeChunks(ctx context.Context, v *index.Version, chunks []index.ChunkRef) error {
	if len(chunks) <= inlineChunksMax {
		v.Chunks = chunks
		return nil
	}
	var recs []index.Record
	var off int64
	for i := 0; i < len(chunks); i += extentRowChunks {
		row := chunks[i:min(i+extentRowChunks, len(chunks))]
		recs = append(recs, index.Record{
			Table: index.TableExtents, PK: v.WriteID[:], SK: index.ExtentSK(off),
			Value: index.EncodeExtents(&index.Extents{Chunks: row}),
		})
		for _, c := range row {
			off += int64(c.Size)
		}
	}
	v.ExtentRows = uint32(len(recs))
	return s.cfg.Index.Put(ctx, recs...)
}

// commitVersion stamps v with its version id and timestamp and makes it
// the key's newest version, if the write conditions still hold, and then
// makes sure no DeleteBucket took the bucket from under it
// (confirmCommit).
func (s *Server) commitVersion(ctx context.Context, b *index.Bucket, key string, v *index.Version, cond writeConditions) error {
	ix := s.cfg.Index
	stamp := func() {
		v.Timestamp = ix.Clock().Now()
		v.ID = putVersionID(b, v.Timestamp)
	}
	var err error
	if !cond.any() {
		stamp()
		err = ix.PutVersion(ctx, b, key, v)
	} else {
		err = ix.UpdateObject(ctx, b, key, func(cur *index.Object) ([]index.Version, error) {
			if err := cond.check(cur); err != nil {
				return nil, err
			}
			stamp()
			return []index.Version{*v}, nil
		})
	}
	if err != nil {
		return err
	}
	return s.confirmCommit(ctx, b, key, v)
}

// writeConditions are the If-Match / If-None-Match headers of a write.
type writeConditions struct {
	ifMatch     string // an ETag list, or "*"
	ifNoneMatch bool   // "If-None-Match: *": create only
}

func parseWriteConditions(h http.Header) (writeConditions, error) {
	c := writeConditions{ifMatch: h.Get("If-Match")}
	if v := h.Get("If-None-Match"); v != "" {
		if v != "*" {
			return c, ErrNotImplemented.msg("A header you provided implies functionality that is not implemented").with("Header", "If-None-Match")
		}
		c.ifNoneMatch = true
	}
	return c, nil
}

func (c writeConditions) any() bool { return c.ifMatch != "" || c.ifNoneMatch }

// check decides the conditions against the key's current record.
func (c writeConditions) check(cur *index.Object) error {
	var latest *index.Version
	if cur != nil {
		latest = cur.Latest()
	}
	exists := latest != nil && !latest.DeleteMarker
	if c.ifNoneMatch && exists {
		return ErrPreconditionFailed.with("Condition", "If-None-Match")
	}
	if c.ifMatch != "" {
		if !exists {
			return ErrNoSuchKey
		}
		if !etagMatches(c.ifMatch, latest.ETag) {
			return ErrPreconditionFailed.with("Condition", "If-Match")
		}
	}
	return nil
}

// precheck fails a conditional write early, before its body is stored;
// commitVersion checks again atomically.
func (c writeConditions) precheck(ctx context.Context, s *Server, b *index.Bucket, key string) error {
	if !c.any() {
		return nil
	}
	cur, err := s.cfg.Index.GetObject(ctx, b, key)
	if err != nil {
		return err
	}
	return c.check(cur)
}

// objectVersion finds the version a GET, HEAD or copy addresses.
// deleteMarker is set when the answer is "no such key" because of a delete
// marker, so the caller can say so in headers.
func (s *Server) objectVersion(ctx context.Context, b *index.Bucket, key, versionID string) (v *index.Version, err error) {
	if versionID != "" && !validVersionID(versionID) {
		return nil, ErrInvalidArgument.msg("Invalid version id specified").with("ArgumentName", "versionId", "ArgumentValue", versionID)
	}
	o, err := s.cfg.Index.GetObject(ctx, b, key)
	if err != nil {
		return nil, err
	}
	if o == nil {
		o = &index.Object{}
	}
	if versionID == "" {
		v = o.Latest()
		if v == nil {
			return nil, ErrNoSuchKey.with("Key", key)
		}
		if v.DeleteMarker {
			return v, ErrNoSuchKey.with("Key", key)
		}
		return v, nil
	}
	v = o.Find(versionID)
	if v == nil {
		return nil, ErrNoSuchVersion.with("Key", key, "VersionId", versionID)
	}
	if v.DeleteMarker {
		return v, ErrMethodNotAllowed.msg("The specified method is not allowed against this resource.").with("Method", "GET", "ResourceType", "DeleteMarker")
	}
	return v, nil
}

func (s *Server) getObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	return s.readObject(w, r, bucket, key, true)
}

func (s *Server) headObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	return s.readObject(w, r, bucket, key, false)
}

// responseOverrides maps the response-* query parameters of GET to the
// headers they replace.
var responseOverrides = map[string]string{
	"response-cache-control":       "Cache-Control",
	"response-content-disposition": "Content-Disposition",
	"response-content-encoding":    "Content-Encoding",
	"response-content-language":    "Content-Language",
	"response-content-type":        "Content-Type",
	"response-expires":             "Expires",
}

func (s *Server) readObject(w http.ResponseWriter, r *http.Request, bucket, key string, withBody bool) error {
	ctx := r.Context()
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	q := r.URL.Query()
	versionID := q.Get("versionId")
	v, err := s.objectVersion(ctx, b, key, versionID)
	h := w.Header()
	if v != nil && v.DeleteMarker {
		h.Set("x-amz-delete-marker", "true")
		if versioningState(b) != "" {
			h.Set("x-amz-version-id", v.ID)
		}
		h.Set("Last-Modified", v.Timestamp.Time().Format(http.TimeFormat))
	}
	if err != nil {
		return err
	}
	if err := checkReadSSE(r.Header); err != nil {
		return err
	}
	ck, err := s.customerKeyOf(r, false)
	if err != nil {
		return err
	}
	objKey, err := s.readKey(v, ck, withBody)
	if err != nil {
		return err
	}
	lastModified := v.Timestamp.Time()
	if err := checkConditions(r.Header, v.ETag, lastModified); err != nil {
		if err == ErrNotModified {
			h.Set("ETag", `"`+v.ETag+`"`)
			h.Set("Last-Modified", lastModified.Format(http.TimeFormat))
		}
		return err
	}

	size := v.Size
	var rng *byteRange
	partNumber := q.Get("partNumber")
	if partNumber != "" {
		if rng, err = s.partRange(ctx, v, partNumber, r.Header.Get("Range")); err != nil {
			return err
		}
	} else if rng, err = parseRange(r.Header.Get("Range"), size); err != nil {
		h.Set("Content-Range", "bytes */"+strconv.FormatInt(size, 10))
		return err
	}

	for _, kv := range v.Headers {
		if strings.HasPrefix(kv.Name, "x-amz-meta-") {
			// S3 returns metadata names in lower case, as stored; clients
			// show them as they arrive.
			h[kv.Name] = []string{kv.Value}
			continue
		}
		h[http.CanonicalHeaderKey(kv.Name)] = []string{kv.Value}
	}
	for param, header := range responseOverrides {
		if val, ok := q[param]; ok {
			h.Set(header, val[0])
		}
	}
	h.Set("ETag", `"`+v.ETag+`"`)
	h.Set("Last-Modified", lastModified.Format(http.TimeFormat))
	h.Set("Accept-Ranges", "bytes")
	setSSEHeaders(h, v.Encryption, ck)
	if versioningState(b) != "" {
		h.Set("x-amz-version-id", v.ID)
	}
	if v.StorageClass != "" {
		h.Set("x-amz-storage-class", v.StorageClass)
	}
	if len(v.Tags) > 0 {
		h.Set("x-amz-tagging-count", strconv.Itoa(len(v.Tags)))
	}
	if v.PartCount > 0 && partNumber != "" {
		h.Set("x-amz-mp-parts-count", strconv.Itoa(int(v.PartCount)))
	}
	if v.Checksum.Value != "" && r.Header.Get("x-amz-checksum-mode") == "ENABLED" && rng == nil {
		h.Set(checksumHeader(v.Checksum.Algorithm), v.Checksum.Value)
		h.Set("x-amz-checksum-type", v.Checksum.Type)
	}
	start, length := int64(0), size
	status := http.StatusOK
	if rng != nil {
		start, length = rng.start, rng.length
		status = http.StatusPartialContent
		h.Set("Content-Range", "bytes "+strconv.FormatInt(start, 10)+"-"+strconv.FormatInt(start+length-1, 10)+"/"+strconv.FormatInt(size, 10))
	}
	h.Set("Content-Length", strconv.FormatInt(length, 10))
	if !withBody {
		w.WriteHeader(status)
		return nil
	}
	w.WriteHeader(status)
	if err := s.streamVersion(ctx, w, v, objKey, start, length); err != nil {
		// Headers are out; the only honest signal left is to cut the
		// connection so the client sees a short body, never wrong bytes.
		var wf writeFailed
		switch {
		case !errors.As(err, &wf):
			s.log.Error("object read failed mid-stream", "request_id", reqCtx(r).id, "bucket", bucket, "key", key, "err", err)
		case errors.Is(err, os.ErrDeadlineExceeded):
			s.log.Info("client stopped reading the object", "request_id", reqCtx(r).id, "bucket", bucket, "key", key)
		default:
			s.log.Debug("client went away mid-stream", "request_id", reqCtx(r).id, "bucket", bucket, "key", key, "err", err)
		}
		panic(http.ErrAbortHandler)
	}
	return nil
}

// partRange resolves ?partNumber=N (with an optional Range within it) to
// a byte range. A non-multipart object has one part, the whole object.
func (s *Server) partRange(ctx context.Context, v *index.Version, partNumber, rangeHeader string) (*byteRange, error) {
	n, err := strconv.Atoi(partNumber)
	if err != nil || n < 1 || n > 10000 {
		return nil, ErrInvalidArgument.msg("Part number must be an integer between 1 and 10000, inclusive").with("ArgumentName", "partNumber", "ArgumentValue", partNumber)
	}
	if rangeHeader != "" {
		return nil, ErrInvalidRequest.msg("Cannot specify both Range header and partNumber query parameter")
	}
	if v.PartCount == 0 {
		if n != 1 {
			return nil, ErrInvalidPartNumber
		}
		return &byteRange{start: 0, length: v.Size}, nil
	}
	p, err := s.versionPart(ctx, v, uint32(n))
	if err != nil {
		return nil, err
	}
	if p == nil {
		return nil, ErrInvalidPartNumber
	}
	return &byteRange{start: p.Offset, length: p.Size}, nil
}

// versionPart returns part n of a multipart version, or nil.
func (s *Server) versionPart(ctx context.Context, v *index.Version, n uint32) (*index.PartInfo, error) {
	if len(v.Parts) > 0 {
		for i := range v.Parts {
			if v.Parts[i].Number == n {
				return &v.Parts[i], nil
			}
		}
		return nil, nil
	}
	if v.PartCount == 0 {
		return nil, nil
	}
	return s.cfg.Index.GetVersionPart(ctx, v.WriteID, n)
}

// ErrInvalidPartNumber is S3's answer to a partNumber the object lacks.
var ErrInvalidPartNumber = apiErr("InvalidPartNumber", 416, "The requested partnumber is not satisfiable")

func (s *Server) deleteObject(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	ctx := r.Context()
	if err := refuseDeleteConditions(r.Header); err != nil {
		return err
	}
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	versionID := r.URL.Query().Get("versionId")
	if versionID != "" && !validVersionID(versionID) {
		return ErrInvalidArgument.msg("Invalid version id specified").with("ArgumentName", "versionId", "ArgumentValue", versionID)
	}
	res, err := s.removeObject(ctx, b, key, versionID, r.Header.Get("If-Match"), reqCtx(r).accessKey)
	if err != nil {
		return err
	}
	h := w.Header()
	if res.deleteMarker {
		h.Set("x-amz-delete-marker", "true")
	}
	if res.versionID != "" {
		h.Set("x-amz-version-id", res.versionID)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// removal is what a delete did.
type removal struct {
	versionID    string // the version removed or the delete marker created
	deleteMarker bool   // a delete marker was created, or the removed version was one
}

// removeObject deletes key (or one version of it) the way S3 does in b's
// versioning state. ifMatch, when set, must match the current ETag.
func (s *Server) removeObject(ctx context.Context, b *index.Bucket, key, versionID, ifMatch, owner string) (removal, error) {
	ix := s.cfg.Index
	var res removal
	state := versioningState(b)
	err := ix.UpdateObject(ctx, b, key, func(cur *index.Object) ([]index.Version, error) {
		if cur == nil {
			cur = &index.Object{}
		}
		latest := cur.Latest()
		if ifMatch != "" {
			if latest == nil || latest.DeleteMarker {
				return nil, ErrNoSuchKey.with("Key", key)
			}
			if !etagMatches(ifMatch, latest.ETag) {
				return nil, ErrPreconditionFailed.with("Condition", "If-Match")
			}
		}
		now := ix.Clock().Now()
		if versionID != "" {
			old := cur.Find(versionID)
			res.versionID = versionID
			if old == nil {
				return nil, nil
			}
			res.deleteMarker = old.DeleteMarker
			return []index.Version{{ID: versionID, Timestamp: now, WriteID: index.NewWriteID(), Tombstone: true}}, nil
		}
		switch state {
		case "Enabled", "Suspended":
			id := putVersionID(b, now)
			res = removal{versionID: id, deleteMarker: true}
			return []index.Version{{ID: id, Timestamp: now, WriteID: index.NewWriteID(), DeleteMarker: true, Owner: owner}}, nil
		default:
			if cur.Find("null") == nil {
				return nil, nil
			}
			return []index.Version{{ID: "null", Timestamp: now, WriteID: index.NewWriteID(), Tombstone: true}}, nil
		}
	})
	return res, err
}

// lastModified is a version's Last-Modified time.
func lastModified(v *index.Version) time.Time { return v.Timestamp.Time() }
