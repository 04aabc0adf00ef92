// multipart_test.go checks multipart uploads end to end through the
// gateway: part replacement, completion checks (order, ETags, minimum
// size), the multipart ETag, composite and full-object checksums, GET by
// partNumber, UploadPartCopy sharing chunks, listing uploads and parts,
// and that abort and completion make the upload disappear.
package gateway

import (
	"bytes"
	"crypto/md5"
	"encoding/base64"
	"encoding/hex"
	"encoding/xml"
	"fmt"
	"hash/crc32"
	"math/rand/v2"
	"net/http/httptest"
	"strings"
	"testing"
)

func randBytes(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

func initiate(t *testing.T, ts *testServer, target string, hdr ...string) string {
	t.Helper()
	var res struct{ UploadId string }
	if err := xml.Unmarshal(ts.must(200, "POST", target+"?uploads", nil, hdr...).Body.Bytes(), &res); err != nil {
		t.Fatal(err)
	}
	return res.UploadId
}

func completeBody(parts map[int]string, order []int) []byte {
	var sb strings.Builder
	sb.WriteString("<CompleteMultipartUpload>")
	for _, n := range order {
		fmt.Fprintf(&sb, "<Part><PartNumber>%d</PartNumber><ETag>%s</ETag></Part>", n, parts[n])
	}
	sb.WriteString("</CompleteMultipartUpload>")
	return []byte(sb.String())
}

func TestMultipartUpload(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/mpb", nil)
	id := initiate(t, ts, "/mpb/obj", "Content-Type", "video/mp4", "x-amz-meta-a", "b")
	p1 := randBytes(1, 5<<20)
	p2 := randBytes(2, 5<<20+123)
	p3 := randBytes(3, 1000)
	etags := map[int]string{}
	put := func(n int, data []byte) {
		w := ts.must(200, "PUT", fmt.Sprintf("/mpb/obj?partNumber=%d&uploadId=%s", n, id), data)
		etags[n] = w.Header().Get("ETag")
	}
	put(1, randBytes(9, 100)) // replaced below
	put(1, p1)
	put(2, p2)
	put(3, p3)
	// Listing parts shows the replacement.
	var lp struct {
		Part []struct {
			PartNumber int
			Size       int64
		}
	}
	xml.Unmarshal(ts.must(200, "GET", "/mpb/obj?uploadId="+id, nil).Body.Bytes(), &lp)
	if len(lp.Part) != 3 || lp.Part[0].Size != 5<<20 {
		t.Fatalf("ListParts = %+v", lp)
	}
	if w := ts.do("POST", "/mpb/obj?uploadId="+id, completeBody(etags, []int{2, 1, 3})); errCode(w) != "InvalidPartOrder" {
		t.Fatalf("out of order completion = %s", w.Body)
	}
	bad := map[int]string{1: etags[1], 2: `"00000000000000000000000000000000"`, 3: etags[3]}
	if w := ts.do("POST", "/mpb/obj?uploadId="+id, completeBody(bad, []int{1, 2, 3})); errCode(w) != "InvalidPart" {
		t.Fatalf("wrong ETag completion = %s", w.Body)
	}
	if w := ts.do("POST", "/mpb/obj?uploadId="+id, completeBody(etags, []int{1, 3, 2})); errCode(w) != "InvalidPartOrder" {
		t.Fatalf("completion = %s", w.Body)
	}
	w := ts.must(200, "POST", "/mpb/obj?uploadId="+id, completeBody(etags, []int{1, 2, 3}))
	var cr struct{ ETag string }
	xml.Unmarshal(w.Body.Bytes(), &cr)
	h := md5.New()
	for _, n := range []int{1, 2, 3} {
		raw, _ := hex.DecodeString(strings.Trim(etags[n], `"`))
		h.Write(raw)
	}
	if want := fmt.Sprintf(`"%x-3"`, h.Sum(nil)); cr.ETag != want {
		t.Fatalf("multipart ETag = %s; want %s", cr.ETag, want)
	}
	all := append(append(append([]byte(nil), p1...), p2...), p3...)
	got := ts.must(200, "GET", "/mpb/obj", nil)
	if !bytes.Equal(got.Body.Bytes(), all) || got.Header().Get("Content-Type") != "video/mp4" || metaHeader(got.Header(), "a") != "b" {
		t.Fatalf("GET completed object: %d bytes, headers %v", got.Body.Len(), got.Header())
	}
	part2 := ts.must(206, "GET", "/mpb/obj?partNumber=2", nil)
	if !bytes.Equal(part2.Body.Bytes(), p2) || part2.Header().Get("x-amz-mp-parts-count") != "3" {
		t.Fatalf("GET partNumber=2: %d bytes, headers %v", part2.Body.Len(), part2.Header())
	}
	rng := ts.must(206, "GET", "/mpb/obj", nil, "Range", fmt.Sprintf("bytes=%d-%d", 5<<20-10, 5<<20+10))
	if !bytes.Equal(rng.Body.Bytes(), all[5<<20-10:5<<20+11]) {
		t.Fatal("range across the part boundary returned wrong bytes")
	}
	if w := ts.do("PUT", "/mpb/obj?partNumber=4&uploadId="+id, []byte("late")); errCode(w) != "NoSuchUpload" {
		t.Fatalf("part after completion = %s", w.Body)
	}
}

func TestMultipartTooSmallAndAbort(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/mpb", nil)
	id := initiate(t, ts, "/mpb/small")
	etags := map[int]string{}
	for n := 1; n <= 2; n++ {
		etags[n] = ts.must(200, "PUT", fmt.Sprintf("/mpb/small?partNumber=%d&uploadId=%s", n, id), []byte("tiny")).Header().Get("ETag")
	}
	if w := ts.do("POST", "/mpb/small?uploadId="+id, completeBody(etags, []int{1, 2})); errCode(w) != "EntityTooSmall" {
		t.Fatalf("completion with a small non-last part = %s", w.Body)
	}
	var lu struct {
		Upload []struct{ Key, UploadId string }
	}
	xml.Unmarshal(ts.must(200, "GET", "/mpb?uploads", nil).Body.Bytes(), &lu)
	if len(lu.Upload) != 1 || lu.Upload[0].UploadId != id {
		t.Fatalf("ListMultipartUploads = %+v", lu)
	}
	ts.must(204, "DELETE", "/mpb/small?uploadId="+id, nil)
	if w := ts.do("DELETE", "/mpb/small?uploadId="+id, nil); errCode(w) != "NoSuchUpload" {
		t.Fatalf("second abort = %s", w.Body)
	}
	lu.Upload = nil
	xml.Unmarshal(ts.must(200, "GET", "/mpb?uploads", nil).Body.Bytes(), &lu)
	if len(lu.Upload) != 0 {
		t.Fatalf("aborted upload still listed: %+v", lu)
	}
	if w := ts.do("HEAD", "/mpb/small", nil); w.Code != 404 {
		t.Fatalf("aborted upload produced an object: %d", w.Code)
	}
}

func TestMultipartChecksums(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/mpb", nil)
	p1, p2 := randBytes(4, 5<<20), randBytes(5, 777)
	crc := func(b []byte) uint32 { return crc32.ChecksumIEEE(b) }
	b64 := func(v uint32) string {
		return base64.StdEncoding.EncodeToString([]byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)})
	}
	for _, typ := range []string{"COMPOSITE", "FULL_OBJECT"} {
		key := "/mpb/ck-" + typ
		id := initiate(t, ts, key, "x-amz-checksum-algorithm", "CRC32", "x-amz-checksum-type", typ)
		etags := map[int]string{}
		for n, data := range [][]byte{p1, p2} {
			w := ts.must(200, "PUT", fmt.Sprintf("%s?partNumber=%d&uploadId=%s", key, n+1, id), data, "x-amz-checksum-crc32", b64(crc(data)))
			etags[n+1] = w.Header().Get("ETag")
		}
		w := ts.must(200, "POST", key+"?uploadId="+id, completeBody(etags, []int{1, 2}))
		var cr struct{ ChecksumCRC32, ChecksumType string }
		xml.Unmarshal(w.Body.Bytes(), &cr)
		var want string
		if typ == "FULL_OBJECT" {
			want = b64(crc(append(append([]byte(nil), p1...), p2...)))
		} else {
			raw := []byte{}
			for _, d := range [][]byte{p1, p2} {
				v := crc(d)
				raw = append(raw, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
			}
			want = b64(crc(raw)) + "-2"
		}
		if cr.ChecksumCRC32 != want || cr.ChecksumType != typ {
			t.Fatalf("%s checksum = %q (%s); want %q", typ, cr.ChecksumCRC32, cr.ChecksumType, want)
		}
		head := ts.must(200, "HEAD", key, nil, "x-amz-checksum-mode", "ENABLED")
		if head.Header().Get("x-amz-checksum-crc32") != want {
			t.Fatalf("%s: HEAD checksum = %q; want %q", typ, head.Header().Get("x-amz-checksum-crc32"), want)
		}
	}
	// A part whose checksum does not match is refused.
	id := initiate(t, ts, "/mpb/bad", "x-amz-checksum-algorithm", "CRC32")
	if w := ts.do("PUT", "/mpb/bad?partNumber=1&uploadId="+id, p2, "x-amz-checksum-crc32", b64(crc(p1))); errCode(w) != "BadDigest" {
		t.Fatalf("part with wrong checksum = %s", w.Body)
	}
}

