package simtap_test

import (
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/tapestry-ndmp/tapestry/format/simtap"
)

func Example() {
	dir, err := os.MkdirTemp("", "simtap")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	c, err := simtap.Create(filepath.Join(dir, "cart.tap"))
	if err != nil {
		log.Fatal(err)
	}
	defer c.Close()
	for _, r := range []string{"header", "body one", "body two"} {
		if err := c.WriteRecord([]byte(r)); err != nil {
			log.Fatal(err)
		}
	}
	if err := c.WriteMark(); err != nil {
		log.Fatal(err)
	}

	// Back over the mark and one record, then read on.
	if _, err := c.SpaceFiles(-1); err != nil {
		log.Fatal(err)
	}
	if _, err := c.SpaceRecords(-1); err != nil {
		log.Fatal(err)
	}
	buf := make([]byte, 64)
	for {
		n, err := c.ReadRecord(buf)
		if errors.Is(err, simtap.ErrTapeMark) {
			fmt.Println("tape mark, now at", c.Position().File, c.Position().Record)
			break
		}
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%q\n", buf[:n])
	}
	// Output:
	// "body two"
	// tape mark, now at 1 0
}
