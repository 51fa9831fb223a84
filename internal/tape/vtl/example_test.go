package vtl_test

import (
	"fmt"
	"log"
	"os"

	"github.com/tapestry-ndmp/tapestry/internal/tape/vtl"
)

func Example() {
	dir, err := os.MkdirTemp("", "vtl")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	lib, err := vtl.CreateDefault(dir) // 4 drives, 20 slots, 4 I/E slots
	if err != nil {
		log.Fatal(err)
	}
	defer lib.Close()
	d, _ := lib.Drive(0)
	comp, _ := vtl.CompressionForSuffix('a')
	if err := d.Open(vtl.OpenOptions{Mode: vtl.ReadWriteMode, Compression: comp}); err != nil {
		log.Fatal(err)
	}
	if _, err := d.Write(make([]byte, 65536)); err != nil {
		log.Fatal(err)
	}
	if _, err := d.MTIO(vtl.MTEOF, 1); err != nil {
		log.Fatal(err)
	}
	st, _ := d.State()
	fmt.Println(d.Barcode(), "file", st.FileNum, "block", st.BlockNo)

	resid, _ := d.MTIO(vtl.MTBSF, 5) // one mark to cross, then BOT
	fmt.Println("BSF 5 resid", resid)
	_, err = d.Read(make([]byte, 65536))
	fmt.Println(err == nil)
	_, err = d.Read(make([]byte, 65536))
	fmt.Println(vtl.Message(err) == "", err != nil) // the file mark: EOF, no ONTAP message
	_ = d.Close()
	// Output:
	// TAP001L8 file 1 block 0
	// BSF 5 resid 4
	// true
	// true true
}
