// Command funclen fails when a function of the Go packages under the given
// directories is too long (issue 12 item 4: no function of internal/engine
// reaches 150 lines, so that the restore and the backup stay readable as
// stages). It parses every non-test .go file below each directory with
// go/ast, measures every function declaration and function literal from its
// first line to its last, and prints each one of -max lines or more with its
// position, name and length.
//
// Usage:
//
//	go run ./scripts/funclen [-max 150] dir...
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// long is a function of the limit or more lines.
type long struct {
	pos   token.Position
	name  string
	lines int
}

func main() {
	limit := flag.Int("max", 150, "the length in lines that a function must stay below")
	flag.Parse()
	if flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: funclen [-max N] dir...")
		os.Exit(2)
	}
	if n, err := check(os.Stdout, *limit, flag.Args()...); err != nil {
		fmt.Fprintln(os.Stderr, "funclen:", err)
		os.Exit(2)
	} else if n > 0 {
		fmt.Fprintf(os.Stderr, "funclen: %d functions of %d lines or more; split them into stages\n", n, *limit)
		os.Exit(1)
	}
}

// check writes to out the functions of limit lines or more in the non-test Go
// files below dirs, longest first, and returns how many there are.
func check(out io.Writer, limit int, dirs ...string) (int, error) {
	fset := token.NewFileSet()
	var found []long
	for _, dir := range dirs {
		err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
			if err != nil || d.IsDir() || !strings.HasSuffix(p, ".go") || strings.HasSuffix(p, "_test.go") {
				return err
			}
			f, err := parser.ParseFile(fset, p, nil, parser.SkipObjectResolution)
			if err != nil {
				return err
			}
			found = append(found, longIn(fset, f, limit)...)
			return nil
		})
		if err != nil {
			return 0, err
		}
	}
	sort.Slice(found, func(i, j int) bool { return found[i].lines > found[j].lines })
	for _, l := range found {
		fmt.Fprintf(out, "%s: %s is %d lines (at most %d)\n", l.pos, l.name, l.lines, limit-1)
	}
	return len(found), nil
}

// longIn returns the functions of f that have limit lines or more.
func longIn(fset *token.FileSet, f *ast.File, limit int) []long {
	var found []long
	ast.Inspect(f, func(n ast.Node) bool {
		var name string
		switch fn := n.(type) {
		case *ast.FuncDecl:
			name = fn.Name.Name
			if fn.Recv != nil && len(fn.Recv.List) == 1 {
				name = recvName(fn.Recv.List[0].Type) + "." + name
			}
		case *ast.FuncLit:
			name = "func literal"
		default:
			return true
		}
		start, end := fset.Position(n.Pos()), fset.Position(n.End())
		if lines := end.Line - start.Line + 1; lines >= limit {
			found = append(found, long{start, name, lines})
		}
		return true
	})
	return found
}

// recvName is the type name of a method's receiver.
func recvName(t ast.Expr) string {
	switch r := t.(type) {
	case *ast.StarExpr:
		return recvName(r.X)
	case *ast.IndexExpr:
		return recvName(r.X)
	case *ast.IndexListExpr:
		return recvName(r.X)
	case *ast.Ident:
		return r.Name
	}
	return "?"
}
