// Goal: verification really checks what comes back. A server that returns
// wrong bytes (one flipped byte, or a truncated body) has every sampled
// GET counted as a verification error, not as a success; with sampling off
// the flipped byte goes unnoticed (only the length is always checked); a
// LIST that breaks order or prefix is an error too.
// Method: a fake S3 handler stores PUT bodies and serves them back with a
// corruption; Run is pointed at it. The list parser is fed crafted pages.
package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeS3 is just enough S3 for a GET run: bucket create/delete, object
// PUT/GET, ListObjectsV2 (one page) and DeleteObjects (which forgets all).
type fakeS3 struct {
	mu      sync.Mutex
	objects map[string][]byte
	corrupt func([]byte) []byte // applied to GET bodies
}

func (f *fakeS3) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	defer f.mu.Unlock()
	parts := strings.SplitN(strings.TrimPrefix(r.URL.Path, "/"), "/", 2)
	switch {
	case len(parts) == 1 && r.Method == http.MethodPut, len(parts) == 1 && r.Method == http.MethodDelete:
		w.WriteHeader(http.StatusOK)
	case len(parts) == 1 && r.Method == http.MethodPost:
		clear(f.objects)
		io.WriteString(w, `<DeleteResult></DeleteResult>`)
	case len(parts) == 1 && r.Method == http.MethodGet:
		var b strings.Builder
		b.WriteString(`<ListBucketResult><IsTruncated>false</IsTruncated>`)
		for _, k := range slices.Sorted(func(yield func(string) bool) {
			for k := range f.objects {
				if !yield(k) {
					return
				}
			}
		}) {
			fmt.Fprintf(&b, "<Contents><Key>%s</Key></Contents>", k)
		}
		b.WriteString(`</ListBucketResult>`)
		io.WriteString(w, b.String())
	case r.Method == http.MethodPut:
		body, _ := io.ReadAll(r.Body)
		f.objects[parts[1]] = body
	case r.Method == http.MethodGet:
		body, ok := f.objects[parts[1]]
		if !ok {
			w.WriteHeader(http.StatusNotFound)
			return
		}
		body = f.corrupt(slices.Clone(body))
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.Write(body)
	default:
		w.WriteHeader(http.StatusNotImplemented)
	}
}

func runAgainstFake(t *testing.T, corrupt func([]byte) []byte, fraction float64) *Result {
	t.Helper()
	f := &fakeS3{objects: map[string][]byte{}, corrupt: corrupt}
	srv := httptest.NewServer(f)
	defer srv.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	res, err := Run(ctx, Config{
		Mode: ModeGet, Endpoints: []string{srv.URL}, AccessKey: "k", SecretKey: "s",
		ObjSize: 100_000, Concurrency: 3, Ops: 30, Objects: 5, VerifyFraction: fraction, Seed: 11,
	})
	if err != nil {
		t.Fatal(err)
	}
	if res.CleanupError != "" {
		t.Fatalf("cleanup: %s", res.CleanupError)
	}
	return res
}

func TestCorruptedReadIsAnError(t *testing.T) {
	flip := func(b []byte) []byte { b[len(b)/2] ^= 0x40; return b }
	res := runAgainstFake(t, flip, 1)
	g, _ := res.Op("GET")
	if g.Ops != 0 || g.Errors != 30 || g.VerifyErrors != 30 || g.Verified != 30 {
		t.Fatalf("flipped byte: ops %d errors %d verify errors %d verified %d; want 0/30/30/30",
			g.Ops, g.Errors, g.VerifyErrors, g.Verified)
	}
	if len(res.ErrorSamples) == 0 || !strings.Contains(res.ErrorSamples[0], "at byte 50000") {
		t.Errorf("error samples %q do not name the corrupt offset", res.ErrorSamples)
	}
	var sb strings.Builder
	_ = res.WriteText(&sb)
	if !strings.Contains(sb.String(), "30 (30 verify)") {
		t.Errorf("report does not show the verification errors:\n%s", sb.String())
	}
}

func TestTruncatedReadIsAnError(t *testing.T) {
	res := runAgainstFake(t, func(b []byte) []byte { return b[:len(b)-1] }, 0)
	if g, _ := res.Op("GET"); g.Errors != 30 || g.VerifyErrors != 30 {
		t.Fatalf("truncated body without sampling: errors %d verify errors %d; want 30/30 (length is always checked)", g.Errors, g.VerifyErrors)
	}
}

func TestUnsampledCorruptionGoesUnseen(t *testing.T) {
	flip := func(b []byte) []byte { b[0] ^= 1; return b }
	res := runAgainstFake(t, flip, 0)
	if g, _ := res.Op("GET"); g.Errors != 0 || g.Verified != 0 || g.Ops != 30 {
		t.Fatalf("verify fraction 0: %+v; want 30 unchecked successes", g)
	}
}

func TestParseListPage(t *testing.T) {
	page := func(keys ...string) []byte {
		var b strings.Builder
		b.WriteString(`<?xml version="1.0"?><ListBucketResult><KeyCount>` + strconv.Itoa(len(keys)) + `</KeyCount>`)
		b.WriteString(`<IsTruncated>true</IsTruncated><NextContinuationToken>a&amp;b</NextContinuationToken>`)
		for _, k := range keys {
			b.WriteString("<Contents><Key>" + k + "</Key><Size>1</Size></Contents>")
		}
		b.WriteString("</ListBucketResult>")
		return []byte(b.String())
	}
	var seen []string
	p, err := parseListPage(page("p/a", "p/b&amp;c", "p/c"), "p/", "", func(k []byte) { seen = append(seen, string(k)) })
	if err != nil || p.Keys != 3 || !p.Truncated || p.NextToken != "a&b" || p.LastKey != "p/c" {
		t.Fatalf("parse: %+v %v", p, err)
	}
	if !slices.Equal(seen, []string{"p/a", "p/b&c", "p/c"}) {
		t.Fatalf("keys %q", seen)
	}
	for name, c := range map[string]struct {
		body  []byte
		after string
	}{
		"out of order":        {page("p/b", "p/a"), ""},
		"duplicate":           {page("p/a", "p/a"), ""},
		"not after last page": {page("p/a"), "p/a"},
		"outside prefix":      {page("p/a", "q/b"), ""},
	} {
		if _, err := parseListPage(c.body, "p/", c.after, nil); !errors.Is(err, ErrVerify) {
			t.Errorf("%s: %v, want ErrVerify", name, err)
		}
	}
	bad := []byte(`<ListBucketResult><KeyCount>2</KeyCount><Contents><Key>p/a</Key></Contents></ListBucketResult>`)
	if _, err := parseListPage(bad, "p/", "", nil); !errors.Is(err, ErrVerify) {
		t.Errorf("KeyCount mismatch: %v, want ErrVerify", err)
	}
	if _, err := parseListPage([]byte(`<Error><Code>X</Code></Error>`), "", "", nil); err == nil {
		t.Error("an error document parsed as a page")
	}
}

func TestParseEndpoints(t *testing.T) {
	got, err := ParseEndpoints([]string{"127.0.0.1:9000,http://a:1", " https://b:2/ "})
	if err != nil || !slices.Equal(got, []string{"http://127.0.0.1:9000", "http://a:1", "https://b:2"}) {
		t.Fatalf("ParseEndpoints = %q, %v", got, err)
	}
	for _, bad := range [][]string{nil, {""}, {"ftp://x"}, {"http://x/base"}} {
		if _, err := ParseEndpoints(bad); err == nil {
			t.Errorf("ParseEndpoints(%q) accepted", bad)
		}
	}
}
