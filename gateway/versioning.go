package gateway

import (
	"encoding/xml"
	"net/http"

	"github.com/ringstore/ringstore/index"
)

type versioningConfiguration struct {
	XMLName   xml.Name `xml:"VersioningConfiguration"`
	NS        string   `xml:"xmlns,attr,omitempty"`
	Status    string   `xml:"Status,omitempty"`
	MfaDelete string   `xml:"MfaDelete,omitempty"`
}

func (s *Server) getBucketVersioning(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	b, err := s.bucket(r.Context(), bucket)
	if err != nil {
		return err
	}
	return writeXML(w, http.StatusOK, versioningConfiguration{NS: s3NS, Status: versioningState(b)})
}

func (s *Server) putBucketVersioning(w http.ResponseWriter, r *http.Request, bucket, _ string) error {
	var conf versioningConfiguration
	if err := readXML(r, &conf, 64<<10, false); err != nil {
		return err
	}
	if conf.Status != "Enabled" && conf.Status != "Suspended" {
		return ErrMalformedXML
	}
	if conf.MfaDelete == "Enabled" {
		return ErrNotImplemented.msg("MFA delete is not implemented.")
	}
	if conf.MfaDelete != "" && conf.MfaDelete != "Disabled" {
		return ErrMalformedXML
	}
	if err := s.setBucketConfig(r, bucket, "versioning", []byte(conf.Status)); err != nil {
		return err
	}
	w.WriteHeader(http.StatusOK)
	return nil
}

// setBucketConfig writes one bucket configuration register; nil value
// deletes it.
func (s *Server) setBucketConfig(r *http.Request, bucket, name string, value []byte) error {
	ix := s.cfg.Index
	defer s.buckets.forget(bucket)
	_, err := ix.UpdateBucket(r.Context(), bucket, func(cur *index.Bucket) (*index.Bucket, error) {
		if !cur.Live() {
			return nil, ErrNoSuchBucket.with("BucketName", bucket)
		}
		next := *cur
		next.Configs = []index.BucketConfig{{Name: name, Timestamp: ix.Clock().Now(), Value: value}}
		return &next, nil
	})
	if err == nil {
		s.bucketChanged(r.Context(), bucket)
	}
	return err
}