// blobBytes sums the sizes of the chunk files.
func blobBytes(t *testing.T, ts *testServer) int64 {
	t.Helper()
	var n int64
	if err := ts.blobs.Walk(func(_ blobsID, size int64, _ timeT) bool { n += size; return true }); err != nil {
		t.Fatal(err)
	}
	return n
}

func TestCopiesWriteNoChunkBytes(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/cpb", nil)
	data := randBytes(6, 3<<20+17)
	ts.must(200, "PUT", "/cpb/src", data, "x-amz-meta-x", "1")
	before := blobBytes(t, ts)
	w := ts.must(200, "PUT", "/cpb/dst", nil, "x-amz-copy-source", "/cpb/src")
	if after := blobBytes(t, ts); after != before {
		t.Fatalf("CopyObject wrote %d chunk bytes; want 0", after-before)
	}
	if !strings.Contains(w.Body.String(), "<CopyObjectResult") {
		t.Fatalf("copy result = %s", w.Body)
	}
	got := ts.must(200, "GET", "/cpb/dst", nil)
	if !bytes.Equal(got.Body.Bytes(), data) || metaHeader(got.Header(), "x") != "1" {
		t.Fatal("copy has wrong bytes or lost metadata")
	}
	// REPLACE metadata onto itself.
	ts.must(200, "PUT", "/cpb/dst", nil, "x-amz-copy-source", "/cpb/dst", "x-amz-metadata-directive", "REPLACE", "x-amz-meta-y", "2")
	if h := ts.must(200, "HEAD", "/cpb/dst", nil).Header(); metaHeader(h, "y") != "2" || metaHeader(h, "x") != "" {
		t.Fatalf("metadata after REPLACE copy: %v", h)
	}
	if w := ts.do("PUT", "/cpb/dst", nil, "x-amz-copy-source", "/cpb/dst"); errCode(w) != "InvalidRequest" {
		t.Fatalf("copy onto itself without changes = %s", w.Body)
	}
	if w := ts.do("PUT", "/cpb/x", nil, "x-amz-copy-source", "/cpb/src", "x-amz-copy-source-if-match", `"nope"`); w.Code != 412 {
		t.Fatalf("copy with failing if-match = %d", w.Code)
	}
	// UploadPartCopy of a chunk-aligned range shares every chunk; an
	// unaligned one rewrites only the two cut chunks.
	id := initiate(t, ts, "/cpb/mp")
	before = blobBytes(t, ts)
	chunk := int64(64 << 10) // the test server's chunk size
	ts.must(200, "PUT", "/cpb/mp?partNumber=1&uploadId="+id, nil, "x-amz-copy-source", "/cpb/src", "x-amz-copy-source-range", fmt.Sprintf("bytes=0-%d", 40*chunk-1))
	if after := blobBytes(t, ts); after != before {
		t.Fatalf("aligned UploadPartCopy wrote %d chunk bytes; want 0", after-before)
	}
	w = ts.must(200, "PUT", "/cpb/mp?partNumber=2&uploadId="+id, nil, "x-amz-copy-source", "/cpb/src", "x-amz-copy-source-range", fmt.Sprintf("bytes=%d-%d", 40*chunk+5, int64(len(data))-1))
	if written := blobBytes(t, ts) - before; written > 2*chunk {
		t.Fatalf("unaligned UploadPartCopy wrote %d chunk bytes; want at most %d", written, 2*chunk)
	}
	var cp struct{ ETag string }
	xml.Unmarshal(w.Body.Bytes(), &cp)
	if want := fmt.Sprintf(`"%x"`, md5.Sum(data[40*chunk+5:])); cp.ETag != want {
		t.Fatalf("UploadPartCopy ETag = %s; want %s", cp.ETag, want)
	}
}

