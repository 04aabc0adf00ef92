// versioning_test.go checks S3 versioning semantics through the gateway:
// version ids on PUT, delete markers, GET/DELETE by versionId, null
// versions under Suspended, and ListObjectVersions pagination against the
// full listing, for every page size.
package gateway

import (
	"encoding/xml"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"testing"
)

type versionsPage struct {
	IsTruncated         bool
	NextKeyMarker       string
	NextVersionIdMarker string
	Version             []struct {
		Key, VersionId string
		IsLatest       bool
	}
	DeleteMarker []struct {
		Key, VersionId string
		IsLatest       bool
	}
	CommonPrefixes []struct{ Prefix string }
}

func TestVersioningLifecycle(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/ver", nil)
	ts.must(200, "PUT", "/ver/k", []byte("unversioned"))
	ts.must(200, "PUT", "/ver?versioning", []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`))
	if w := ts.must(200, "GET", "/ver?versioning", nil); !strings.Contains(w.Body.String(), "<Status>Enabled</Status>") {
		t.Fatalf("GetBucketVersioning = %s", w.Body)
	}
	v1 := ts.must(200, "PUT", "/ver/k", []byte("one")).Header().Get("x-amz-version-id")
	v2 := ts.must(200, "PUT", "/ver/k", []byte("two")).Header().Get("x-amz-version-id")
	if v1 == "" || v2 == "" || v1 == v2 {
		t.Fatalf("version ids %q %q", v1, v2)
	}
	if got := ts.must(200, "GET", "/ver/k", nil).Body.String(); got != "two" {
		t.Fatalf("GET latest = %q", got)
	}
	if got := ts.must(200, "GET", "/ver/k?versionId="+v1, nil).Body.String(); got != "one" {
		t.Fatalf("GET v1 = %q", got)
	}
	if got := ts.must(200, "GET", "/ver/k?versionId=null", nil).Body.String(); got != "unversioned" {
		t.Fatalf("GET null version = %q", got)
	}
	w := ts.must(204, "DELETE", "/ver/k", nil)
	dm := w.Header().Get("x-amz-version-id")
	if w.Header().Get("x-amz-delete-marker") != "true" || dm == "" {
		t.Fatalf("DELETE in versioned bucket: %v", w.Header())
	}
	w = ts.do("GET", "/ver/k", nil)
	if w.Code != 404 || w.Header().Get("x-amz-delete-marker") != "true" {
		t.Fatalf("GET after delete marker = %d %v", w.Code, w.Header())
	}
	if w := ts.do("GET", "/ver/k?versionId="+dm, nil); w.Code != 405 {
		t.Fatalf("GET of a delete marker by id = %d; want 405", w.Code)
	}
	if w := ts.do("GET", "/ver/k?versionId=00000000000000000000000000000000", nil); errCode(w) != "NoSuchVersion" {
		t.Fatalf("GET of unknown version = %s", w.Body)
	}
	if w := ts.do("GET", "/ver/k?versionId=bogus", nil); w.Code != 400 {
		t.Fatalf("GET with malformed version id = %d; want 400", w.Code)
	}
	// Removing the delete marker brings v2 back.
	ts.must(204, "DELETE", "/ver/k?versionId="+dm, nil)
	if got := ts.must(200, "GET", "/ver/k", nil).Body.String(); got != "two" {
		t.Fatalf("GET after removing the delete marker = %q", got)
	}
	// Suspended: PUT replaces the null version, versions stay.
	ts.must(200, "PUT", "/ver?versioning", []byte(`<VersioningConfiguration><Status>Suspended</Status></VersioningConfiguration>`))
	ts.must(200, "PUT", "/ver/k", []byte("suspended"))
	if got := ts.must(200, "GET", "/ver/k?versionId=null", nil).Body.String(); got != "suspended" {
		t.Fatalf("null version under Suspended = %q", got)
	}
	if got := ts.must(200, "GET", "/ver/k?versionId="+v1, nil).Body.String(); got != "one" {
		t.Fatalf("v1 under Suspended = %q", got)
	}
	page := listVersions(t, ts, "/ver?versions")
	var ids []string
	for _, v := range page.Version {
		ids = append(ids, v.VersionId)
	}
	if !slices.Equal(ids, []string{"null", v2, v1}) || !page.Version[0].IsLatest {
		t.Fatalf("versions = %v (latest %v); want [null %s %s]", ids, page.Version[0].IsLatest, v2, v1)
	}
}

func listVersions(t *testing.T, ts *testServer, target string) versionsPage {
	t.Helper()
	var p versionsPage
	if err := xml.Unmarshal(ts.must(200, "GET", target, nil).Body.Bytes(), &p); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestListObjectVersionsPagination(t *testing.T) {
	ts := newTestServer(t)
	ts.must(200, "PUT", "/pvb", nil)
	ts.must(200, "PUT", "/pvb?versioning", []byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`))
	for i := 0; i < 6; i++ {
		for j := 0; j <= i%3; j++ {
			ts.must(200, "PUT", fmt.Sprintf("/pvb/key%d", i), []byte("x"))
		}
		if i%2 == 0 {
			ts.must(204, "DELETE", fmt.Sprintf("/pvb/key%d", i), nil)
		}
	}
	ts.must(200, "PUT", "/pvb/dir/a", []byte("x"))
	ts.must(200, "PUT", "/pvb/dir/b", []byte("x"))
	full := flattenVersions(listVersions(t, ts, "/pvb?versions&delimiter=/"))
	for max := 1; max <= len(full)+1; max++ {
		var got []string
		km, vm := "", ""
		for round := 0; ; round++ {
			q := url.Values{"delimiter": {"/"}, "max-keys": {fmt.Sprint(max)}}
			if km != "" {
				q.Set("key-marker", km)
			}
			if vm != "" {
				q.Set("version-id-marker", vm)
			}
			p := listVersions(t, ts, "/pvb?versions&"+q.Encode())
			got = append(got, flattenVersions(p)...)
			if !p.IsTruncated {
				break
			}
			km, vm = p.NextKeyMarker, p.NextVersionIdMarker
			if round > 100 {
				t.Fatal("pagination does not end")
			}
		}
		if !slices.Equal(got, full) {
			t.Fatalf("max-keys %d:\n got %v\nwant %v", max, got, full)
		}
	}
}

// flattenVersions lists a page's entries in key order, each key's entries
// newest first (as S3 sends them, versions and markers interleaved).
func flattenVersions(p versionsPage) []string {
	type e struct{ key, id string }
	var all []e
	for _, v := range p.Version {
		all = append(all, e{v.Key, "V:" + v.VersionId})
	}
	for _, d := range p.DeleteMarker {
		all = append(all, e{d.Key, "D:" + d.VersionId})
	}
	for _, c := range p.CommonPrefixes {
		all = append(all, e{c.Prefix, "CP"})
	}
	// Version ids are time-ordered hex, so newest first is descending id.
	slices.SortStableFunc(all, func(a, b e) int {
		if a.key != b.key {
			if a.key < b.key {
				return -1
			}
			return 1
		}
		if a.id[2:] > b.id[2:] {
			return -1
		}
		return 1
	})
	var out []string
	for _, x := range all {
		out = append(out, x.key+"/"+x.id)
	}
	return out
}
