// minio_list_test.go: listing a bucket of ~2,450 awkward keys with minio-go.
//
// Goal: ListObjects V1 and V2 return exactly the keys and CommonPrefixes S3
// would, page after page, for keys with spaces, '+', '%', '#', '?', '&',
// non-ASCII text ("ü/日本/€"), deep paths, a key with a trailing '/', and
// for prefixes that end inside a path segment.
//
// Method: upload the keys (body = key) with 8 workers, then for a set of
// prefixes list with and without the '/' delimiter, with small pages
// (MaxKeys 97 and 250) so pagination (continuation-token for V2, marker and
// NextMarker for V1) is exercised, and compare the multiset of results
// with a model computed here from the key list. The model (listModel) is
// shared with the aws-sdk tests.
package integration

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/minio/minio-go/v7"
)

// oddKeys returns the key set of the listing tests, sorted.
func oddKeys() []string {
	var keys []string
	add := func(format string, n int) {
		for i := 0; i < n; i++ {
			keys = append(keys, fmt.Sprintf(format, i))
		}
	}
	add("flat-%04d", 700)
	for d := 0; d < 25; d++ {
		add(fmt.Sprintf("dir%02d/file-%%03d", d), 30)
		add(fmt.Sprintf("dir%02d/sub/x-%%02d", d), 8)
	}
	add("ü/日本/€-%03d", 100)
	add("ü/日本/deep/€€ %03d", 40)
	add("ü/top-%02d", 40)
	add("ü-sibling-%02d", 10)
	add("with space/file %03d.txt", 100)
	add("with space/ lead and trail %d ", 10)
	add("plus+sign/a+b+%03d", 100)
	add("pct%%/100%%-%03d", 100)
	add("pct%%25/encoded-looking-%02d", 20)
	add("hash#/q?mark-%03d", 100)
	add("amp&/x=1&y=%02d", 30)
	add("a/b/c/d/e/f-%03d", 100)
	add("a/b/side-%02d", 20)
	add("tab\tand\"quote'<xml>-%02d", 10)
	keys = append(keys,
		"folder/", "folder/inner.txt", "folder/sub/", "folder/sub/leaf",
		"trailing-slash-only/",
		"~tilde", "!bang", "(paren)", "*star", "semi;colon", "comma,sep", "colon:yes", "at@sign", "dollar$", "equals=1",
		"caret^", "brace{}", "bracket[]", "pipe|", "backtick`", "z-last", "ZZ-upper", "数字/1", "emoji-😀/x",
	)
	slices.Sort(keys)
	return slices.Compact(keys)
}

// listEntry is one result of a listing: a key ("K:") or a common prefix
// ("P:").
func keyEntry(k string) string    { return "K:" + k }
func prefixEntry(p string) string { return "P:" + p }

// listModel computes what S3 lists for prefix and delimiter over the sorted
// keys, in S3's order (keys and prefixes merged, sorted by UTF-8 bytes),
// starting after startAfter.
func listModel(keys []string, prefix, delimiter, startAfter string) []string {
	keys = slices.Clone(keys)
	slices.Sort(keys)
	var out []string
	seen := map[string]bool{}
	for _, k := range keys {
		if !strings.HasPrefix(k, prefix) || k <= startAfter {
			continue
		}
		if delimiter != "" {
			if i := strings.Index(k[len(prefix):], delimiter); i >= 0 {
				p := k[:len(prefix)+i+len(delimiter)]
				if !seen[p] {
					seen[p] = true
					out = append(out, prefixEntry(p))
				}
				continue
			}
		}
		out = append(out, keyEntry(k))
	}
	return out
}

// listPrefixes are the prefixes every listing test lists.
var listPrefixes = []string{
	"", "dir05/", "dir1", "ü/", "ü/日本/", "ü", "with space/", "plus+sign/", "pct%/", "pct%25/",
	"hash#/", "amp&/", "a/b/", "a/b/c/d/e/", "folder/", "folder/sub/", "nothing-here/", "tab\t",
}