// TestConditionalPutOneWinner races conditional creates of one key: exactly
// one succeeds, the rest get 412.
func TestConditionalPutOneWinner(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/cnd", nil)
	const racers = 16
	codes := make(chan int, racers)
	for i := 0; i < racers; i++ {
		go func() {
			w := ts.do("PUT", "/cnd/once", []byte(fmt.Sprint(i)), "If-None-Match", "*")
			codes <- w.Code
		}()
	}
	won := 0
	for i := 0; i < racers; i++ {
		switch c := <-codes; c {
		case 200:
			won++
		case 412:
		default:
			t.Fatalf("conditional PUT answered %d", c)
		}
	}
	if won != 1 {
		t.Fatalf("%d conditional creates succeeded; want exactly 1", won)
	}
	etag := ts.must(200, "HEAD", "/cnd/once", nil).Header().Get("ETag")
	if w := ts.do("PUT", "/cnd/once", []byte("x"), "If-Match", `"wrong"`); w.Code != 412 {
		t.Fatalf("If-Match with wrong ETag = %d", w.Code)
	}
	ts.must(200, "PUT", "/cnd/once", []byte("y"), "If-Match", etag)
	if w := ts.do("DELETE", "/cnd/once", nil, "If-Match", etag); w.Code != 412 {
		t.Fatalf("DELETE If-Match with a stale ETag = %d", w.Code)
	}
}

