package main

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFunc writes a Go file to dir whose function name has body lines
// between its first and its last line.
func writeFunc(t *testing.T, dir, file, decl string, body int) {
	t.Helper()
	src := "package p\n\n" + decl + " {\n" + strings.Repeat("\t_ = 1\n", body) + "}\n"
	if err := os.WriteFile(filepath.Join(dir, file), []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
}

// TestCheckFlagsLongFunctions (issue 12 item 4): a function of 150 lines or
// more is reported with its name and length, one of 149 is not, test files
// are not measured, and a long function literal is reported too.
func TestCheckFlagsLongFunctions(t *testing.T) {
	dir := t.TempDir()
	sub := filepath.Join(dir, "sub")
	if err := os.Mkdir(sub, 0o755); err != nil {
		t.Fatal(err)
	}
	writeFunc(t, dir, "ok.go", "func short()", 147)            // 149 lines
	writeFunc(t, sub, "long.go", "func (r *T) tooLong()", 148) // 150 lines
	writeFunc(t, dir, "x_test.go", "func TestLong(t *testing.T)", 300)
	writeFunc(t, dir, "lit.go", "var f = func()", 200)
	var out bytes.Buffer
	n, err := check(&out, 150, dir)
	if err != nil {
		t.Fatal(err)
	}
	got := out.String()
	if n != 2 || !strings.Contains(got, "T.tooLong is 150 lines") || !strings.Contains(got, "func literal is 202 lines") ||
		strings.Contains(got, "short") || strings.Contains(got, "TestLong") {
		t.Errorf("check found %d:\n%s", n, got)
	}
	out.Reset()
	if n, err := check(&out, 203, dir); err != nil || n != 0 || out.Len() != 0 {
		t.Errorf("with -max 203: %d %v %q", n, err, out.String())
	}
}
