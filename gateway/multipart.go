package gateway

import (
	"context"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ringstore/ringstore/index"
	"github.com/ringstore/ringstore/internal/sse"
)

// S3's multipart limits.
const (
	maxParts        = 10000
	minPartBytes    = 5 << 20
	maxPartBytes    = 5 << 30
	maxObjectBytes  = 5 << 40
	inlinePartsMax  = 64 // part lists longer than this go to version-part rows
	completeBodyMax = 4 << 20
)

var (
	ErrNoSuchUpload     = apiErr("NoSuchUpload", 404, "The specified multipart upload does not exist. The upload ID might be invalid, or the multipart upload might have been aborted or completed.")
	ErrInvalidPart      = apiErr("InvalidPart", 400, "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.")
	ErrInvalidPartOrder = apiErr("InvalidPartOrder", 400, "The list of parts was not in ascending order. Parts list must be specified in order by part number.")
)

type initiateMultipartUploadResult struct {
	XMLName  xml.Name `xml:"InitiateMultipartUploadResult"`
	NS       string   `xml:"xmlns,attr"`
	Bucket   string   `xml:"Bucket"`
	Key      string   `xml:"Key"`
	UploadID string   `xml:"UploadId"`
}

// multipartChecksum reads the checksum algorithm and type of a
// CreateMultipartUpload request.
func multipartChecksum(h http.Header) (alg, typ string, err error) {
	alg = strings.ToUpper(h.Get("X-Amz-Checksum-Algorithm"))
	typ = strings.ToUpper(h.Get("X-Amz-Checksum-Type"))
	if alg == "" {
		if typ != "" {
			return "", "", ErrInvalidRequest.msg("The x-amz-checksum-type header can only be used with the x-amz-checksum-algorithm header.")
		}
		return "", "", nil
	}
	if !validAlgorithm(alg) {
		return "", "", ErrInvalidRequest.msg("Checksum algorithm provided is unsupported. Please try again with any of the valid types: [CRC32, CRC32C, CRC64NVME, SHA1, SHA256]")
	}
	_, isCRC := crcAlgorithms[alg]
	switch typ {
	case "":
		typ = "COMPOSITE"
		if alg == "CRC64NVME" {
			typ = "FULL_OBJECT"
		}
	case "COMPOSITE":
		if alg == "CRC64NVME" {
			return "", "", ErrInvalidRequest.msg("The COMPOSITE checksum type cannot be used with the crc64nvme checksum algorithm.")
		}
	case "FULL_OBJECT":
		if !isCRC {
			return "", "", ErrInvalidRequest.msg("The FULL_OBJECT checksum type cannot be used with the %s checksum algorithm.", strings.ToLower(alg))
		}
	default:
		return "", "", ErrInvalidRequest.msg("Value for x-amz-checksum-type header is invalid.")
	}
	return alg, typ, nil
}

func (s *Server) createMultipartUpload(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	ctx := r.Context()
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	if err := refuseObjectWriteHeaders(r.Header); err != nil {
		return err
	}
	headers, err := objectHeaders(r.Header)
	if err != nil {
		return err
	}
	sc, err := storageClass(r.Header)
	if err != nil {
		return err
	}
	tags, err := parseTagHeader(r.Header.Get("X-Amz-Tagging"))
	if err != nil {
		return err
	}
	alg, typ, err := multipartChecksum(r.Header)
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
	// One data key seals every part, so the completed object is read with
	// one key whichever parts it is made of.
	wk, err := s.newWriteKey(kind, sreq.customer, nil)
	if err != nil {
		return err
	}
	ts := s.cfg.Index.Clock().Now()
	u := &index.Upload{
		Key: key, UploadID: newVersionID(ts), Initiated: ts, Owner: reqCtx(r).accessKey,
		Headers: headers, StorageClass: sc, Tags: tags, ChecksumAlgorithm: alg, ChecksumType: typ,
	}
	if wk != nil {
		u.Encryption = wk.rec
	}
	if err := s.cfg.Index.PutUpload(ctx, b, u); err != nil {
		return err
	}
	if alg != "" {
		w.Header().Set("x-amz-checksum-algorithm", alg)
		w.Header().Set("x-amz-checksum-type", typ)
	}
	setSSEHeaders(w.Header(), u.Encryption, sreq.customer)
	return writeXML(w, http.StatusOK, initiateMultipartUploadResult{NS: s3NS, Bucket: bucket, Key: key, UploadID: u.UploadID})
}

// liveUpload returns the upload named by the request, or NoSuchUpload.
func (s *Server) liveUpload(ctx context.Context, b *index.Bucket, key, uploadID string) (*index.Upload, error) {
	if !validVersionID(uploadID) || uploadID == "null" {
		return nil, ErrNoSuchUpload.with("UploadId", uploadID)
	}
	u, err := s.cfg.Index.GetUpload(ctx, b, key, uploadID)
	if err != nil {
		return nil, err
	}
	if u == nil || u.Done != 0 {
		return nil, ErrNoSuchUpload.with("UploadId", uploadID)
	}
	return u, nil
}

