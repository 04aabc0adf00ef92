package gateway

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/xml"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/ringstore/ringstore/index"
)

const s3NS = "http://s3.amazonaws.com/doc/2006-03-01/"

// iso8601 is the timestamp format of S3's XML documents.
const iso8601 = "2006-01-02T15:04:05.000Z"

func xmlTime(t time.Time) string { return t.UTC().Format(iso8601) }

// checkBucketName enforces S3's rules for general purpose bucket names.
func checkBucketName(name string) error {
	bad := ErrInvalidBucketName.with("BucketName", name)
	if len(name) < 3 || len(name) > 63 {
		return bad
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= '0' && c <= '9':
		case c == '-' || c == '.':
			if i == 0 || i == len(name)-1 {
				return bad
			}
			if c == '.' && (name[i-1] == '.' || name[i-1] == '-' || name[i+1] == '-') {
				return bad
			}
		default:
			return bad
		}
	}
	if net.ParseIP(name) != nil {
		return bad
	}
	for _, p := range []string{"xn--", "sthree-", "amzn-s3-demo-"} {
		if strings.HasPrefix(name, p) {
			return bad
		}
	}
	for _, sfx := range []string{"-s3alias", "--ol-s3", ".mrap", "--x-s3", "--table-s3"} {
		if strings.HasSuffix(name, sfx) {
			return bad
		}
	}
	return nil
}

// ownerID is the canonical user id S3 reports for an access key.
func ownerID(accessKey string) string {
	sum := sha256.Sum256([]byte("ringstore-owner:" + accessKey))
	return hex.EncodeToString(sum[:])
}

type owner struct {
	ID          string `xml:"ID"`
	DisplayName string `xml:"DisplayName"`
}

func ownerOf(accessKey string) owner { return owner{ID: ownerID(accessKey), DisplayName: accessKey} }

// bucket returns the live bucket name, or NoSuchBucket.
func (s *Server) bucket(ctx context.Context, name string) (*index.Bucket, error) {
	if b := s.buckets.get(name); b != nil {
		return b, nil
	}
	gen := s.buckets.generation()
	b, err := s.cfg.Index.GetBucket(ctx, name)
	if err != nil {
		return nil, err
	}
	if !b.Live() {
		return nil, ErrNoSuchBucket.with("BucketName", name)
	}
	// A record with a delete fence is not kept: once the delete is
	// resolved it is stale, and a node that missed the fence's lifting
	// would use it.
	s.noteFence(b)
	if _, fenced := activeFence(b, s.cfg.Index.Clock().Now().Time()); !fenced {
		s.buckets.put(b, gen)
	}
	return b, nil
}

type listAllMyBucketsResult struct {
	XMLName           xml.Name      `xml:"ListAllMyBucketsResult"`
	NS                string        `xml:"xmlns,attr"`
	Owner             owner         `xml:"Owner"`
	Buckets           []bucketEntry `xml:"Buckets>Bucket"`
	ContinuationToken string        `xml:"ContinuationToken,omitempty"`
	Prefix            string        `xml:"Prefix,omitempty"`
}

type bucketEntry struct {
	Name         string `xml:"Name"`
	CreationDate string `xml:"CreationDate"`
	BucketRegion string `xml:"BucketRegion,omitempty"`
}

func (s *Server) listBuckets(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	maxBuckets := 10000
	if v := q.Get("max-buckets"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 10000 {
			return ErrInvalidArgument.msg("Argument max-buckets must be an integer between 1 and 10000").with("ArgumentName", "max-buckets", "ArgumentValue", v)
		}
		maxBuckets = n
	}
	prefix := q.Get("prefix")
	after := ""
	if tok := q.Get("continuation-token"); tok != "" {
		var err error
		if after, err = decodeToken(tok); err != nil {
			return ErrInvalidContinuationToken
		}
	}
	all, err := s.cfg.Index.ListBuckets(r.Context())
	if err != nil {
		return err
	}
	res := listAllMyBucketsResult{NS: s3NS, Owner: ownerOf(reqCtx(r).accessKey), Prefix: prefix}
	res.Buckets = []bucketEntry{}
	for _, b := range all {
		if !strings.HasPrefix(b.Name, prefix) || b.Name <= after {
			continue
		}
		if len(res.Buckets) == maxBuckets {
			res.ContinuationToken = encodeToken(res.Buckets[len(res.Buckets)-1].Name)
			break
		}
		res.Buckets = append(res.Buckets, bucketEntry{Name: b.Name, CreationDate: xmlTime(b.Created.Time()), BucketRegion: b.Region})
	}
	return writeXML(w, http.StatusOK, res)
}

type createBucketConfiguration struct {
	XMLName            xml.Name `xml:"CreateBucketConfiguration"`
	LocationConstraint string   `xml:"LocationConstraint"`
}

func (s *Server) createBucket(w http.ResponseWriter, r *http.Request, name, _ string) error {
	if err := refuseCreateBucketHeaders(r.Header); err != nil {
		return err
	}
	var conf createBucketConfiguration
	if err := readXML(r, &conf, 64<<10, true); err != nil {
		return err
	}
	if lc := conf.LocationConstraint; lc != "" && lc != s.cfg.Region {
		return ErrIllegalLocationConstraint.msg("The %s location constraint is incompatible for the region specific endpoint this request was sent to.", lc)
	}
	me := reqCtx(r).accessKey
	ix := s.cfg.Index
	defer s.buckets.forget(name)
	_, err := ix.UpdateBucket(r.Context(), name, func(cur *index.Bucket) (*index.Bucket, error) {
		if cur.Live() {
			if cur.Owner == me {
				return nil, ErrBucketAlreadyOwnedByYou.with("BucketName", name)
			}
			return nil, ErrBucketAlreadyExists.with("BucketName", name)
		}
		return &index.Bucket{
			Name: name, ID: index.NewBucketID(), Created: ix.Clock().Now(),
			Owner: me, Region: s.cfg.Region, Shards: s.cfg.Shards,
		}, nil
	})
	if err != nil {
		return err
	}
	// A node may still hold the incarnation this one replaced.
	s.bucketChanged(r.Context(), name)
	w.Header().Set("Location", "/"+name)
	w.WriteHeader(http.StatusOK)
	return nil
}

func (s *Server) headBucket(w http.ResponseWriter, r *http.Request, name, _ string) error {
	b, err := s.bucket(r.Context(), name)
	if err != nil {
		return err
	}
	w.Header().Set("x-amz-bucket-region", b.Region)
	w.WriteHeader(http.StatusOK)
	return nil
}

type locationConstraint struct {
	XMLName xml.Name `xml:"LocationConstraint"`
	NS      string   `xml:"xmlns,attr"`
	Value   string   `xml:",chardata"`
}

func (s *Server) getBucketLocation(w http.ResponseWriter, r *http.Request, name, _ string) error {
	b, err := s.bucket(r.Context(), name)
	if err != nil {
		return err
	}
	loc := b.Region
	if loc == "us-east-1" {
		// S3 reports the original region as an empty constraint.
		loc = ""
	}
	return writeXML(w, http.StatusOK, locationConstraint{NS: s3NS, Value: loc})
}

// writeXML answers with an XML document.
func writeXML(w http.ResponseWriter, status int, v any) error {
	body, err := xml.Marshal(v)
	if err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/xml")
	h.Set("Content-Length", strconv.Itoa(len(xml.Header)+len(body)))
	w.WriteHeader(status)
	_, _ = io.WriteString(w, xml.Header)
	_, _ = w.Write(body)
	return nil
}
