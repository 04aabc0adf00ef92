// list_test.go checks ListObjects V1 and V2 against a naive model: the
// full listing of a random key set (with delimiters, unicode, deleted
// keys) is computed by sorting and rolling up prefixes, and every
// paginated walk through the gateway, with any page size, must return
// exactly that sequence, with KeyCount and IsTruncated as S3 computes them.
package gateway

import (
	"encoding/xml"
	"fmt"
	"math/rand/v2"
	"net/url"
	"slices"
	"sort"
	"strings"
	"testing"
)

type listPage struct {
	IsTruncated           bool
	KeyCount              int
	NextContinuationToken string
	NextMarker            string
	Contents              []struct{ Key string }
	CommonPrefixes        []struct{ Prefix string }
}

// naiveList is the model: the sorted sequence of keys and common prefixes.
func naiveList(keys []string, prefix, delim string) []string {
	var out []string
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) {
			continue
		}
		item := k
		if delim != "" {
			if i := strings.Index(k[len(prefix):], delim); i >= 0 {
				item = "CP:" + k[:len(prefix)+i+len(delim)]
			}
		}
		if len(out) > 0 && out[len(out)-1] == item {
			continue
		}
		out = append(out, item)
	}
	return out
}

func TestListMatchesModel(t *testing.T) {
	ts := newTestServer(t, func(c *Config) { c.Shards = 5 })
	ts.must(200, "PUT", "/lst", nil)
	r := rand.New(rand.NewPCG(42, 42))
	parts := []string{"a", "b", "/", "ü", "日本", " ", "+", "%", "x/y", "//"}
	seen := map[string]bool{}
	var keys []string
	for len(keys) < 400 {
		var sb strings.Builder
		for j := 1 + r.IntN(4); j > 0; j-- {
			sb.WriteString(parts[r.IntN(len(parts))])
		}
		k := sb.String()
		if seen[k] {
			continue
		}
		seen[k] = true
		keys = append(keys, k)
		ts.must(200, "PUT", "/lst/"+escapePath(k), []byte(k))
	}
	// Delete a fifth of them: deleted keys must vanish from listings.
	sort.Strings(keys)
	var live []string
	for i, k := range keys {
		if i%5 == 0 {
			ts.must(204, "DELETE", "/lst/"+escapePath(k), nil)
			continue
		}
		live = append(live, k)
	}
	for trial := 0; trial < 40; trial++ {
		prefix, delim := "", ""
		if r.IntN(2) == 0 {
			prefix = parts[r.IntN(len(parts))]
		}
		if r.IntN(3) != 0 {
			delim = []string{"/", "b", "日本", "//"}[r.IntN(4)]
		}
		want := naiveList(live, prefix, delim)
		maxKeys := 1 + r.IntN(40)
		for _, v2 := range []bool{true, false} {
			got := walkList(t, ts, v2, prefix, delim, maxKeys)
			if !slices.Equal(got, want) {
				t.Fatalf("v2=%v prefix %q delim %q max %d:\n got %q\nwant %q", v2, prefix, delim, maxKeys, got, want)
			}
		}
	}
}

func escapePath(k string) string { return strings.ReplaceAll(url.PathEscape(k), "%2F", "/") }

// walkList pages through a listing, checking each page's bookkeeping.
func walkList(t *testing.T, ts *testServer, v2 bool, prefix, delim string, maxKeys int) []string {
	t.Helper()
	var out []string
	token := ""
	for page := 0; ; page++ {
		q := url.Values{"prefix": {prefix}, "delimiter": {delim}, "max-keys": {fmt.Sprint(maxKeys)}, "encoding-type": {"url"}}
		if v2 {
			q.Set("list-type", "2")
			if token != "" {
				q.Set("continuation-token", token)
			}
		} else if token != "" {
			q.Set("marker", token)
		}
		w := ts.must(200, "GET", "/lst?"+q.Encode(), nil)
		var p listPage
		if err := xml.Unmarshal(w.Body.Bytes(), &p); err != nil {
			t.Fatal(err)
		}
		n := len(p.Contents) + len(p.CommonPrefixes)
		if n > maxKeys {
			t.Fatalf("page of %d items; max-keys %d", n, maxKeys)
		}
		if v2 && p.KeyCount != n {
			t.Fatalf("KeyCount %d; page has %d items", p.KeyCount, n)
		}
		// Items come back as separate Contents and CommonPrefixes lists;
		// merge them in key order as S3 interleaves them logically.
		var items []string
		for _, c := range p.Contents {
			k, _ := url.QueryUnescape(c.Key)
			items = append(items, k)
		}
		for _, c := range p.CommonPrefixes {
			k, _ := url.QueryUnescape(c.Prefix)
			items = append(items, "CP:"+k)
		}
		sort.Slice(items, func(i, j int) bool { return strings.TrimPrefix(items[i], "CP:") < strings.TrimPrefix(items[j], "CP:") })
		out = append(out, items...)
		if !p.IsTruncated {
			return out
		}
		if n == 0 {
			t.Fatal("truncated page with no items")
		}
		if v2 {
			token = p.NextContinuationToken
		} else if delim != "" {
			token, _ = url.QueryUnescape(p.NextMarker)
		} else {
			token = strings.TrimPrefix(items[len(items)-1], "CP:")
		}
		if page > 1000 {
			t.Fatal("listing does not end")
		}
	}
}
