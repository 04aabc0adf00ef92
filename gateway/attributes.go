package gateway

import (
	"encoding/xml"
	"net/http"
	"strings"
)

type objectAttributes struct {
	XMLName      xml.Name           `xml:"GetObjectAttributesResponse"`
	NS           string             `xml:"xmlns,attr"`
	ETag         string             `xml:"ETag,omitempty"`
	Checksum     *attributeChecksum `xml:"Checksum,omitempty"`
	ObjectParts  *attributeParts    `xml:"ObjectParts,omitempty"`
	StorageClass string             `xml:"StorageClass,omitempty"`
	ObjectSize   *int64             `xml:"ObjectSize,omitempty"`
}

type attributeChecksum struct {
	ChecksumCRC32     string `xml:"ChecksumCRC32,omitempty"`
	ChecksumCRC32C    string `xml:"ChecksumCRC32C,omitempty"`
	ChecksumCRC64NVME string `xml:"ChecksumCRC64NVME,omitempty"`
	ChecksumSHA1      string `xml:"ChecksumSHA1,omitempty"`
	ChecksumSHA256    string `xml:"ChecksumSHA256,omitempty"`
	ChecksumType      string `xml:"ChecksumType,omitempty"`
}

type attributeParts struct {
	TotalPartsCount      int       `xml:"PartsCount"`
	PartNumberMarker     int       `xml:"PartNumberMarker"`
	NextPartNumberMarker int       `xml:"NextPartNumberMarker"`
	MaxParts             int       `xml:"MaxParts"`
	IsTruncated          bool      `xml:"IsTruncated"`
	Parts                []partXML `xml:"Part"`
}

var objectAttributeNames = map[string]bool{"ETag": true, "Checksum": true, "ObjectParts": true, "StorageClass": true, "ObjectSize": true}

func (s *Server) getObjectAttributes(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	ctx := r.Context()
	want := map[string]bool{}
	for _, h := range r.Header.Values("X-Amz-Object-Attributes") {
		for _, a := range strings.Split(h, ",") {
			a = strings.TrimSpace(a)
			if !objectAttributeNames[a] {
				return ErrInvalidArgument.msg("Invalid attribute name specified.").with("ArgumentName", "x-amz-object-attributes", "ArgumentValue", a)
			}
			want[a] = true
		}
	}
	if len(want) == 0 {
		return ErrInvalidArgument.msg("The x-amz-object-attributes header specifying the attributes to be retrieved is either missing or empty").with("ArgumentName", "x-amz-object-attributes")
	}
	maxParts, err := parseBoundedInt(r.Header.Get("X-Amz-Max-Parts"), "x-amz-max-parts", 1000, 1000)
	if err != nil {
		return err
	}
	marker, err := parseBoundedInt(r.Header.Get("X-Amz-Part-Number-Marker"), "x-amz-part-number-marker", 0, 10000)
	if err != nil {
		return err
	}
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	v, err := s.objectVersion(ctx, b, key, r.URL.Query().Get("versionId"))
	h := w.Header()
	if v != nil && v.DeleteMarker {
		h.Set("x-amz-delete-marker", "true")
	}
	if err != nil {
		return err
	}
	// S3 gives an SSE-C object's attributes only to a request with its
	// key.
	ck, err := s.customerKeyOf(r, false)
	if err != nil {
		return err
	}
	if _, err := s.readKey(v, ck, false); err != nil {
		return err
	}
	if versioningState(b) != "" {
		h.Set("x-amz-version-id", v.ID)
	}
	h.Set("Last-Modified", lastModified(v).Format(http.TimeFormat))
	out := objectAttributes{NS: s3NS}
	if want["ETag"] {
		out.ETag = v.ETag
	}
	if want["StorageClass"] {
		out.StorageClass = storageClassOrStandard(v.StorageClass)
	}
	if want["ObjectSize"] {
		size := v.Size
		out.ObjectSize = &size
	}
	if want["Checksum"] && v.Checksum.Value != "" {
		var p partXML
		setPartChecksum(&p, v.Checksum.Algorithm, v.Checksum.Value)
		out.Checksum = &attributeChecksum{
			ChecksumCRC32: p.ChecksumCRC32, ChecksumCRC32C: p.ChecksumCRC32C, ChecksumCRC64NVME: p.ChecksumCRC64NVME,
			ChecksumSHA1: p.ChecksumSHA1, ChecksumSHA256: p.ChecksumSHA256, ChecksumType: v.Checksum.Type,
		}
	}
	if want["ObjectParts"] && v.PartCount > 0 {
		op := &attributeParts{TotalPartsCount: int(v.PartCount), PartNumberMarker: marker, MaxParts: maxParts}
		parts := v.Parts
		if len(parts) == 0 {
			rows, _, err := s.cfg.Index.ListVersionParts(ctx, v.WriteID, uint32(marker), maxParts+1)
			if err != nil {
				return err
			}
			for _, p := range rows {
				parts = append(parts, *p)
			}
		}
		for _, p := range parts {
			if int(p.Number) <= marker {
				continue
			}
			if len(op.Parts) == maxParts {
				op.IsTruncated = true
				break
			}
			px := partXML{PartNumber: int(p.Number), Size: p.Size}
			setPartChecksum(&px, p.Checksum.Algorithm, p.Checksum.Value)
			op.Parts = append(op.Parts, px)
			op.NextPartNumberMarker = int(p.Number)
		}
		out.ObjectParts = op
	}
	return writeXML(w, http.StatusOK, out)
}
