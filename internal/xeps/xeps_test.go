package xeps

import (
	"bytes"
	"encoding/xml"
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var update = flag.Bool("update", false, "rewrite doap.xml from the catalogue")

const root = "../.."

// Every test the catalogue names exists, so that a specification is listed
// only with the tests that prove it (the suite runs them all).
func TestNamedTestsExist(t *testing.T) {
	funcs := map[string]map[string]bool{} // dir -> test names
	for _, s := range Specs() {
		if s.Status != "complete" && s.Status != "partial" {
			t.Errorf("%s: status %q", s.ID, s.Status)
		}
		if s.Status == "partial" && s.Note == "" {
			t.Errorf("%s: a partial implementation needs a note", s.ID)
		}
		if len(s.Tests) == 0 {
			t.Errorf("%s: no test proves it", s.ID)
		}
		for _, name := range s.Tests {
			dir, fn, ok := strings.Cut(name, ".")
			if !ok {
				t.Errorf("%s: test %q is not dir.TestName", s.ID, name)
				continue
			}
			if funcs[dir] == nil {
				funcs[dir] = testFuncs(t, filepath.Join(root, dir))
			}
			if !funcs[dir][fn] {
				t.Errorf("%s: no test %s in %s", s.ID, fn, dir)
			}
		}
	}
}

func testFuncs(t *testing.T, dir string) map[string]bool {
	t.Helper()
	files, err := filepath.Glob(filepath.Join(dir, "*_test.go"))
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]bool{}
	fset := token.NewFileSet()
	for _, f := range files {
		af, err := parser.ParseFile(fset, f, nil, parser.SkipObjectResolution)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range af.Decls {
			if fd, ok := d.(*ast.FuncDecl); ok && fd.Recv == nil && strings.HasPrefix(fd.Name.Name, "Test") {
				out[fd.Name.Name] = true
			}
		}
	}
	return out
}

// doap.xml at the module root is what DOAP generates, and well-formed.
func TestDOAPUpToDate(t *testing.T) {
	var b bytes.Buffer
	if err := DOAP(&b); err != nil {
		t.Fatal(err)
	}
	d := xml.NewDecoder(bytes.NewReader(b.Bytes()))
	for {
		if _, err := d.Token(); err != nil {
			if err.Error() != "EOF" {
				t.Fatalf("DOAP is not well-formed: %v", err)
			}
			break
		}
	}
	path := filepath.Join(root, "doap.xml")
	if *update {
		if err := os.WriteFile(path, b.Bytes(), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	have, err := os.ReadFile(path)
	if err != nil || !bytes.Equal(have, b.Bytes()) {
		t.Fatalf("doap.xml is out of date (%v): run go test ./internal/xeps -update", err)
	}
}
