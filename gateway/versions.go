package gateway

import (
	"encoding/hex"
	"encoding/xml"
	"net/http"

	"github.com/ringstore/ringstore/index"
)

// ListObjectVersions: keys in order, each key's versions and delete
// markers newest first, one sequence paginated by (key-marker,
// version-id-marker); max-keys counts versions, delete markers and common
// prefixes alike.

type listVersionsResult struct {
	XMLName             xml.Name          `xml:"ListVersionsResult"`
	NS                  string            `xml:"xmlns,attr"`
	Name                string            `xml:"Name"`
	Prefix              string            `xml:"Prefix"`
	KeyMarker           string            `xml:"KeyMarker"`
	VersionIDMarker     string            `xml:"VersionIdMarker"`
	NextKeyMarker       string            `xml:"NextKeyMarker,omitempty"`
	NextVersionIDMarker string            `xml:"NextVersionIdMarker,omitempty"`
	MaxKeys             int               `xml:"MaxKeys"`
	Delimiter           string            `xml:"Delimiter,omitempty"`
	EncodingType        string            `xml:"EncodingType,omitempty"`
	IsTruncated         bool              `xml:"IsTruncated"`
	Entries             []versionEntryXML // Version and DeleteMarker elements, in order
	CommonPrefixes      []commonPrefixXML `xml:"CommonPrefixes"`
}

type versionEntryXML struct {
	XMLName           xml.Name
	Key               string `xml:"Key"`
	VersionID         string `xml:"VersionId"`
	IsLatest          bool   `xml:"IsLatest"`
	LastModified      string `xml:"LastModified"`
	ETag              string `xml:"ETag,omitempty"`
	ChecksumAlgorithm string `xml:"ChecksumAlgorithm,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
	Size              *int64 `xml:"Size,omitempty"`
	StorageClass      string `xml:"StorageClass,omitempty"`
	Owner             owner  `xml:"Owner"`
}

// versionTime decodes the timestamp our version ids start with.
func versionTime(id string) (index.Timestamp, bool) {
	if id == "null" || len(id) != 32 {
		return 0, false
	}
	b, err := hex.DecodeString(id[:16])
	if err != nil {
		return 0, false
	}
	var ts uint64
	for _, c := range b {
		ts = ts<<8 | uint64(c)
	}
	return index.Timestamp(ts), true
}

func (s *Server) listObjectVersions(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	ctx := r.Context()
	q := r.URL.Query()
	b, err := s.bucket(ctx, bucket)
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
	prefix, delim := q.Get("prefix"), q.Get("delimiter")
	keyMarker, idMarker := q.Get("key-marker"), q.Get("version-id-marker")
	if idMarker != "" && keyMarker == "" {
		return ErrInvalidArgument.msg("A version-id marker cannot be specified without a key marker.").with("ArgumentName", "version-id-marker", "ArgumentValue", idMarker)
	}
	if idMarker != "" && !validVersionID(idMarker) {
		return ErrInvalidArgument.msg("Invalid version id specified").with("ArgumentName", "version-id-marker", "ArgumentValue", idMarker)
	}
	res := listVersionsResult{
		NS: s3NS, Name: bucket, Prefix: s3Encode(prefix, enc), KeyMarker: s3Encode(keyMarker, enc),
		VersionIDMarker: idMarker, MaxKeys: maxKeys, Delimiter: s3Encode(delim, enc),
	}
	if enc {
		res.EncodingType = "url"
	}
	start := ""
	if keyMarker != "" {
		if cp := commonPrefix(keyMarker, prefix, delim); cp != "" && cp == keyMarker {
			start, _ = index.PrefixEnd(cp)
		} else if idMarker != "" {
			start = keyMarker // resume inside this key's versions
		} else {
			start = keyMarker + "\x00"
		}
	}
	count := 0
	lastKey, lastID := "", ""
	l := s.cfg.Index.ListObjects(ctx, b, start, prefix, maxKeys+1)
walk:
	for maxKeys > 0 {
		e, ok := l.Next()
		if !ok {
			break
		}
		vs := e.Object.Live()
		if len(vs) == 0 {
			continue
		}
		if cp := commonPrefix(e.Key, prefix, delim); cp != "" {
			if count == maxKeys {
				res.IsTruncated = true
				break
			}
			count++
			res.CommonPrefixes = append(res.CommonPrefixes, commonPrefixXML{Prefix: s3Encode(cp, enc)})
			lastKey, lastID = cp, ""
			end, ok := index.PrefixEnd(cp)
			if !ok {
				break
			}
			l.Seek(end)
			continue
		}
		if e.Key == keyMarker && idMarker != "" {
			vs = versionsAfter(vs, idMarker)
		}
		for i, v := range vs {
			if count == maxKeys {
				res.IsTruncated = true
				break walk
			}
			count++
			entry := versionEntryXML{
				Key: s3Encode(e.Key, enc), VersionID: v.ID, IsLatest: i == 0 && v == e.Object.Latest(),
				LastModified: xmlTime(lastModified(v)), Owner: ownerOf(v.Owner),
			}
			if v.DeleteMarker {
				entry.XMLName = xml.Name{Local: "DeleteMarker"}
			} else {
				size := v.Size
				entry.XMLName = xml.Name{Local: "Version"}
				entry.ETag, entry.Size, entry.StorageClass = `"`+v.ETag+`"`, &size, storageClassOrStandard(v.StorageClass)
				entry.ChecksumAlgorithm, entry.ChecksumType = v.Checksum.Algorithm, v.Checksum.Type
			}
			res.Entries = append(res.Entries, entry)
			lastKey, lastID = e.Key, v.ID
		}
	}
	if err := l.Err(); err != nil {
		return err
	}
	if res.IsTruncated {
		res.NextKeyMarker, res.NextVersionIDMarker = s3Encode(lastKey, enc), lastID
	}
	return writeXML(w, http.StatusOK, res)
}

// versionsAfter returns the versions that follow marker in the newest-first
// order vs is in. If the marker version no longer exists, versions older
// than the time its id encodes follow it.
func versionsAfter(vs []*index.Version, marker string) []*index.Version {
	for i, v := range vs {
		if v.ID == marker {
			return vs[i+1:]
		}
	}
	ts, ok := versionTime(marker)
	if !ok {
		return nil
	}
	for i, v := range vs {
		if v.Timestamp < ts {
			return vs[i:]
		}
	}
	return nil
}
