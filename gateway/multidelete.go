package gateway

import (
	"encoding/xml"
	"errors"
	"net/http"
)

type deleteRequest struct {
	XMLName xml.Name `xml:"Delete"`
	Quiet   bool     `xml:"Quiet"`
	Objects []struct {
		Key       string `xml:"Key"`
		VersionID string `xml:"VersionId"`
		ETag      string `xml:"ETag"`
		// Directory buckets' conditions, refused (refuseDeleteConditions).
		LastModifiedTime string `xml:"LastModifiedTime"`
		Size             string `xml:"Size"`
	} `xml:"Object"`
}

type deleteResult struct {
	XMLName xml.Name       `xml:"DeleteResult"`
	NS      string         `xml:"xmlns,attr"`
	Deleted []deletedXML   `xml:"Deleted"`
	Errors  []deleteErrXML `xml:"Error"`
}

type deletedXML struct {
	Key                   string `xml:"Key"`
	VersionID             string `xml:"VersionId,omitempty"`
	DeleteMarker          bool   `xml:"DeleteMarker,omitempty"`
	DeleteMarkerVersionID string `xml:"DeleteMarkerVersionId,omitempty"`
}

type deleteErrXML struct {
	Key       string `xml:"Key"`
	VersionID string `xml:"VersionId,omitempty"`
	Code      string `xml:"Code"`
	Message   string `xml:"Message"`
}

// maxDeleteKeys is S3's limit on one DeleteObjects request.
const maxDeleteKeys = 1000

func (s *Server) deleteObjects(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	ctx := r.Context()
	if _, ok := r.Header["Content-Md5"]; !ok {
		if spec, err := parseChecksum(r.Header); err != nil {
			return err
		} else if spec == nil {
			return ErrInvalidRequest.msg("Missing required header for this request: Content-MD5")
		}
	}
	var req deleteRequest
	if err := readXML(r, &req, 2<<20, false); err != nil {
		return err
	}
	if len(req.Objects) == 0 || len(req.Objects) > maxDeleteKeys {
		return ErrMalformedXML
	}
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	res := deleteResult{NS: s3NS}
	me := reqCtx(r).accessKey
	for _, o := range req.Objects {
		fail := func(err error) {
			var ae *APIError
			if !errors.As(err, &ae) {
				s.log.Error("delete object", "request_id", reqCtx(r).id, "key", o.Key, "err", err)
				ae = ErrInternal
			}
			res.Errors = append(res.Errors, deleteErrXML{Key: o.Key, VersionID: o.VersionID, Code: ae.Code, Message: ae.Message})
		}
		if err := checkKey(o.Key); err != nil {
			fail(err)
			continue
		}
		if o.VersionID != "" && !validVersionID(o.VersionID) {
			fail(ErrNoSuchVersion)
			continue
		}
		if o.LastModifiedTime != "" || o.Size != "" {
			fail(errDeleteCond)
			continue
		}
		rm, err := s.removeObject(ctx, b, o.Key, o.VersionID, o.ETag, me)
		if err != nil {
			fail(err)
			continue
		}
		if req.Quiet {
			continue
		}
		d := deletedXML{Key: o.Key, VersionID: o.VersionID, DeleteMarker: rm.deleteMarker}
		if o.VersionID == "" && rm.deleteMarker {
			d.DeleteMarkerVersionID = rm.versionID
		}
		res.Deleted = append(res.Deleted, d)
	}
	return writeXML(w, http.StatusOK, res)
}