func TestCORS(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/web", nil)
	preflight := func(origin, method, headers string) *httptest.ResponseRecorder {
		r := httptest.NewRequest("OPTIONS", "http://s3.test/web/file.txt", nil)
		r.Header.Set("Origin", origin)
		r.Header.Set("Access-Control-Request-Method", method)
		if headers != "" {
			r.Header.Set("Access-Control-Request-Headers", headers)
		}
		w := httptest.NewRecorder()
		ts.s.ServeHTTP(w, r)
		return w
	}
	if w := preflight("https://app.example", "PUT", ""); w.Code != 403 {
		t.Fatalf("preflight without CORS config = %d", w.Code)
	}
	conf := []byte(`<CORSConfiguration><CORSRule><AllowedOrigin>https://*.example</AllowedOrigin><AllowedMethod>PUT</AllowedMethod><AllowedMethod>GET</AllowedMethod><AllowedHeader>content-*</AllowedHeader><ExposeHeader>ETag</ExposeHeader><MaxAgeSeconds>600</MaxAgeSeconds></CORSRule></CORSConfiguration>`)
	if w := ts.do("PUT", "/web?cors", conf); errCode(w) != "InvalidRequest" {
		t.Fatalf("PutBucketCors without Content-MD5 = %s", w.Body)
	}
	sum := md5.Sum(conf)
	ts.must(200, "PUT", "/web?cors", conf, "Content-MD5", base64.StdEncoding.EncodeToString(sum[:]))
	w := preflight("https://app.example", "PUT", "Content-Type")
	if w.Code != 200 || w.Header().Get("Access-Control-Allow-Origin") != "https://app.example" || w.Header().Get("Access-Control-Max-Age") != "600" {
		t.Fatalf("allowed preflight = %d %v", w.Code, w.Header())
	}
	if w := preflight("https://evil.test", "PUT", ""); w.Code != 403 {
		t.Fatalf("preflight from a foreign origin = %d", w.Code)
	}
	if w := preflight("https://app.example", "DELETE", ""); w.Code != 403 {
		t.Fatalf("preflight for a disallowed method = %d", w.Code)
	}
	if w := preflight("https://app.example", "PUT", "x-secret"); w.Code != 403 {
		t.Fatalf("preflight with a disallowed header = %d", w.Code)
	}
	get := ts.must(404, "GET", "/web/none", nil, "Origin", "https://app.example")
	if get.Header().Get("Access-Control-Expose-Headers") != "ETag" {
		t.Fatalf("actual request lacks CORS headers: %v", get.Header())
	}
	ts.must(200, "GET", "/web?cors", nil)
	ts.must(204, "DELETE", "/web?cors", nil)
	if w := ts.do("GET", "/web?cors", nil); errCode(w) != "NoSuchCORSConfiguration" {
		t.Fatalf("GetBucketCors after delete = %s", w.Body)
	}
}