func TestMinioListing(t *testing.T) {
	t.Parallel()
	srv := startServer(t, ServerOptions{LogLevel: "info"})
	mc := minioClient(t, srv)
	ctx := testCtx(t, 3*time.Minute)
	b := bucketName(t)
	if err := mc.MakeBucket(ctx, b, minio.MakeBucketOptions{}); err != nil {
		t.Fatal(err)
	}
	keys := oddKeys()
	start := time.Now()
	work := make(chan string)
	errs := make(chan error, len(keys))
	var wg sync.WaitGroup
	for w := 0; w < 8; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for k := range work {
				if _, err := mc.PutObject(ctx, b, k, strings.NewReader(k), int64(len(k)), minio.PutObjectOptions{}); err != nil {
					errs <- fmt.Errorf("put %q: %w", k, err)
				}
			}
		}()
	}
	for _, k := range keys {
		work <- k
	}
	close(work)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	t.Logf("uploaded %d keys in %v", len(keys), time.Since(start).Round(time.Millisecond))

	// A spot check that the odd keys are stored under their exact names.
	for _, k := range []string{"hash#/q?mark-007", "pct%/100%-042", "ü/日本/€-001", "folder/", "with space/ lead and trail 3 ", "tab\tand\"quote'<xml>-01"} {
		if got := minioGet(t, mc, b, k, minio.GetObjectOptions{}); string(got) != k {
			t.Errorf("GET %q = %q", k, got)
		}
	}

	for _, v1 := range []bool{false, true} {
		api := "V2"
		if v1 {
			api = "V1"
		}
		t.Run(api, func(t *testing.T) {
			t.Parallel()
			for _, prefix := range listPrefixes {
				for _, recursive := range []bool{true, false} {
					delim := "/"
					if recursive {
						delim = ""
					}
					maxKeys := 97
					if prefix == "" {
						maxKeys = 250
					}
					want := listModel(keys, prefix, delim, "")
					slices.Sort(want)
					got := minioListEntries(t, mc, b, minio.ListObjectsOptions{Prefix: prefix, Recursive: recursive, MaxKeys: maxKeys, UseV1: v1})
					slices.Sort(got)
					compareListing(t, fmt.Sprintf("%s prefix %q delimiter %q max-keys %d", api, prefix, delim, maxKeys), want, got)
				}
			}
			// start-after (V2) / marker (V1), without a delimiter.
			for _, after := range []string{"dir05/file-015", "pct%/100%-050", "ü/", "zzzz"} {
				want := listModel(keys, "", "", after)
				got := minioListEntries(t, mc, b, minio.ListObjectsOptions{Recursive: true, MaxKeys: 300, UseV1: v1, StartAfter: after})
				slices.Sort(got)
				compareListing(t, fmt.Sprintf("%s start-after %q", api, after), want, got)
			}
		})
	}
}

// minioListEntries lists with minio-go and returns model entries.
func minioListEntries(t *testing.T, mc *minio.Client, bucket string, o minio.ListObjectsOptions) []string {
	t.Helper()
	var out []string
	for oi := range mc.ListObjects(testCtx(t, time.Minute), bucket, o) {
		if oi.Err != nil {
			t.Errorf("ListObjects %+v: %v", o, oi.Err)
			return out
		}
		if oi.ETag == "" && oi.LastModified.IsZero() {
			out = append(out, prefixEntry(oi.Key))
		} else {
			out = append(out, keyEntry(oi.Key))
		}
	}
	return out
}

// compareListing reports the difference between two listings.
func compareListing(t *testing.T, what string, want, got []string) {
	t.Helper()
	if slices.Equal(want, got) {
		return
	}
	wantSet := map[string]int{}
	for _, e := range want {
		wantSet[e]++
	}
	var missing, extra []string
	for _, e := range got {
		if wantSet[e] > 0 {
			wantSet[e]--
		} else {
			extra = append(extra, e)
		}
	}
	for _, e := range want {
		if wantSet[e] > 0 {
			wantSet[e]--
			missing = append(missing, e)
		}
	}
	short := func(s []string) string {
		if len(s) > 5 {
			return fmt.Sprintf("%q ... (%d in all)", s[:5], len(s))
		}
		return fmt.Sprintf("%q", s)
	}
	if len(missing) == 0 && len(extra) == 0 {
		t.Errorf("%s: same entries in another order; got %s", what, short(got))
		return
	}
	t.Errorf("%s: %d entries, want %d; missing %s; unexpected %s", what, len(got), len(want), short(missing), short(extra))
}
