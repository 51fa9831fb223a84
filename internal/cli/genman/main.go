// Command genman writes the manual pages of the tapestry command tree (make
// man): genman -out DIR -version VERSION.
package main

import (
	"flag"
	"fmt"
	"os"

	"github.com/tapestry-ndmp/tapestry/internal/cli"
)

func main() {
	out := flag.String("out", "man/man1", "directory of the pages")
	version := flag.String("version", "devel", "version written in the pages' footer")
	flag.Parse()
	names, err := cli.WriteManPages(*out, *version)
	if err != nil {
		fmt.Fprintf(os.Stderr, "genman: %v\n", err)
		os.Exit(1)
	}
	fmt.Printf("genman: %d pages in %s\n", len(names), *out)
}