func TestTaggingAndAttributes(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/tag", nil)
	ts.must(200, "PUT", "/tag/k", []byte("hello"), "x-amz-tagging", "a=1&b=two%20words")
	if h := ts.must(200, "HEAD", "/tag/k", nil).Header(); h.Get("x-amz-tagging-count") != "2" {
		t.Fatalf("tag count = %q", h.Get("x-amz-tagging-count"))
	}
	body := ts.must(200, "GET", "/tag/k?tagging", nil).Body.String()
	if !strings.Contains(body, "<Key>b</Key><Value>two words</Value>") {
		t.Fatalf("GetObjectTagging = %s", body)
	}
	var tags strings.Builder
	tags.WriteString("<Tagging><TagSet>")
	for i := 0; i < 11; i++ {
		fmt.Fprintf(&tags, "<Tag><Key>k%d</Key><Value>v</Value></Tag>", i)
	}
	tags.WriteString("</TagSet></Tagging>")
	if w := ts.do("PUT", "/tag/k?tagging", []byte(tags.String())); w.Code != 400 {
		t.Fatalf("11 tags = %d %s", w.Code, w.Body)
	}
	ts.must(200, "PUT", "/tag/k?tagging", []byte(`<Tagging><TagSet><Tag><Key>only</Key><Value>one</Value></Tag></TagSet></Tagging>`))
	if body := ts.must(200, "GET", "/tag/k?tagging", nil).Body.String(); strings.Contains(body, "two words") || !strings.Contains(body, "only") {
		t.Fatalf("tags after PutObjectTagging = %s", body)
	}
	ts.must(204, "DELETE", "/tag/k?tagging", nil)
	if body := ts.must(200, "GET", "/tag/k?tagging", nil).Body.String(); strings.Contains(body, "<Tag>") {
		t.Fatalf("tags after delete = %s", body)
	}
	attrs := ts.must(200, "GET", "/tag/k?attributes", nil, "x-amz-object-attributes", "ETag,ObjectSize,StorageClass").Body.String()
	if !strings.Contains(attrs, "<ObjectSize>5</ObjectSize>") || !strings.Contains(attrs, "<StorageClass>STANDARD</StorageClass>") {
		t.Fatalf("GetObjectAttributes = %s", attrs)
	}
}

