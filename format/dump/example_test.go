package dump_test

import (
	"bytes"
	"fmt"
	"io"
	"log"
	"strings"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/dump"
)

// Write an image with one directory and one file, then list it.
func Example() {
	var img bytes.Buffer
	w, err := dump.NewWriter(&img, dump.Options{Date: time.Unix(1795300000, 0), Host: "host1", Filesys: "/vol/vol1"})
	if err != nil {
		log.Fatal(err)
	}
	live := dump.NewBitmap(64)
	live.Set(2)
	live.Set(3)
	if err := w.WriteMaps(live, live); err != nil {
		log.Fatal(err)
	}
	root := &dump.Inode{Ino: 2, Mode: dump.ModeDir | 0o755, Nlink: 2}
	if _, err := w.WriteDir(root, nil, []dump.DirEntry{{Ino: 2, Type: dump.DTDir, Name: "."}, {Ino: 2, Type: dump.DTDir, Name: ".."}, {Ino: 3, Type: dump.DTReg, Name: "hello.txt"}}); err != nil {
		log.Fatal(err)
	}
	file := &dump.Inode{Ino: 3, Mode: dump.ModeReg | 0o644, Nlink: 1, Size: 6}
	pos, err := w.WriteFile(file, []dump.Xattr{{Name: "user.comment", Value: []byte("hi")}}, strings.NewReader("hello\n"))
	if err != nil {
		log.Fatal(err)
	}
	if err := w.Close(); err != nil {
		log.Fatal(err)
	}
	fmt.Println("hello.txt header at byte", pos.Offset)

	r := dump.NewReader(bytes.NewReader(img.Bytes()))
	for {
		h, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		switch h.Kind {
		case dump.KindVolume:
			fmt.Println("level", h.Dump.Level, "of", h.Dump.Filesys, "on", h.Dump.Host)
		case dump.KindInode:
			if h.Inode.IsDir() {
				ents, _ := r.DirEntries()
				fmt.Println("directory", h.Ino, "with", len(ents), "entries")
			} else {
				data, _ := io.ReadAll(r)
				fmt.Printf("file %d: %q\n", h.Ino, data)
			}
		case dump.KindXattr:
			xs, _ := r.Xattrs()
			fmt.Println("xattr", xs[0].Name, string(xs[0].Value))
		}
	}
	// Output:
	// hello.txt header at byte 7168
	// level 0 of /vol/vol1 on host1
	// directory 2 with 3 entries
	// file 3: "hello\n"
	// xattr user.comment hi
}
