package berth_test

import (
	"go/build"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// TestImportsStandardLibraryOnly keeps the domain free of dependencies: every
// package the root package imports, in any of its non-test files whatever their
// build constraints, is part of the standard library.
func TestImportsStandardLibraryOnly(t *testing.T) {
	dir, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	pkg, err := build.Default.Import(".", dir, 0)
	if err != nil {
		t.Fatalf("load the root package: %v", err)
	}
	// Files excluded by build constraints still count: they build elsewhere.
	files := slices.Concat(pkg.GoFiles, pkg.CgoFiles, pkg.IgnoredGoFiles)
	if len(files) == 0 {
		t.Fatal("the root package has no Go files")
	}
	imports := map[string][]string{} // import path → files importing it
	fset := token.NewFileSet()
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, name), nil, parser.ImportsOnly)
		if err != nil {
			t.Fatalf("parse %s: %v", name, err)
		}
		for _, spec := range f.Imports {
			path, err := strconv.Unquote(spec.Path.Value)
			if err != nil {
				t.Fatalf("%s: import %s: %v", name, spec.Path.Value, err)
			}
			imports[path] = append(imports[path], name)
		}
	}
	// The list go/build computed must agree with the files read above.
	for _, path := range pkg.Imports {
		if _, ok := imports[path]; !ok {
			t.Errorf("go/build lists import %q that no parsed file holds", path)
		}
	}
	for path, in := range imports {
		first, _, _ := strings.Cut(path, "/")
		switch {
		case path == "C":
			t.Errorf("%v use cgo; the root package is pure Go", in)
		case strings.Contains(first, "."):
			t.Errorf("%v import %q, which is not in the standard library; the domain must stay free of dependencies (move the code to an adapter under internal/)", in, path)
		default:
			// No dot is necessary, not sufficient: a module may be named
			// without one. The standard library lives in GOROOT.
			p, err := build.Default.Import(path, dir, build.FindOnly)
			if err != nil {
				t.Errorf("%v import %q, which cannot be found: %v", in, path, err)
			} else if !p.Goroot {
				t.Errorf("%v import %q from %s, outside GOROOT", in, path, p.Dir)
			}
		}
	}
}