// TestManyParts completes an upload of 1100 one-byte parts (the minimum
// part size lowered for the test), which takes every long-list path: the
// part list in version-part rows, the chunk list in extent rows, ListParts
// and GetObjectAttributes pagination, and copying such an object.
func TestManyParts(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MinPartBytes = 1 })
	ts.must(200, "PUT", "/many", nil)
	id := initiate(t, ts, "/many/obj")
	const n = 1100
	etags := map[int]string{}
	var order []int
	var all []byte
	for i := 1; i <= n; i++ {
		b := []byte{byte(i)}
		etags[i] = ts.must(200, "PUT", fmt.Sprintf("/many/obj?partNumber=%d&uploadId=%s", i, id), b).Header().Get("ETag")
		order = append(order, i)
		all = append(all, b...)
	}
	var lp struct {
		IsTruncated          bool
		NextPartNumberMarker int
		Part                 []struct{ PartNumber int }
	}
	xml.Unmarshal(ts.must(200, "GET", "/many/obj?uploadId="+id, nil).Body.Bytes(), &lp)
	if len(lp.Part) != 1000 || !lp.IsTruncated || lp.NextPartNumberMarker != 1000 {
		t.Fatalf("ListParts first page: %d parts, truncated %v, next %d", len(lp.Part), lp.IsTruncated, lp.NextPartNumberMarker)
	}
	w := ts.must(200, "POST", "/many/obj?uploadId="+id, completeBody(etags, order))
	if !strings.Contains(w.Body.String(), fmt.Sprintf(`-%d&#34;</ETag>`, n)) {
		t.Fatalf("completion = %s", w.Body)
	}
	if got := ts.must(200, "GET", "/many/obj", nil).Body.Bytes(); !bytes.Equal(got, all) {
		t.Fatalf("object of %d parts reads back %d bytes that differ", n, len(got))
	}
	if got := ts.must(206, "GET", "/many/obj?partNumber=1050", nil).Body.Bytes(); !bytes.Equal(got, []byte{byte(1050 % 256)}) {
		t.Fatalf("part 1050 = %v", got)
	}
	attrs := ts.must(200, "GET", "/many/obj?attributes", nil, "x-amz-object-attributes", "ObjectParts", "x-amz-max-parts", "100", "x-amz-part-number-marker", "1000").Body.String()
	if !strings.Contains(attrs, "<PartsCount>1100</PartsCount>") || !strings.Contains(attrs, "<NextPartNumberMarker>1100</NextPartNumberMarker>") || !strings.Contains(attrs, "<IsTruncated>false</IsTruncated>") {
		t.Fatalf("GetObjectAttributes of the last page = %s", attrs)
	}
	ts.must(200, "PUT", "/many/copy", nil, "x-amz-copy-source", "/many/obj")
	if got := ts.must(206, "GET", "/many/copy?partNumber=1099", nil).Body.Bytes(); !bytes.Equal(got, []byte{byte(1099 % 256)}) {
		t.Fatalf("part 1099 of the copy = %v", got)
	}
}

// TestConditionalComplete: CompleteMultipartUpload honours If-None-Match:
// * (create only) and If-Match like PUT does, and a refused completion
// leaves the upload in place.
func TestConditionalComplete(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.MinPartBytes = 1 })
	ts.must(200, "PUT", "/cmp", nil)
	ts.must(200, "PUT", "/cmp/exists", []byte("old"))
	id := initiate(t, ts, "/cmp/exists")
	etags := map[int]string{1: ts.must(200, "PUT", "/cmp/exists?partNumber=1&uploadId="+id, []byte("new")).Header().Get("ETag")}
	if w := ts.do("POST", "/cmp/exists?uploadId="+id, completeBody(etags, []int{1}), "If-None-Match", "*"); w.Code != 412 {
		t.Fatalf("complete with If-None-Match over an existing key = %d %s", w.Code, w.Body)
	}
	if w := ts.do("POST", "/cmp/exists?uploadId="+id, completeBody(etags, []int{1}), "If-Match", `"0000"`); w.Code != 412 {
		t.Fatalf("complete with a wrong If-Match = %d", w.Code)
	}
	cur := ts.must(200, "HEAD", "/cmp/exists", nil).Header().Get("ETag")
	ts.must(200, "POST", "/cmp/exists?uploadId="+id, completeBody(etags, []int{1}), "If-Match", cur)
	if got := ts.must(200, "GET", "/cmp/exists", nil).Body.String(); got != "new" {
		t.Fatalf("object after conditional completion = %q", got)
	}
}
