package gateway

import (
	"net/http"
	"net/url"
	"regexp"
	"testing"
)

// TestRouteShapesMatchTemplates checks the path-shape matchers against
// the path templates they replace ("/", "/{bucket}", "/{bucket}/",
// prefix "/{bucket}/", in that order), over every path of up to seven
// characters from an alphabet with slashes and escapes.
func TestRouteShapesMatchTemplates(t *testing.T) {
	templates := []struct {
		re    *regexp.Regexp
		route string
	}{
		{regexp.MustCompile(`^/$`), "service"},
		{regexp.MustCompile(`^/[^/]+$`), "bucket"},
		{regexp.MustCompile(`^/[^/]+/$`), "bucket"},
		{regexp.MustCompile(`^/[^/]+/`), "object"},
	}
	shapes := func(r *http.Request) string {
		switch {
		case rootPath(r, nil):
			return "service"
		case bucketPath(r, nil):
			return "bucket"
		case objectPath(r, nil):
			return "object"
		}
		return "none"
	}
	alphabet := []string{"/", "a", "%2F", "."}
	var walk func(p string, depth int)
	checked := 0
	walk = func(p string, depth int) {
		u := &url.URL{Path: p}
		if raw, err := url.PathUnescape(p); err == nil {
			u = &url.URL{Path: raw, RawPath: p}
		}
		r := &http.Request{URL: u}
		esc := u.EscapedPath()
		want := "none"
		for _, tpl := range templates {
			if tpl.re.MatchString(esc) {
				want = tpl.route
				break
			}
		}
		if got := shapes(r); got != want {
			t.Fatalf("path %q (escaped %q): shape routes to %s, template to %s", p, esc, got, want)
		}
		checked++
		if depth == 0 {
			return
		}
		for _, c := range alphabet {
			walk(p+c, depth-1)
		}
	}
	walk("", 7)
	if checked < 20000 {
		t.Fatalf("checked only %d paths", checked)
	}
}
