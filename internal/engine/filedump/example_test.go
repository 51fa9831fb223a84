package filedump_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tapestry-ndmp/tapestry/internal/engine/filedump"
)

// Back up a directory at level 0 into memory and restore it elsewhere.
func Example() {
	src, err := os.MkdirTemp("", "src")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(src)
	if err := os.WriteFile(filepath.Join(src, "hello.txt"), []byte("hello\n"), 0o644); err != nil {
		log.Fatal(err)
	}
	var img bytes.Buffer
	res, err := filedump.Backup(context.Background(), filedump.BackupRequest{Dir: src, Output: &img, Env: filedump.Env{"HIST": "Y"}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("level", res.Level, "inodes", res.Files)

	dst, err := os.MkdirTemp("", "dst")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dst)
	_, err = filedump.Restore(context.Background(), filedump.RestoreRequest{Input: &img, Dest: dst, Env: filedump.Env{"FORCE": "Y"}})
	if err != nil {
		log.Fatal(err)
	}
	b, _ := os.ReadFile(filepath.Join(dst, "hello.txt"))
	fmt.Print(string(b))
	// Output:
	// level 0 inodes 2
	// hello
}
