package gateway

import (
	"net/http"
	"net/url"
)

// handler answers an authenticated request; bucket and key are decoded.
type handler func(w http.ResponseWriter, r *http.Request, bucket, key string) error

// route names an operation by method and subresource ("" for none).
type route struct{ method, sub string }

// subresources are the query parameters that select an S3 operation.
// Every one S3 defines is listed so that those ringstore does not implement
// answer NotImplemented instead of being mistaken for the plain operation.
var subresources = []string{
	"accelerate", "acl", "analytics", "attributes", "cors", "delete", "encryption",
	"intelligent-tiering", "inventory", "legal-hold", "lifecycle", "location", "logging",
	"metadataConfiguration", "metadataTable", "metrics", "notification", "object-lock",
	"ownershipControls", "policy", "policyStatus", "publicAccessBlock", "renameObject",
	"replication", "requestPayment", "restore", "retention", "select", "session",
	"tagging", "torrent", "uploadId", "uploads", "versioning", "versions", "website",
}

// subresource returns the operation-selecting query parameter of q, or "".
func subresource(q url.Values) string {
	for _, name := range subresources {
		if _, ok := q[name]; ok {
			return name
		}
	}
	return ""
}

func (s *Server) bucketRoutes() map[route]handler {
	return map[route]handler{
		{http.MethodGet, ""}:              s.listObjects,
		{http.MethodGet, "location"}:      s.getBucketLocation,
		{http.MethodPut, ""}:              s.adding(s.createBucket),
		{http.MethodHead, ""}:             s.headBucket,
		{http.MethodDelete, ""}:           s.deleteBucket,
		{http.MethodPost, "delete"}:       s.deleteObjects,
		{http.MethodGet, "versioning"}:    s.getBucketVersioning,
		{http.MethodPut, "versioning"}:    s.putBucketVersioning,
		{http.MethodGet, "versions"}:      s.listObjectVersions,
		{http.MethodGet, "uploads"}:       s.listMultipartUploads,
		{http.MethodGet, "cors"}:          s.getBucketCors,
		{http.MethodPut, "cors"}:          s.putBucketCors,
		{http.MethodDelete, "cors"}:       s.deleteBucketCors,
		{http.MethodGet, "encryption"}:    s.getBucketEncryption,
		{http.MethodPut, "encryption"}:    s.putBucketEncryption,
		{http.MethodDelete, "encryption"}: s.deleteBucketEncryption,
	}
}

func (s *Server) objectRoutes() map[route]handler {
	return map[route]handler{
		{http.MethodGet, ""}:            s.getObject,
		{http.MethodHead, ""}:           s.headObject,
		{http.MethodPut, ""}:            s.adding(s.putObject),
		{http.MethodDelete, ""}:         s.deleteObject,
		{http.MethodGet, "tagging"}:     s.getObjectTagging,
		{http.MethodPut, "tagging"}:     s.putObjectTagging,
		{http.MethodDelete, "tagging"}:  s.deleteObjectTagging,
		{http.MethodPost, "uploads"}:    s.adding(s.createMultipartUpload),
		{http.MethodPut, "uploadId"}:    s.adding(s.uploadPart),
		{http.MethodPost, "uploadId"}:   s.adding(s.completeMultipartUpload),
		{http.MethodDelete, "uploadId"}: s.abortMultipartUpload,
		{http.MethodGet, "uploadId"}:    s.listParts,
		{http.MethodGet, "attributes"}:  s.getObjectAttributes,
	}
}

// adding wraps the handler of a request that adds data (an object, a
// copy, a part, a bucket), which the node refuses while its disk is below
// its free-space floor. Deletes, aborts, configuration and tags go on:
// they free space or take little, and the index takes them down to its
// reserve.
func (s *Server) adding(h handler) handler {
	return func(w http.ResponseWriter, r *http.Request, bucket, key string) error {
		if s.cfg.AdmitWrite != nil && !s.cfg.AdmitWrite(max(r.ContentLength, 0)) {
			return ErrBelowFloor
		}
		return h(w, r, bucket, key)
	}
}

func (s *Server) serviceOp(w http.ResponseWriter, r *http.Request) {
	if err := s.authenticate(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	if r.Method != http.MethodGet {
		s.writeError(w, r, ErrMethodNotAllowed)
		return
	}
	if err := s.listBuckets(w, r); err != nil {
		s.writeError(w, r, err)
	}
}

func (s *Server) bucketOp(w http.ResponseWriter, r *http.Request) {
	s.dispatch(w, r, false, s.bucketTable)
}

func (s *Server) objectOp(w http.ResponseWriter, r *http.Request) {
	s.dispatch(w, r, true, s.objectTable)
}

func (s *Server) dispatch(w http.ResponseWriter, r *http.Request, isObject bool, table map[route]handler) {
	if r.Method == http.MethodOptions {
		s.preflight(w, r)
		return
	}
	if err := s.authenticate(r); err != nil {
		s.writeError(w, r, err)
		return
	}
	bucket, key, err := s.resolve(r, isObject)
	if err == nil && isObject && key == "" {
		// "/bucket/" with virtual hosting off lands here only through the
		// object route with an empty key: it is a bucket request.
		table, isObject = s.bucketTable, false
	}
	if err != nil {
		s.writeError(w, r, err)
		return
	}
	if err := checkBucketName(bucket); err != nil {
		s.writeError(w, r, err)
		return
	}
	if isObject {
		if err := checkKey(key); err != nil {
			s.writeError(w, r, err)
			return
		}
	}
	q := r.URL.Query()
	sub := subresource(q)
	s.addCORS(w, r, bucket)
	h, ok := table[route{r.Method, sub}]
	if !ok {
		if sub != "" {
			s.writeError(w, r, ErrNotImplemented.msg("The %s operation on this resource is not implemented.", sub))
			return
		}
		s.writeError(w, r, ErrMethodNotAllowed)
		return
	}
	if err := h(w, r, bucket, key); err != nil {
		s.writeError(w, r, err)
	}
}
