package smtape_test

import (
	"bytes"
	"fmt"
	"io"
	"time"

	"github.com/tapestry-ndmp/tapestry/format/smtape"
)

// An image with one snapshot holding one file, written and read back.
func Example() {
	var tape bytes.Buffer
	hdr := &smtape.Header{Time: time.Unix(1_800_000_000, 0), Volume: "vol1", SVM: "vs1",
		Snapshots: []smtape.Snapshot{{Name: "snap1", Created: time.Unix(1_800_000_000, 0)}}}
	w, _ := smtape.NewWriter(&tape, hdr)
	for _, rec := range []smtape.Record{
		&smtape.SnapshotStart{Snapshot: hdr.Snapshots[0]},
		&smtape.Inode{Ino: 257, Mode: 0o100644, Nlink: 1, Size: 5},
		&smtape.Dirent{Dir: 256, Name: "hello.txt", Ino: 257},
		&smtape.Extent{ID: 1, Length: 5, Data: []byte("hello")},
		&smtape.Map{Ino: 257, Length: 5, Extent: 1},
		&smtape.SnapshotEnd{Snapshot: hdr.Snapshots[0]},
	} {
		_ = w.WriteRecord(rec)
	}
	_ = w.Close()

	r, err := smtape.NewReader(&tape)
	if err != nil {
		fmt.Println(smtape.Message(err))
		return
	}
	fmt.Println(r.Header().Volume, r.Header().Mode)
	for {
		c, err := r.Next()
		if err == io.EOF {
			break
		}
		rec, _ := smtape.DecodeRecord(c)
		fmt.Printf("%d %T\n", c.Seq, rec)
	}
	// Output:
	// vol1 baseline
	// 0 *smtape.SnapshotStart
	// 1 *smtape.Inode
	// 2 *smtape.Dirent
	// 3 *smtape.Extent
	// 4 *smtape.Map
	// 5 *smtape.SnapshotEnd
}
