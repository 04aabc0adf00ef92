// deps_test.go parses the imports of every package of the module and
// fails when one imports a ringstore package it must not: the layering in
// docs/ARCHITECTURE.md as an ordinary test.
package deps

import (
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const module = "github.com/ringstore/ringstore/"

// allowed lists, for each package directory, the ringstore packages its
// non-test files may import.
var allowed = map[string][]string{
	"ring":             {"internal/lograte"},
	"internal/lograte": {},
	"auth":             {},
	"internal/rpc":     {"internal/workers"},
	"internal/workers": {},
	"index":            {"ring", "internal/rpc", "internal/workers"},
	"blobs":            {"ring", "internal/rpc"},
	"internal/gc":      {"index", "blobs"},
	"internal/sse":     {},
	"internal/bench":   {"auth", "gateway"}, // it sizes "small objects" by the inline threshold
	"gateway":          {"auth", "index", "blobs", "internal/sse"},
}

func TestImportsPointOneWay(t *testing.T) {
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	for dir, ok := range allowed {
		entries, err := os.ReadDir(filepath.Join(root, dir))
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range entries {
			name := e.Name()
			if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(token.NewFileSet(), filepath.Join(root, dir, name), nil, parser.ImportsOnly)
			if err != nil {
				t.Fatal(err)
			}
			for _, imp := range f.Imports {
				path, _ := strconv.Unquote(imp.Path.Value)
				rel, ours := strings.CutPrefix(path, module)
				if !ours {
					continue
				}
				permitted := false
				for _, a := range ok {
					if rel == a {
						permitted = true
					}
				}
				if !permitted {
					t.Errorf("%s/%s imports %s, which %s must not import", dir, name, rel, dir)
				}
			}
		}
	}
}
