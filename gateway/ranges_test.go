// ranges_test.go pins the Range and conditional-request rules to S3's
// behaviour with tables, and fuzzes the parsers: whatever the header, the
// answer is whole object, a range inside the object, or InvalidRange.
package gateway

import (
	"net/http"
	"testing"
	"time"
)

func TestParseRange(t *testing.T) {
	const size = 1000
	cases := []struct {
		h             string
		start, length int64
		whole, bad    bool
	}{
		{h: "", whole: true},
		{h: "bytes=0-0", start: 0, length: 1},
		{h: "bytes=0-999", start: 0, length: 1000},
		{h: "bytes=0-5000", start: 0, length: 1000},
		{h: "bytes=10-", start: 10, length: 990},
		{h: "bytes=-10", start: 990, length: 10},
		{h: "bytes=-5000", start: 0, length: 1000},
		{h: "bytes=999-", start: 999, length: 1},
		{h: "bytes=1000-", bad: true},
		{h: "bytes=1000-2000", bad: true},
		{h: "bytes=-0", bad: true},
		{h: "bytes=abc", whole: true},
		{h: "bytes=5-1", whole: true},
		{h: "items=0-5", whole: true},
		{h: "bytes=0-1,5-6", whole: true},
		{h: "bytes=+1-2", whole: true},
		{h: "bytes=99999999999999999999-", whole: true},
	}
	for _, c := range cases {
		r, err := parseRange(c.h, size)
		switch {
		case c.bad:
			if err != ErrInvalidRange {
				t.Errorf("%q: got %v, %v; want InvalidRange", c.h, r, err)
			}
		case c.whole:
			if r != nil || err != nil {
				t.Errorf("%q: got %+v, %v; want whole object", c.h, r, err)
			}
		default:
			if err != nil || r == nil || r.start != c.start || r.length != c.length {
				t.Errorf("%q: got %+v, %v; want %d+%d", c.h, r, err, c.start, c.length)
			}
		}
	}
	if r, err := parseRange("bytes=0-", 0); err != ErrInvalidRange {
		t.Errorf("range on empty object = %v, %v; want InvalidRange", r, err)
	}
	if r, err := parseRange("bytes=-1", 0); r != nil || err != nil {
		t.Errorf("suffix range on empty object = %v, %v; want whole (empty) object", r, err)
	}
}

func FuzzParseRange(f *testing.F) {
	for _, s := range []string{"bytes=0-1", "bytes=-5", "bytes=3-", "bytes=a-b", "bytes=0-1,2-3"} {
		f.Add(s, int64(100))
	}
	f.Fuzz(func(t *testing.T, h string, size int64) {
		if size < 0 {
			size = -size
			if size < 0 {
				return
			}
		}
		r, err := parseRange(h, size)
		if err != nil {
			if err != ErrInvalidRange {
				t.Fatalf("unexpected error %v", err)
			}
			return
		}
		if r != nil && (r.start < 0 || r.length <= 0 || r.start+r.length > size) {
			t.Fatalf("range %+v outside object of %d bytes", r, size)
		}
	})
}

func TestConditions(t *testing.T) {
	lm := time.Date(2024, 5, 1, 12, 0, 0, 500e6, time.UTC)
	before := lm.Add(-time.Hour).Format(http.TimeFormat)
	after := lm.Add(time.Hour).Format(http.TimeFormat)
	same := lm.Format(http.TimeFormat)
	cases := []struct {
		hdr  []string
		want error
	}{
		{nil, nil},
		{[]string{"If-Match", `"abc"`}, nil},
		{[]string{"If-Match", `"zzz", "abc"`}, nil},
		{[]string{"If-Match", `*`}, nil},
		{[]string{"If-Match", `"zzz"`}, ErrPreconditionFailed},
		{[]string{"If-None-Match", `"abc"`}, ErrNotModified},
		{[]string{"If-None-Match", `W/"abc"`}, ErrNotModified},
		{[]string{"If-None-Match", `"zzz"`}, nil},
		{[]string{"If-Modified-Since", before}, nil},
		{[]string{"If-Modified-Since", same}, ErrNotModified},
		{[]string{"If-Modified-Since", after}, ErrNotModified},
		{[]string{"If-Unmodified-Since", before}, ErrPreconditionFailed},
		{[]string{"If-Unmodified-Since", same}, nil},
		{[]string{"If-Modified-Since", "not a date"}, nil},
		// S3: If-Match true wins over a failing If-Unmodified-Since.
		{[]string{"If-Match", `"abc"`, "If-Unmodified-Since", before}, nil},
		// S3: If-None-Match (false: the ETag matches) with If-Modified-Since true is 304.
		{[]string{"If-None-Match", `"abc"`, "If-Modified-Since", before}, ErrNotModified},
		// If-None-Match differs: If-Modified-Since is ignored.
		{[]string{"If-None-Match", `"zzz"`, "If-Modified-Since", after}, nil},
		{[]string{"If-Match", `"zzz"`, "If-None-Match", `"abc"`}, ErrPreconditionFailed},
	}
	for _, c := range cases {
		h := http.Header{}
		for i := 0; i < len(c.hdr); i += 2 {
			h.Set(c.hdr[i], c.hdr[i+1])
		}
		err := checkConditions(h, "abc", lm)
		if got, ok := err.(*APIError); (err == nil) != (c.want == nil) || (ok && got.Code != c.want.(*APIError).Code) {
			t.Errorf("%v: got %v; want %v", c.hdr, err, c.want)
		}
	}
}

func FuzzParseXML(f *testing.F) {
	f.Add([]byte(`<Delete><Quiet>true</Quiet><Object><Key>a</Key></Object></Delete>`))
	f.Add([]byte(`<CreateBucketConfiguration><LocationConstraint>us-east-1</LocationConstraint></CreateBucketConfiguration>`))
	f.Add([]byte(`<VersioningConfiguration><Status>Enabled</Status></VersioningConfiguration>`))
	f.Add([]byte(`<Tagging><TagSet><Tag><Key>k</Key><Value>v</Value></Tag></TagSet></Tagging>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		var d deleteRequest
		var c createBucketConfiguration
		var v versioningConfiguration
		var tg tagging
		for _, dst := range []any{&d, &c, &v, &tg} {
			if err := parseXML(b, dst); err != nil && err != ErrMalformedXML {
				t.Fatalf("parseXML error %v; want nil or MalformedXML", err)
			}
		}
	})
}
