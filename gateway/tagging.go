package gateway

import (
	"encoding/xml"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/ringstore/ringstore/index"
)

// S3's object tag limits.
const (
	maxObjectTags  = 10
	maxTagKeyRunes = 128
	maxTagValRunes = 256
)

var errInvalidTag = apiErr("InvalidTag", 400, "The TagSet does not conform to the schema")

type tagging struct {
	XMLName xml.Name `xml:"Tagging"`
	NS      string   `xml:"xmlns,attr,omitempty"`
	TagSet  []tagXML `xml:"TagSet>Tag"`
}

type tagXML struct {
	Key   string `xml:"Key"`
	Value string `xml:"Value"`
}

func validTagText(s string) bool {
	for _, r := range s {
		if unicode.IsLetter(r) || unicode.IsDigit(r) || unicode.IsSpace(r) || strings.ContainsRune("+-=._:/@", r) {
			continue
		}
		return false
	}
	return true
}

// checkTags validates a tag set and returns it sorted by key.
func checkTags(tags []index.KV) ([]index.KV, error) {
	if len(tags) > maxObjectTags {
		return nil, ErrBadRequestTags.msg("Object tags cannot be greater than 10")
	}
	seen := map[string]bool{}
	for _, t := range tags {
		switch {
		case t.Name == "" || utf8.RuneCountInString(t.Name) > maxTagKeyRunes:
			return nil, errInvalidTag.msg("The TagKey you have provided is too long, max 128")
		case utf8.RuneCountInString(t.Value) > maxTagValRunes:
			return nil, errInvalidTag.msg("The TagValue you have provided is too long, max 256")
		case strings.HasPrefix(t.Name, "aws:"):
			return nil, errInvalidTag.msg("Your TagKey cannot be prefixed with aws:")
		case !validTagText(t.Name) || !validTagText(t.Value):
			return nil, errInvalidTag.msg("The TagKey or TagValue you have provided is invalid")
		case seen[t.Name]:
			return nil, errInvalidTag.msg("Cannot provide multiple Tags with the same key")
		}
		seen[t.Name] = true
	}
	out := slices.Clone(tags)
	slices.SortFunc(out, func(a, b index.KV) int { return strings.Compare(a.Name, b.Name) })
	return out, nil
}

// ErrBadRequestTags is S3's answer to more than 10 tags.
var ErrBadRequestTags = apiErr("BadRequest", 400, "Object tags cannot be greater than 10")

// parseTagHeader parses x-amz-tagging: a URL query string of tags.
func parseTagHeader(v string) ([]index.KV, error) {
	if v == "" {
		return nil, nil
	}
	q, err := url.ParseQuery(v)
	if err != nil {
		return nil, ErrInvalidArgument.msg("The header 'x-amz-tagging' shall be encoded as UTF-8 then URLEncoded URL query parameters without tag name duplicates.")
	}
	var tags []index.KV
	for k, vs := range q {
		if len(vs) > 1 {
			return nil, errInvalidTag.msg("Cannot provide multiple Tags with the same key")
		}
		tags = append(tags, index.KV{Name: k, Value: vs[0]})
	}
	return checkTags(tags)
}

func (s *Server) getObjectTagging(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	ctx := r.Context()
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	v, err := s.objectVersion(ctx, b, key, r.URL.Query().Get("versionId"))
	if err != nil {
		return err
	}
	if versioningState(b) != "" {
		w.Header().Set("x-amz-version-id", v.ID)
	}
	out := tagging{NS: s3NS, TagSet: []tagXML{}}
	for _, t := range v.Tags {
		out.TagSet = append(out.TagSet, tagXML{Key: t.Name, Value: t.Value})
	}
	return writeXML(w, http.StatusOK, out)
}

func (s *Server) putObjectTagging(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	var in tagging
	if err := readXML(r, &in, 64<<10, false); err != nil {
		return err
	}
	tags := make([]index.KV, 0, len(in.TagSet))
	for _, t := range in.TagSet {
		tags = append(tags, index.KV{Name: t.Key, Value: t.Value})
	}
	tags, err := checkTags(tags)
	if err != nil {
		return err
	}
	return s.setTags(w, r, bucket, key, tags, http.StatusOK)
}

func (s *Server) deleteObjectTagging(w http.ResponseWriter, r *http.Request, bucket, key string) error {
	return s.setTags(w, r, bucket, key, nil, http.StatusNoContent)
}

// setTags replaces the tag register of one version.
func (s *Server) setTags(w http.ResponseWriter, r *http.Request, bucket, key string, tags []index.KV, status int) error {
	ctx := r.Context()
	b, err := s.bucket(ctx, bucket)
	if err != nil {
		return err
	}
	versionID := r.URL.Query().Get("versionId")
	if versionID != "" && !validVersionID(versionID) {
		return ErrInvalidArgument.msg("Invalid version id specified").with("ArgumentName", "versionId", "ArgumentValue", versionID)
	}
	ix := s.cfg.Index
	var id string
	err = ix.UpdateObject(ctx, b, key, func(cur *index.Object) ([]index.Version, error) {
		if cur == nil {
			return nil, ErrNoSuchKey.with("Key", key)
		}
		var v *index.Version
		if versionID == "" {
			v = cur.Latest()
			if v == nil || v.DeleteMarker {
				return nil, ErrNoSuchKey.with("Key", key)
			}
		} else if v = cur.Find(versionID); v == nil {
			return nil, ErrNoSuchVersion.with("Key", key, "VersionId", versionID)
		}
		if v.DeleteMarker {
			return nil, ErrMethodNotAllowed.with("Method", r.Method, "ResourceType", "DeleteMarker")
		}
		next := *v
		next.Tags, next.TagsTS = tags, ix.Clock().Now()
		id = v.ID
		return []index.Version{next}, nil
	})
	if err != nil {
		return err
	}
	if versioningState(b) != "" {
		w.Header().Set("x-amz-version-id", id)
	}
	w.WriteHeader(status)
	return nil
}