func parsePartNumber(v string) (uint32, error) {
	n, err := strconv.Atoi(v)
	if err != nil || n < 1 || n > maxParts {
		return 0, ErrInvalidArgument.msg("Part number must be an integer between 1 and 10000, inclusive").with("ArgumentName", "partNumber", "ArgumentValue", v)
	}
	return uint32(n), nil
}

// partChecksumSpec decides which checksum a part is verified and stored
// with: the one the request names, which must agree with the upload's
// algorithm when the upload has one, or else the upload's.
func partChecksumSpec(h http.Header, u *index.Upload) (*checksumSpec, error) {
	spec, err := parseChecksum(h)
	if err != nil {
		return nil, err
	}
	if u.ChecksumAlgorithm == "" {
		return spec, nil
	}
	if spec == nil {
		return &checksumSpec{alg: u.ChecksumAlgorithm}, nil
	}
	if spec.alg != u.ChecksumAlgorithm {
		return nil, ErrInvalidRequest.msg("Checksum Type mismatch occurred, expected checksum Type: %s, actual checksum Type: %s", strings.ToLower(u.ChecksumAlgorithm), strings.ToLower(spec.alg))
	}
	return spec, nil
}

func (s *Server) uploadPart(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	ctx := r.Context()
	q := r.URL.Query()
	n, err := parsePartNumber(q.Get("partNumber"))
	if err != nil {
		return err
	}
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	u, err := s.liveUpload(ctx, b, key, q.Get("uploadId"))
	if err != nil {
		return err
	}
	ck, err := s.customerKeyOf(r, false)
	if err != nil {
		return err
	}
	partKey, err := s.uploadKey(u, ck)
	if err != nil {
		return err
	}
	if r.Header.Get("X-Amz-Copy-Source") != "" {
		return s.uploadPartCopy(w, r, b, u, n, partKey, ck)
	}
	declared := declaredLength(r)
	if declared > maxPartBytes {
		return ErrEntityTooLarge.with("ProposedSize", strconv.FormatInt(declared, 10), "MaxSizeAllowed", strconv.FormatInt(maxPartBytes, 10))
	}
	spec, err := partChecksumSpec(r.Header, u)
	if err != nil {
		return err
	}
	wantMD5, _, err := contentMD5(r.Header)
	if err != nil {
		return err
	}
	p := &index.Part{Number: n, WriteID: index.NewWriteID()}
	keep := s.keepRefs(index.PartHolder(b, u, n, p.WriteID))
	defer keep.stop()
	body, err := s.ingest(ctx, r.Body, declared, maxPartBytes, keep, spec, false, partKey)
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
	p.Size, p.ETag, p.Checksum = body.size, partETag(u, partKey, body.md5), body.checksum
	if err := keep.check(); err != nil {
		return err
	}
	if err := s.storePart(ctx, b, u, p, body.chunks); err != nil {
		return err
	}
	setSSEHeaders(w.Header(), u.Encryption, ck)
	w.Header().Set("ETag", `"`+p.ETag+`"`)
	if spec != nil {
		w.Header().Set(checksumHeader(spec.alg), p.Checksum)
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// partETag is a part's ETag: the MD5 of its bytes, or for an SSE-C
// upload a value derived from the upload's data key (see sse.Sealer.ETag).
func partETag(u *index.Upload, key *sse.Sealer, md []byte) string {
	if u.Encryption.KindOf() == index.EncryptionC {
		return key.ETag(md)
	}
	return hex.EncodeToString(md)
}

// storePart places a part's chunk list and writes its record.
func (s *Server) storePart(ctx context.Context, b *index.Bucket, u *index.Upload, p *index.Part, chunks []index.ChunkRef) error {
	var v index.Version
	v.WriteID = p.WriteID
	if err := s.placeChunks(ctx, &v, chunks); err != nil {
		return err
	}
	p.Chunks, p.ExtentRows = v.Chunks, v.ExtentRows
	p.Timestamp = s.cfg.Index.Clock().Now()
	return s.cfg.Index.Put(ctx, index.PartRecord(u.UploadID, p))
}

type copyPartResult struct {
	XMLName        xml.Name `xml:"CopyPartResult"`
	NS             string   `xml:"xmlns,attr"`
	ETag           string   `xml:"ETag"`
	LastModified   string   `xml:"LastModified"`
	ChecksumCRC32  string   `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C string   `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64  string   `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1   string   `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256 string   `xml:"ChecksumSHA256,omitempty"`
}

// uploadPartCopy makes a part from a range of an existing object. Whole
// chunks inside the range are shared, not copied; only the chunks cut by
// the range's ends are rewritten. The part's ETag (the MD5 of its bytes)
// and checksum need the bytes read once.
//
// A part of an encrypted upload, or from an encrypted source, is sealed
// anew under the upload's key: chunks are shared only between plaintext
// objects, since no two data keys are the same.
func (s *Server) uploadPartCopy(w http.ResponseWriter, r *http.Request, b *index.Bucket, u *index.Upload, n uint32, key *sse.Sealer, ck *customerKey) error {
	ctx := r.Context()
	_, src, _, err := s.copySourceVersion(ctx, r)
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
	start, length := int64(0), src.Size
	if rh := r.Header.Get("X-Amz-Copy-Source-Range"); rh != "" {
		rng, err := parseCopyRange(rh, src.Size)
		if err != nil {
			return err
		}
		start, length = rng.start, rng.length
	}
	if length > maxPartBytes {
		return ErrEntityTooLarge
	}
	p := &index.Part{Number: n, WriteID: index.NewWriteID(), Size: length}
	keep := s.keepRefs(index.PartHolder(b, u, n, p.WriteID))
	defer keep.stop()
	var cksum hash.Hash
	if u.ChecksumAlgorithm != "" {
		cksum = newChecksum(u.ChecksumAlgorithm)
	}
	var chunks []index.ChunkRef
	if key == nil && srcKey == nil {
		md := md5.New()
		chunks, err = s.sliceChunks(ctx, src, start, length, keep, func(data []byte) {
			md.Write(data)
			if cksum != nil {
				cksum.Write(data)
			}
		})
		if err != nil {
			return err
		}
		p.ETag = hex.EncodeToString(md.Sum(nil))
		if cksum != nil {
			p.Checksum = base64.StdEncoding.EncodeToString(cksum.Sum(nil))
		}
	} else {
		var spec *checksumSpec
		if u.ChecksumAlgorithm != "" {
			spec = &checksumSpec{alg: u.ChecksumAlgorithm}
		}
		body, err := s.recrypt(ctx, src, srcKey, start, length, maxPartBytes, keep, spec, false, key)
		if err != nil {
			return err
		}
		chunks = body.chunks
		p.ETag, p.Checksum = partETag(u, key, body.md5), body.checksum
	}
	if err := keep.check(); err != nil {
		return err
	}
	res := copyPartResult{NS: s3NS, ETag: `"` + p.ETag + `"`}
	if p.Checksum != "" {
		var c copyObjectResult
		setResultChecksum(&c, index.Checksum{Algorithm: u.ChecksumAlgorithm, Value: p.Checksum})
		res.ChecksumCRC32, res.ChecksumCRC32C, res.ChecksumCRC64, res.ChecksumSHA1, res.ChecksumSHA256 = c.ChecksumCRC32, c.ChecksumCRC32C, c.ChecksumCRC64, c.ChecksumSHA1, c.ChecksumSHA256
	}
	if err := s.storePart(ctx, b, u, p, chunks); err != nil {
		return err
	}
	setSSEHeaders(w.Header(), u.Encryption, ck)
	res.LastModified = xmlTime(p.Timestamp.Time())
	return writeXML(w, http.StatusOK, res)
}

// parseCopyRange parses x-amz-copy-source-range: "bytes=first-last",
// both required and inside the object.
func parseCopyRange(h string, size int64) (*byteRange, error) {
	bad := ErrInvalidArgument.msg("The x-amz-copy-source-range value must be of the form bytes=first-last where first and last are the zero-based offsets of the first and last bytes to copy").with("ArgumentName", "x-amz-copy-source-range", "ArgumentValue", h)
	spec, ok := strings.CutPrefix(h, "bytes=")
	if !ok {
		return nil, bad
	}
	a, z, ok := strings.Cut(spec, "-")
	first, ok1 := parseDigits(a)
	last, ok2 := parseDigits(z)
	if !ok || !ok1 || !ok2 || last < first {
		return nil, bad
	}
	if last >= size {
		return nil, ErrInvalidRange.msg("The requested range is not satisfiable")
	}
	return &byteRange{start: first, length: last - first + 1}, nil
}

// sliceChunks returns the chunk list of bytes [start, start+length) of
// src, sharing whole chunks and storing new chunks for the cut ends. Every
// byte is passed to sum in order.
func (s *Server) sliceChunks(ctx context.Context, src *index.Version, start, length int64, keep *refKeeper, sum func([]byte)) ([]index.ChunkRef, error) {
	if length == 0 {
		return nil, nil
	}
	if src.Inline != nil {
		data := src.Inline[start : start+length]
		sum(data)
		w := &chunkWriter{s: s, ctx: ctx, keep: keep, sem: make(chan struct{}, 1)}
		buf := s.bufs.get()
		n := copy(*buf, data)
		w.submit(buf, n)
		if err := w.wait(); err != nil {
			return nil, err
		}
		return w.chunks, nil
	}
	var shared []index.ChunkRef
	var out []index.ChunkRef
	var werr error
	end := start + length
	err := s.chunksOf(ctx, src, start, length, func(c chunkAt) bool {
		buf := s.bufs.get()
		defer s.bufs.put(buf)
		data, err := s.cfg.Chunks.Get(ctx, blobIDOf(c.ref.ID), *buf)
		if err != nil {
			werr = err
			return false
		}
		lo := max(start-c.offset, 0)
		hi := min(end-c.offset, int64(len(data)))
		sum(data[lo:hi])
		if lo == 0 && hi == int64(len(data)) {
			out = append(out, c.ref)
			shared = append(shared, c.ref)
			return true
		}
		// A cut chunk: store its kept bytes as a new chunk.
		w := &chunkWriter{s: s, ctx: ctx, keep: keep, sem: make(chan struct{}, 1)}
		nb := s.bufs.get()
		n := copy(*nb, data[lo:hi])
		w.submit(nb, n)
		if werr = w.wait(); werr != nil {
			return false
		}
		out = append(out, w.chunks...)
		return true
	})
	if err == nil {
		err = werr
	}
	if err != nil {
		return nil, err
	}
	if err := s.refChunks(ctx, shared, keep); err != nil {
		return nil, err
	}
	return out, nil
}

type completeMultipartUpload struct {
	XMLName xml.Name `xml:"CompleteMultipartUpload"`
	Parts   []struct {
		PartNumber        int    `xml:"PartNumber"`
		ETag              string `xml:"ETag"`
		ChecksumCRC32     string `xml:"ChecksumCRC32"`
		ChecksumCRC32C    string `xml:"ChecksumCRC32C"`
		ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME"`
		ChecksumSHA1      string `xml:"ChecksumSHA1"`
		ChecksumSHA256    string `xml:"ChecksumSHA256"`
	} `xml:"Part"`
}

type completeMultipartUploadResult struct {
	XMLName        xml.Name `xml:"CompleteMultipartUploadResult"`
	NS             string   `xml:"xmlns,attr"`
	Location       string   `xml:"Location"`
	Bucket         string   `xml:"Bucket"`
	Key            string   `xml:"Key"`
	ETag           string   `xml:"ETag"`
	ChecksumCRC32  string   `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C string   `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64  string   `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1   string   `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256 string   `xml:"ChecksumSHA256,omitempty"`
	ChecksumType   string   `xml:"ChecksumType,omitempty"`
}

// completeKeepAlive is how long CompleteMultipartUpload works before it
// commits to a 200 and keeps the connection alive with whitespace, as S3
// does; a failure after that point is reported as an error document in
// the 200 body.
const completeKeepAlive = 5 * time.Second

func (s *Server) completeMultipartUpload(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	ctx := r.Context()
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	var req completeMultipartUpload
	if err := readXML(r, &req, completeBodyMax, false); err != nil {
		return err
	}
	if len(req.Parts) == 0 {
		return ErrMalformedXML.msg("The XML you provided was not well-formed or did not validate against our published schema")
	}
	if len(req.Parts) > maxParts {
		return ErrInvalidArgument.msg("Part number must be an integer between 1 and 10000, inclusive")
	}
	for i, p := range req.Parts {
		if p.PartNumber < 1 || p.PartNumber > maxParts {
			return ErrInvalidArgument.msg("Part number must be an integer between 1 and 10000, inclusive")
		}
		if i > 0 && p.PartNumber <= req.Parts[i-1].PartNumber {
			return ErrInvalidPartOrder
		}
	}
	cond, err := parseWriteConditions(r.Header)
	if err != nil {
		return err
	}
	u, err := s.liveUpload(ctx, b, key, r.URL.Query().Get("uploadId"))
	if err != nil {
		return err
	}
	// S3 needs no key to complete an SSE-C upload; one given must be the
	// upload's.
	ck, err := s.customerKeyOf(r, false)
	if err != nil {
		return err
	}
	if ck != nil {
		if _, err := s.uploadKey(u, ck); err != nil {
			return err
		}
	}
	if err := cond.precheck(ctx, s, b, key); err != nil {
		return err
	}

	type outcome struct {
		v   *index.Version
		err error
	}
	done := make(chan outcome, 1)
	go func() {
		writeID := index.NewWriteID()
		keep := s.keepRefs(index.ObjectHolder(b, u.Key, writeID))
		defer keep.stop()
		v, err := s.assemble(ctx, b, u, &req, writeID, keep)
		if err == nil {
			err = keep.check()
		}
		if err == nil {
			err = s.commitVersion(ctx, b, key, v, cond)
		}
		if err == nil {
			fin := *u
			fin.Done = s.cfg.Index.Clock().Now()
			err = s.cfg.Index.PutUpload(context.WithoutCancel(ctx), b, &fin)
		}
		done <- outcome{v, err}
	}()
	var res outcome
	timer := time.NewTimer(completeKeepAlive)
	defer timer.Stop()
	streaming := false
	for waiting := true; waiting; {
		select {
		case res = <-done:
			waiting = false
		case <-timer.C:
			if !streaming {
				streaming = true
				setSSEHeaders(w.Header(), u.Encryption, ck)
				w.Header().Set("Content-Type", "application/xml")
				w.WriteHeader(http.StatusOK)
				_, _ = w.Write([]byte(xml.Header))
			}
			_, _ = w.Write([]byte(" "))
			if f, ok := w.(http.Flusher); ok {
				f.Flush()
			}
			timer.Reset(completeKeepAlive)
		}
	}
	if res.err != nil {
		if !streaming {
			return res.err
		}
		s.writeStreamedError(w, r, res.err)
		return nil
	}
	v := res.v
	if v.ID != "null" {
		w.Header().Set("x-amz-version-id", v.ID)
	}
	if !streaming {
		setSSEHeaders(w.Header(), v.Encryption, ck)
	}
	out := completeMultipartUploadResult{
		NS: s3NS, Location: "/" + bucket + "/" + key, Bucket: bucket, Key: key, ETag: `"` + v.ETag + `"`,
	}
	if v.Checksum.Value != "" {
		var c copyObjectResult
		setResultChecksum(&c, v.Checksum)
		out.ChecksumCRC32, out.ChecksumCRC32C, out.ChecksumCRC64, out.ChecksumSHA1, out.ChecksumSHA256 = c.ChecksumCRC32, c.ChecksumCRC32C, c.ChecksumCRC64, c.ChecksumSHA1, c.ChecksumSHA256
		out.ChecksumType = v.Checksum.Type
	}
	if !streaming {
		return writeXML(w, http.StatusOK, out)
	}
	body, err := xml.Marshal(out)
	if err != nil {
		return err
	}
	_, _ = w.Write(body)
	return nil
}

// writeStreamedError writes an error document into a 200 response that
// has already started.
func (s *Server) writeStreamedError(w http.ResponseWriter, r *http.Request, err error) {
	rc := reqCtx(r)
	ae := asAPIError(err)
	if ae == ErrInternal {
		s.log.Error("request failed", "request_id", rc.id, "err", err)
	}
	body, _ := xml.Marshal(errorResponse{Code: ae.Code, Message: ae.Message, RequestID: rc.id, HostID: rc.hostID, Resource: r.URL.Path})
	_, _ = w.Write(body)
}

// assemble checks the listed parts against the stored ones and builds the
// object version: its chunk list (inline or in extent rows), part list,
// multipart ETag and checksum, and a blob reference from the new version to
// every chunk. Memory stays bounded by one extent row and one page of
// parts, whatever the number of parts.
func (s *Server) assemble(ctx context.Context, b *index.Bucket, u *index.Upload, req *completeMultipartUpload, writeID index.WriteID, keep *refKeeper) (*index.Version, error) {
	ix := s.cfg.Index
	v := &index.Version{
		WriteID: writeID, Owner: u.Owner, Headers: u.Headers, StorageClass: u.StorageClass,
		Tags: u.Tags, PartCount: uint32(len(req.Parts)), Encryption: u.Encryption,
	}
	if len(u.Tags) > 0 {
		v.TagsTS = ix.Clock().Now()
	}
	etags := md5.New()
	var composite hash.Hash
	crc, isCRC := crcAlgorithms[u.ChecksumAlgorithm]
	var fullCRC uint64
	if u.ChecksumAlgorithm != "" && u.ChecksumType == "COMPOSITE" {
		composite = newChecksum(u.ChecksumAlgorithm)
	}
	ex := &extentBuilder{s: s, ctx: ctx, v: v, keep: keep}
	var partRows []index.Record
	var after uint32
	var page []*index.Part
	more := true
	for i, want := range req.Parts {
		// Merge-join the listed parts with the stored ones, both ascending.
		var p *index.Part
		for p == nil {
			for len(page) > 0 && page[0].Number < uint32(want.PartNumber) {
				page = page[1:]
			}
			if len(page) > 0 {
				if page[0].Number == uint32(want.PartNumber) {
					p = page[0]
				}
				break
			}
			if !more {
				break
			}
			var err error
			if page, more, err = ix.ListParts(ctx, u.UploadID, after, 1000); err != nil {
				return nil, err
			}
			if len(page) > 0 {
				after = page[len(page)-1].Number
			}
		}
		if p == nil || strings.Trim(want.ETag, `"`) != p.ETag {
			return nil, ErrInvalidPart.with("UploadId", u.UploadID, "PartNumber", strconv.Itoa(want.PartNumber))
		}
		if i < len(req.Parts)-1 && p.Size < s.cfg.MinPartBytes {
			return nil, ErrEntityTooSmall.with("ProposedSize", strconv.FormatInt(p.Size, 10), "MinSizeAllowed", strconv.FormatInt(s.cfg.MinPartBytes, 10), "PartNumber", strconv.Itoa(want.PartNumber), "ETag", p.ETag)
		}
		if u.ChecksumAlgorithm != "" {
			given := map[string]string{"CRC32": want.ChecksumCRC32, "CRC32C": want.ChecksumCRC32C, "CRC64NVME": want.ChecksumCRC64NVME, "SHA1": want.ChecksumSHA1, "SHA256": want.ChecksumSHA256}[u.ChecksumAlgorithm]
			if given != "" && given != p.Checksum {
				return nil, ErrInvalidPart.msg("The %s checksum of part %d did not match.", u.ChecksumAlgorithm, want.PartNumber)
			}
			if p.Checksum == "" {
				return nil, ErrInvalidRequest.msg("The upload was created using the %s checksum algorithm but part %d was stored without one.", u.ChecksumAlgorithm, want.PartNumber)
			}
		}
		raw, _ := hex.DecodeString(p.ETag)
		etags.Write(raw)
		if composite != nil {
			c, _ := base64.StdEncoding.DecodeString(p.Checksum)
			composite.Write(c)
		}
		if isCRC && u.ChecksumType == "FULL_OBJECT" {
			c, _ := decodeCRC(crc, p.Checksum)
			if i == 0 {
				fullCRC = c
			} else {
				fullCRC = crcCombine(crc, fullCRC, c, p.Size)
			}
		}
		info := index.PartInfo{Number: p.Number, Size: p.Size, Offset: v.Size, ETag: p.ETag}
		if p.Checksum != "" && u.ChecksumAlgorithm != "" {
			info.Checksum = index.Checksum{Algorithm: u.ChecksumAlgorithm, Value: p.Checksum}
		}
		if len(req.Parts) <= inlinePartsMax {
			v.Parts = append(v.Parts, info)
		} else {
			partRows = append(partRows, index.Record{Table: index.TableVersionParts, PK: v.WriteID[:], SK: index.PartSK(p.Number), Value: index.EncodePartInfo(&info)})
			if len(partRows) == 256 {
				if err := ix.Put(ctx, partRows...); err != nil {
					return nil, err
				}
				partRows = partRows[:0]
			}
		}
		v.Size += p.Size
		if v.Size > maxObjectBytes {
			return nil, ErrEntityTooLarge
		}
		if err := ex.addPart(p); err != nil {
			return nil, err
		}
	}
	if len(partRows) > 0 {
		if err := ix.Put(ctx, partRows...); err != nil {
			return nil, err
		}
	}
	if err := ex.finish(); err != nil {
		return nil, err
	}
	v.ETag = fmt.Sprintf("%s-%d", hex.EncodeToString(etags.Sum(nil)), len(req.Parts))
	switch {
	case composite != nil:
		v.Checksum = index.Checksum{Algorithm: u.ChecksumAlgorithm, Value: fmt.Sprintf("%s-%d", base64.StdEncoding.EncodeToString(composite.Sum(nil)), len(req.Parts)), Type: "COMPOSITE"}
	case isCRC && u.ChecksumType == "FULL_OBJECT":
		v.Checksum = index.Checksum{Algorithm: u.ChecksumAlgorithm, Value: encodeCRC(crc, fullCRC), Type: "FULL_OBJECT"}
	}
	return v, nil
}

// extentBuilder accumulates a version's chunk list part by part, keeping
// it inline while short and spilling it into extent rows once long,
// recording a blob reference from the version to every chunk.
type extentBuilder struct {
	s       *Server
	ctx     context.Context
	v       *index.Version
	keep    *refKeeper
	pending []index.ChunkRef // not yet in a row
	rowOff  int64            // offset of pending[0]
	off     int64            // offset after the last chunk added
	rows    uint32
	refs    []index.ChunkRef
}

func (e *extentBuilder) addPart(p *index.Part) error {
	pv := &index.Version{WriteID: p.WriteID, Chunks: p.Chunks, ExtentRows: p.ExtentRows, Size: p.Size}
	var err error
	if cerr := e.s.chunksOf(e.ctx, pv, 0, p.Size, func(c chunkAt) bool {
		if err = e.add(c.ref); err != nil {
			return false
		}
		return true
	}); cerr != nil {
		return cerr
	}
	return err
}

func (e *extentBuilder) add(c index.ChunkRef) error {
	e.pending = append(e.pending, c)
	e.refs = append(e.refs, c)
	e.off += int64(c.Size)
	if len(e.refs) >= 256 {
		if err := e.flushRefs(); err != nil {
			return err
		}
	}
	if e.rows == 0 && len(e.pending) <= inlineChunksMax {
		return nil
	}
	for len(e.pending) >= extentRowChunks {
		if err := e.writeRow(e.pending[:extentRowChunks]); err != nil {
			return err
		}
		e.pending = append(e.pending[:0], e.pending[extentRowChunks:]...)
	}
	return nil
}

func (e *extentBuilder) writeRow(row []index.ChunkRef) error {
	rec := index.Record{Table: index.TableExtents, PK: e.v.WriteID[:], SK: index.ExtentSK(e.rowOff), Value: index.EncodeExtents(&index.Extents{Chunks: row})}
	if err := e.s.cfg.Index.Put(e.ctx, rec); err != nil {
		return err
	}
	for _, c := range row {
		e.rowOff += int64(c.Size)
	}
	e.rows++
	return nil
}

func (e *extentBuilder) flushRefs() error {
	if len(e.refs) == 0 {
		return nil
	}
	err := e.s.refChunks(e.ctx, e.refs, e.keep)
	e.refs = e.refs[:0]
	return err
}

func (e *extentBuilder) finish() error {
	if err := e.flushRefs(); err != nil {
		return err
	}
	if e.rows == 0 && len(e.pending) <= inlineChunksMax {
		e.v.Chunks = e.pending
		return nil
	}
	if len(e.pending) > 0 {
		if err := e.writeRow(e.pending); err != nil {
			return err
		}
	}
	e.v.ExtentRows = e.rows
	return nil
}

func (s *Server) abortMultipartUpload(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	ctx := r.Context()
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	u, err := s.liveUpload(ctx, b, key, r.URL.Query().Get("uploadId"))
	if err != nil {
		return err
	}
	fin := *u
	fin.Done = s.cfg.Index.Clock().Now()
	if err := s.cfg.Index.PutUpload(ctx, b, &fin); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

type listPartsResult struct {
	XMLName              xml.Name  `xml:"ListPartsResult"`
	NS                   string    `xml:"xmlns,attr"`
	Bucket               string    `xml:"Bucket"`
	Key                  string    `xml:"Key"`
	UploadID             string    `xml:"UploadId"`
	Initiator            owner     `xml:"Initiator"`
	Owner                owner     `xml:"Owner"`
	StorageClass         string    `xml:"StorageClass"`
	PartNumberMarker     int       `xml:"PartNumberMarker"`
	NextPartNumberMarker int       `xml:"NextPartNumberMarker"`
	MaxParts             int       `xml:"MaxParts"`
	IsTruncated          bool      `xml:"IsTruncated"`
	ChecksumAlgorithm    string    `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType         string    `xml:"ChecksumType,omitempty"`
	Parts                []partXML `xml:"Part"`
}

type partXML struct {
	PartNumber        int    `xml:"PartNumber"`
	LastModified      string `xml:"LastModified,omitempty"`
	ETag              string `xml:"ETag"`
	Size              int64  `xml:"Size"`
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
}

func setPartChecksum(p *partXML, alg, value string) {
	switch alg {
	case "CRC32":
		p.ChecksumCRC32 = value
	case "CRC32C":
		p.ChecksumCRC32C = value
	case "CRC64NVME":
		p.ChecksumCRC64NVME = value
	case "SHA1":
		p.ChecksumSHA1 = value
	case "SHA256":
		p.ChecksumSHA256 = value
	}
}

// parseBoundedInt parses an optional non-negative integer query parameter
// capped at limit.
func parseBoundedInt(v, name string, def, limit int) (int, error) {
	if v == "" {
		return def, nil
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return 0, ErrInvalidArgument.msg("Provided %s not an integer or within integer range", name).with("ArgumentName", name, "ArgumentValue", v)
	}
	return min(n, limit), nil
}

func (s *Server) listParts(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	ctx := r.Context()
	q := r.URL.Query()
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	maxParts, err := parseBoundedInt(q.Get("max-parts"), "max-parts", 1000, 1000)
	if err != nil {
		return err
	}
	marker, err := parseBoundedInt(q.Get("part-number-marker"), "part-number-marker", 0, 10000)
	if err != nil {
		return err
	}
	u, err := s.liveUpload(ctx, b, key, q.Get("uploadId"))
	if err != nil {
		return err
	}
	res := listPartsResult{
		NS: s3NS, Bucket: bucket, Key: key, UploadID: u.UploadID, Initiator: ownerOf(u.Owner), Owner: ownerOf(u.Owner),
		StorageClass: storageClassOrStandard(u.StorageClass), PartNumberMarker: marker, MaxParts: maxParts,
		ChecksumAlgorithm: u.ChecksumAlgorithm, ChecksumType: u.ChecksumType,
	}
	if maxParts > 0 {
		parts, more, err := s.cfg.Index.ListParts(ctx, u.UploadID, uint32(marker), maxParts+1)
		if err != nil {
			return err
		}
		if len(parts) > maxParts {
			parts, more = parts[:maxParts], true
		} else {
			more = false
		}
		for _, p := range parts {
			px := partXML{PartNumber: int(p.Number), LastModified: xmlTime(p.Timestamp.Time()), ETag: `"` + p.ETag + `"`, Size: p.Size}
			setPartChecksum(&px, u.ChecksumAlgorithm, p.Checksum)
			res.Parts = append(res.Parts, px)
			res.NextPartNumberMarker = int(p.Number)
		}
		res.IsTruncated = more
	}
	return writeXML(w, http.StatusOK, res)
}

type listMultipartUploadsResult struct {
	XMLName            xml.Name          `xml:"ListMultipartUploadsResult"`
	NS                 string            `xml:"xmlns,attr"`
	Bucket             string            `xml:"Bucket"`
	KeyMarker          string            `xml:"KeyMarker"`
	UploadIDMarker     string            `xml:"UploadIdMarker"`
	NextKeyMarker      string            `xml:"NextKeyMarker"`
	NextUploadIDMarker string            `xml:"NextUploadIdMarker"`
	Delimiter          string            `xml:"Delimiter,omitempty"`
	Prefix             string            `xml:"Prefix"`
	EncodingType       string            `xml:"EncodingType,omitempty"`
	MaxUploads         int               `xml:"MaxUploads"`
	IsTruncated        bool              `xml:"IsTruncated"`
	Uploads            []uploadXML       `xml:"Upload"`
	CommonPrefixes     []commonPrefixXML `xml:"CommonPrefixes"`
}

type uploadXML struct {
	Key               string `xml:"Key"`
	UploadID          string `xml:"UploadId"`
	Initiator         owner  `xml:"Initiator"`
	Owner             owner  `xml:"Owner"`
	StorageClass      string `xml:"StorageClass"`
	Initiated         string `xml:"Initiated"`
	ChecksumAlgorithm string `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
}

func (s *Server) listMultipartUploads(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	ctx := r.Context()
	q := r.URL.Query()
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	maxUploads, err := parseBoundedInt(q.Get("max-uploads"), "max-uploads", 1000, 1000)
	if err != nil {
		return err
	}
	enc, err := parseEncoding(q)
	if err != nil {
		return err
	}
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	keyMarker, idMarker := q.Get("key-marker"), q.Get("upload-id-marker")
	res := listMultipartUploadsResult{
		NS: s3NS, Bucket: bucket, KeyMarker: s3Encode(keyMarker, enc), UploadIDMarker: idMarker,
		Delimiter: s3Encode(delim, enc), Prefix: s3Encode(prefix, enc), MaxUploads: maxUploads,
	}
	if enc {
		res.EncodingType = "url"
	}
	var start []byte
	switch {
	case keyMarker != "" && idMarker != "":
		start = append(index.UploadSK(keyMarker, idMarker), 0)
	case keyMarker != "":
		if cp := commonPrefix(keyMarker, prefix, delim); cp != "" && cp == keyMarker {
			end, _ := index.PrefixEnd(cp)
			start = []byte(end)
		} else {
			start = append([]byte(keyMarker), 1) // past every "keyMarker\x00id"
		}
	}
	l := s.cfg.Index.ListUploads(ctx, b, start, prefix, maxUploads+1)
	count := 0
	lastKey, lastID := "", ""
	for maxUploads > 0 {
		e, ok := l.NextRaw()
		if !ok {
			break
		}
		u, err := index.DecodeUpload(e.Value)
		if err != nil {
			return err
		}
		if u.Done != 0 {
			continue
		}
		if count == maxUploads {
			res.IsTruncated = true
			break
		}
		count++
		if cp := commonPrefix(u.Key, prefix, delim); cp != "" {
			res.CommonPrefixes = append(res.CommonPrefixes, commonPrefixXML{Prefix: s3Encode(cp, enc)})
			lastKey, lastID = cp, ""
			if end, ok := index.PrefixEnd(cp); ok {
				l.Seek(end)
				continue
			}
			break
		}
		res.Uploads = append(res.Uploads, uploadXML{
			Key: s3Encode(u.Key, enc), UploadID: u.UploadID, Initiator: ownerOf(u.Owner), Owner: ownerOf(u.Owner),
			StorageClass: storageClassOrStandard(u.StorageClass), Initiated: xmlTime(u.Initiated.Time()),
			ChecksumAlgorithm: u.ChecksumAlgorithm, ChecksumType: u.ChecksumType,
		})
		lastKey, lastID = u.Key, u.UploadID
	}
	if err := l.Err(); err != nil {
		return err
	}
	if res.IsTruncated {
		res.NextKeyMarker, res.NextUploadIDMarker = s3Encode(lastKey, enc), lastID
	}
	return writeXML(w, http.StatusOK, res)
}
