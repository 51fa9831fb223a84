package tape

import (
	"fmt"
	"strings"
)

// DeviceListing returns the listing of a drive's tape devices as
// storage tape show -device-names shows it: a header line with the drive's
// physical path name, vendor and product (the pretty names of its tape
// configuration when it has them), then one line per device name, for
// example
//
//	          Tape drive (fc202_6:2.126L1)  HP          Ultrium 2-SCSI
//	rst0l  -  rewind device,                format is: HP (200GB)
//	nrst0l -  no rewind device,             format is: HP (200GB)
//
// A drive without an alias has no device names: only the header is
// written, followed by a line saying so.
func DeviceListing(d Device) string {
	var b strings.Builder
	vendor, product := strings.TrimSpace(d.Vendor), strings.TrimSpace(d.Product)
	if d.Config != nil {
		vendor, product = d.Config.Vendor(), d.Config.Product()
	}
	ppn := ""
	if len(d.Paths) > 0 {
		ppn = d.Paths[0]
	}
	fmt.Fprintf(&b, "          Tape drive (%s)  %-11s %s\n", ppn, vendor, product)
	if d.Alias == "" {
		b.WriteString("(no alias: assign one with storage tape alias set)\n")
		return b.String()
	}
	for _, n := range DeviceNames(d.Alias) {
		format := "not qualified"
		if d.Config != nil {
			format = d.Config.Density(n.Compression).Description
		}
		fmt.Fprintf(&b, "%-6s -  %-29s format is: %s\n", n.String(), n.Rewind.Meaning()+",", format)
	}
	return b.String()
}
