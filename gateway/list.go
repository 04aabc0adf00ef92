package gateway

import (
	"encoding/base64"
	"encoding/xml"
	"net/http"
	"net/url"
	"strconv"
	"strings"

	"github.com/ringstore/ringstore/index"
)

// Listing follows S3 exactly: keys in UTF-8 binary order; with a
// delimiter, keys sharing the part of the key up to the first delimiter
// after the prefix roll up into one CommonPrefix; max-keys counts keys and
// common prefixes together; IsTruncated is true only when another key or
// prefix would follow.

type listParams struct {
	prefix, delimiter string
	after             string // list keys strictly after this
	maxKeys           int
	urlEncode         bool
}

type listed struct {
	contents  []listEntry
	prefixes  []string
	truncated bool
	last      string // the last key or prefix returned
	lastIsKey bool
}

type listEntry struct {
	key string
	v   *index.Version
}

func parseMaxKeys(q url.Values) (int, error) {
	v, ok := q["max-keys"]
	if !ok {
		return 1000, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || n < 0 {
		return 0, ErrInvalidMaxKeys
	}
	return min(n, 1000), nil
}

func parseEncoding(q url.Values) (bool, error) {
	switch q.Get("encoding-type") {
	case "":
		return false, nil
	case "url":
		return true, nil
	}
	return false, ErrInvalidEncodingType
}

// commonPrefix returns the common prefix key rolls into, or "".
func commonPrefix(key, prefix, delimiter string) string {
	if delimiter == "" || !strings.HasPrefix(key, prefix) {
		return ""
	}
	if i := strings.Index(key[len(prefix):], delimiter); i >= 0 {
		return key[:len(prefix)+i+len(delimiter)]
	}
	return ""
}

// list runs one page of a listing of live object versions.
func (s *Server) list(r *http.Request, b *index.Bucket, p listParams) (*listed, error) {
	out := &listed{}
	start := p.after
	if cp := commonPrefix(start, p.prefix, p.delimiter); cp != "" && cp == start {
		// Resuming after a common prefix: skip everything under it.
		if end, ok := index.PrefixEnd(cp); ok {
			start = end
		}
	} else if start != "" {
		start += "\x00"
	}
	if p.maxKeys == 0 {
		return out, nil
	}
	l := s.cfg.Index.ListObjects(r.Context(), b, start, p.prefix, p.maxKeys+1)
	count := 0
	for {
		e, ok := l.Next()
		if !ok {
			break
		}
		v := e.Object.Latest()
		if v == nil || v.DeleteMarker {
			continue
		}
		cp := commonPrefix(e.Key, p.prefix, p.delimiter)
		if count == p.maxKeys {
			out.truncated = true
			break
		}
		count++
		if cp != "" {
			out.prefixes = append(out.prefixes, cp)
			out.last, out.lastIsKey = cp, false
			end, ok := index.PrefixEnd(cp)
			if !ok {
				break
			}
			l.Seek(end)
			continue
		}
		out.contents = append(out.contents, listEntry{e.Key, v})
		out.last, out.lastIsKey = e.Key, true
	}
	if err := l.Err(); err != nil {
		return nil, err
	}
	return out, nil
}

type listObjectsV2Result struct {
	XMLName               xml.Name          `xml:"ListBucketResult"`
	NS                    string            `xml:"xmlns,attr"`
	Name                  string            `xml:"Name"`
	Prefix                string            `xml:"Prefix"`
	Delimiter             string            `xml:"Delimiter,omitempty"`
	MaxKeys               int               `xml:"MaxKeys"`
	EncodingType          string            `xml:"EncodingType,omitempty"`
	KeyCount              int               `xml:"KeyCount"`
	IsTruncated           bool              `xml:"IsTruncated"`
	ContinuationToken     string            `xml:"ContinuationToken,omitempty"`
	NextContinuationToken string            `xml:"NextContinuationToken,omitempty"`
	StartAfter            string            `xml:"StartAfter,omitempty"`
	Contents              []objectXML       `xml:"Contents"`
	CommonPrefixes        []commonPrefixXML `xml:"CommonPrefixes"`
}

type listObjectsV1Result struct {
	XMLName        xml.Name          `xml:"ListBucketResult"`
	NS             string            `xml:"xmlns,attr"`
	Name           string            `xml:"Name"`
	Prefix         string            `xml:"Prefix"`
	Marker         string            `xml:"Marker"`
	NextMarker     string            `xml:"NextMarker,omitempty"`
	MaxKeys        int               `xml:"MaxKeys"`
	Delimiter      string            `xml:"Delimiter,omitempty"`
	EncodingType   string            `xml:"EncodingType,omitempty"`
	IsTruncated    bool              `xml:"IsTruncated"`
	Contents       []objectXML       `xml:"Contents"`
	CommonPrefixes []commonPrefixXML `xml:"CommonPrefixes"`
}

type objectXML struct {
	Key               string `xml:"Key"`
	LastModified      string `xml:"LastModified"`
	ETag              string `xml:"ETag"`
	ChecksumAlgorithm string `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
	Size              int64  `xml:"Size"`
	Owner             *owner `xml:"Owner,omitempty"`
	StorageClass      string `xml:"StorageClass"`
}

type commonPrefixXML struct {
	Prefix string `xml:"Prefix"`
}

// s3Encode is S3's encoding-type=url: form encoding, space as '+'.
func s3Encode(s string, on bool) string {
	if !on {
		return s
	}
	return url.QueryEscape(s)
}

func encodeToken(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }

func decodeToken(t string) (string, error) {
	b, err := base64.RawURLEncoding.DecodeString(t)
	return string(b), err
}

func (s *Server) listObjects(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	q := r.URL.Query()
	b, err := s.bucket(r.Context(), bucket)
	if err != nil {
		return err
	}
	maxKeys, err := parseMaxKeys(q)
	if err != nil {
		return err
	}
	enc, err := parseEncoding(q)
	if err != nil {
		return err
	}
	p := listParams{prefix: q.Get("prefix"), delimiter: q.Get("delimiter"), maxKeys: maxKeys, urlEncode: enc}
	v2 := q.Get("list-type") == "2"
	if lt := q.Get("list-type"); lt != "" && lt != "2" {
		return ErrInvalidArgument.msg("Invalid list type").with("ArgumentName", "list-type", "ArgumentValue", lt)
	}
	token, hasToken := q["continuation-token"]
	if v2 {
		p.after = q.Get("start-after")
		if hasToken {
			after, err := decodeToken(token[0])
			if err != nil || token[0] == "" {
				return ErrInvalidContinuationToken.with("ArgumentName", "continuation-token")
			}
			p.after = after
		}
	} else {
		p.after = q.Get("marker")
	}
	res, err := s.list(r, b, p)
	if err != nil {
		return err
	}
	fetchOwner := !v2 || q.Get("fetch-owner") == "true"
	contents := make([]objectXML, 0, len(res.contents))
	for _, e := range res.contents {
		o := objectXML{
			Key: s3Encode(e.key, enc), LastModified: xmlTime(lastModified(e.v)), ETag: `"` + e.v.ETag + `"`,
			Size: e.v.Size, StorageClass: storageClassOrStandard(e.v.StorageClass),
		}
		if e.v.Checksum.Algorithm != "" {
			o.ChecksumAlgorithm, o.ChecksumType = e.v.Checksum.Algorithm, e.v.Checksum.Type
		}
		if fetchOwner {
			ow := ownerOf(e.v.Owner)
			o.Owner = &ow
		}
		contents = append(contents, o)
	}
	prefixes := make([]commonPrefixXML, 0, len(res.prefixes))
	for _, cp := range res.prefixes {
		prefixes = append(prefixes, commonPrefixXML{Prefix: s3Encode(cp, enc)})
	}
	encType := ""
	if enc {
		encType = "url"
	}
	if v2 {
		out := listObjectsV2Result{
			NS: s3NS, Name: bucket, Prefix: s3Encode(p.prefix, enc), Delimiter: s3Encode(p.delimiter, enc),
			MaxKeys: maxKeys, EncodingType: encType, KeyCount: len(contents) + len(prefixes),
			IsTruncated: res.truncated, StartAfter: s3Encode(q.Get("start-after"), enc),
			Contents: contents, CommonPrefixes: prefixes,
		}
		if hasToken {
			out.ContinuationToken = token[0]
		}
		if res.truncated {
			out.NextContinuationToken = encodeToken(res.last)
		}
		return writeXML(w, http.StatusOK, out)
	}
	out := listObjectsV1Result{
		NS: s3NS, Name: bucket, Prefix: s3Encode(p.prefix, enc), Marker: s3Encode(p.after, enc),
		MaxKeys: maxKeys, Delimiter: s3Encode(p.delimiter, enc), EncodingType: encType,
		IsTruncated: res.truncated, Contents: contents, CommonPrefixes: prefixes,
	}
	if res.truncated && p.delimiter != "" {
		out.NextMarker = s3Encode(res.last, enc)
	}
	return writeXML(w, http.StatusOK, out)
}

func storageClassOrStandard(sc string) string {
	if sc == "" {
		return "STANDARD"
	}
	return sc
}
